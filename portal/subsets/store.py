"""The cube stores of a published grid: one map-chunked and one time-chunked Zarr copy.

Pure xarray / zarr code (no Django). A published gridded NetCDF ``<version>/<name>.nc`` gets two
read-only copies, built once when the version is published (:func:`build_stores`):

``<version>/cube/<name>/map.zarr``
    chunks ``(1, lat, lon)`` holding the whole map when it has at most 2**21 cells (8 MiB of
    float32), else 1024 x 1024 tiles: a one-day map reads one (or a few) chunks.
``<version>/cube/<name>/series.zarr``
    chunks ``(time, c, c)`` with every time step up to 8192 and ``c`` such that a chunk holds
    about 2**20 values (c = 31 for 1096 days): a point's full series reads one chunk.

Why two copies (measured by ``tests/bench/test_bench_subsets.py`` on a SYNTHETIC global 0.25-degree
daily cube of 3 years, 1096 x 720 x 1440 float32, 4.2 GiB raw; raw xarray, lazy indexing, warm
page cache, median seconds, open included)::

    store (chunks)       point   1 day   10x10 deg x 1 y   area mean   files   MiB
    NetCDF (1,256,256)   1.43    0.034   0.594             1.042       1       1016
    map (1,720,1440)     2.56    0.021   1.069             1.929       1110    969
    time (1096,32,32)    0.027   1.90    0.123             0.068       521     938
    (64,128,128)         0.049   0.124   0.074             0.065       1148    952
    (16,64,64)           0.026   0.076   0.082             0.089       11951   943

A map-chunked store reads every chunk for a point series (100x slower than the time-chunked one)
and a time-chunked one does the same for a map. The best single stores come within 1.5-4x of the
right copy, but the small-chunk one needs ~12,000 files per 3 years of 0.25 degree (millions for a
1 km product) and the balanced one is 6x slower for maps. Two copies give ~20 ms for both main
queries for twice the disk (each copy is ~22 % of the raw size). Every read chooses the copy with
fewer values to decompress (:func:`choose_layout`); the box and the area mean then go to the
time-chunked copy. Both copies are Zarr format 2 with consolidated metadata (readable by
xarray, zarr-python 2 and 3, pygeoapi), compressed with Blosc zstd + byte shuffle, and keep the
source's packing (dtype, scale_factor, add_offset, _FillValue) and CF attributes.

References
----------
* Zarr storage specification v2, https://zarr-specs.readthedocs.io/en/latest/v2/v2.0.html
* xarray, "Reading and writing files: Zarr", https://docs.xarray.dev/en/stable/user-guide/io.html#zarr
* Abernathey et al. (2021), Cloud-native repositories for big scientific data, Computing in
  Science & Engineering 23(2) (map- vs time-series chunking of ARCO stores).
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import dask.array
import numcodecs
import numpy as np
import xarray as xr

from portal import storage
from products.methods.files import atomic_path, sha256

LAYOUTS = ("map", "series")
MAP_FULL_CELLS = 2**21
MAP_TILE = 1024
SERIES_CHUNK_VALUES = 2**20
SERIES_MAX_TIME = 8192
_COMPRESSOR = numcodecs.Blosc(cname="zstd", clevel=3, shuffle=numcodecs.Blosc.SHUFFLE)
# NetCDF-only encoding keys that must not reach the Zarr writer
_KEEP_ENCODING = ("dtype", "scale_factor", "add_offset", "_FillValue", "units", "calendar")


def layout_chunks(sizes: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """Chunk sizes of the two stores for a cube of ``sizes`` (``{"time": nt, "lat": ny, "lon": nx}``).

    Returns
    -------
    dict
        ``{"map": {"time": 1, "lat": .., "lon": ..}, "series": {"time": .., "lat": c, "lon": c}}``.
    """
    nt, ny, nx = int(sizes["time"]), int(sizes["lat"]), int(sizes["lon"])
    if ny * nx <= MAP_FULL_CELLS:
        map_chunks = {"time": 1, "lat": ny, "lon": nx}
    else:
        map_chunks = {"time": 1, "lat": min(ny, MAP_TILE), "lon": min(nx, MAP_TILE)}
    t = max(1, min(nt, SERIES_MAX_TIME))
    c = max(1, round(math.sqrt(SERIES_CHUNK_VALUES / t)))
    return {"map": map_chunks, "series": {"time": t, "lat": min(ny, c), "lon": min(nx, c)}}


def store_paths(nc_path: str | os.PathLike) -> dict[str, Path]:
    """Where the stores of the published NetCDF ``nc_path`` live: ``{layout: path}``."""
    nc_path = Path(nc_path)
    folder = nc_path.parent / "cube" / nc_path.stem
    return {layout: folder / f"{layout}.zarr" for layout in LAYOUTS}


def is_gridded(ds: xr.Dataset) -> bool:
    """True when ``ds`` has 1-D time, lat, lon coordinates and a ``(time, lat, lon)`` variable."""
    if any(name not in ds.coords or ds[name].dims != (name,) for name in ("time", "lat", "lon")):
        return False
    return any(v.dims == ("time", "lat", "lon") for v in ds.data_vars.values())


def holds_grid(nc_path: str | os.PathLike) -> bool:
    """True when the NetCDF at ``nc_path`` holds a ``(time, lat, lon)`` grid (:func:`is_gridded`)."""
    with xr.open_dataset(nc_path, decode_times=False) as ds:
        return is_gridded(ds)


def build_stores(
    nc_path: str | os.PathLike, *, block_values: int = 2**26, source_sha256: str | None = None
) -> dict[str, Path]:
    """Write the map-chunked and the time-chunked Zarr copies of a published grid.

    The source is read block by block (about ``block_values`` values at a time: day blocks for
    the map store, latitude bands for the series store), so a cube larger than memory is fine.
    Each store is written into a temporary folder and moved into place (a reader never sees a
    partial store); an existing store is replaced.

    Parameters
    ----------
    nc_path : str or os.PathLike
        A CF NetCDF with ``(time, lat, lon)`` variables (copied with their grid mapping and cell
        bounds, see :func:`_companions`; other variables are not).
    block_values : int
        Values read per block and variable (memory ~ 4-8 bytes each).
    source_sha256 : str, optional
        The NetCDF's SHA-256 if known (computed otherwise); stored with its name as the global
        attributes ``source_file`` and ``source_sha256`` of both stores, so each store names the
        published file it copies.

    Returns
    -------
    dict
        ``{"map": Path, "series": Path}`` (see :func:`store_paths`).

    Raises
    ------
    ValueError
        The file holds no ``(time, lat, lon)`` variable (names the file).
    """
    paths = store_paths(nc_path)
    provenance = {"source_file": Path(nc_path).name, "source_sha256": source_sha256 or sha256(nc_path)}
    with xr.open_dataset(nc_path, mask_and_scale=True, decode_times=True) as src:
        if not is_gridded(src):
            raise ValueError(f"{nc_path}: no (time, lat, lon) variable to store as a cube")
        names = [n for n, v in src.data_vars.items() if v.dims == ("time", "lat", "lon")]
        ds = src[names].assign_coords({n: src[n] for n in _companions(src, names)})
        ds.attrs = {**src.attrs, **provenance}
        chunks = layout_chunks(ds.sizes)
        paths["map"].parent.mkdir(parents=True, exist_ok=True)
        for layout in LAYOUTS:
            along = "time" if layout == "map" else "lat"
            per_step = ds.sizes["lat"] * ds.sizes["lon"] if along == "time" else ds.sizes["time"] * ds.sizes["lon"]
            step = chunks[layout][along]
            block = max(step, (block_values // max(per_step, 1)) // step * step)  # whole chunks per block
            target, old = paths[layout], paths[layout].with_name(f".{paths[layout].name}.old")
            with atomic_path(target) as tmp:
                tmp.unlink()
                _write_store(ds, tmp, chunks[layout], along, block)
                if target.exists():  # a rebuild: the old store is moved aside only once the new one is complete
                    shutil.rmtree(old, ignore_errors=True)
                    os.replace(target, old)
            shutil.rmtree(old, ignore_errors=True)
    return paths


def _companions(src: xr.Dataset, names: list[str]) -> list[str]:
    """The CF variables that describe the grid ``names``: the grid mappings they name (``crs``) and
    the cell bounds of ``time``, ``lat`` and ``lon``; kept in the stores as coordinates, so that
    answers carry the source's own bounds and grid mapping."""
    found = [src[n].attrs.get("grid_mapping") for n in names]
    found += [src[d].attrs.get("bounds") for d in ("time", "lat", "lon") if d in src.variables]
    return [n for n in dict.fromkeys(found) if isinstance(n, str) and n in src.variables and n not in src.dims]


def _write_store(ds: xr.Dataset, path: Path, chunks: dict[str, int], along: str, block: int) -> None:
    encoding = {}
    for name, var in ds.variables.items():
        enc = {k: v for k, v in var.encoding.items() if k in _KEEP_ENCODING}
        if name in ds.data_vars:
            enc.update(chunks=tuple(chunks[d] for d in var.dims), compressor=_COMPRESSOR)
        encoding[name] = enc
    template = ds.copy()
    for name in ds.data_vars:  # lazy placeholders: only metadata and coordinates are written now
        template[name] = ds[name].copy(
            data=dask.array.zeros(ds[name].shape, dtype=ds[name].dtype, chunks=tuple(chunks[d] for d in ds[name].dims))
        )
    template.to_zarr(path, mode="w", compute=False, encoding=encoding, zarr_format=2, consolidated=True)
    others = [c for c in ds.coords if c != along]
    for start in range(0, ds.sizes[along], block):
        part = ds.isel({along: slice(start, start + block)}).load().drop_vars(others)
        part.to_zarr(path, region={along: slice(start, start + part.sizes[along])}, zarr_format=2, consolidated=False)
    zarr_consolidate(path)


def zarr_consolidate(path: Path) -> None:
    """Rewrite the consolidated metadata of the Zarr v2 store at ``path``."""
    import zarr  # 0.9 s to import: only writing a store needs it, not every reader of the API

    zarr.consolidate_metadata(str(path), zarr_format=2)


def open_store(path: str | os.PathLike, chunks: dict | None = None) -> xr.Dataset:
    """Open a cube store lazily, CF-decoded.

    ``chunks=None``: lazily indexed backend arrays (indexing reads only the chunks it touches);
    ``chunks={}``: dask arrays of the store's chunks.
    """
    return storage.open_zarr_at(path, chunks=chunks)


def chunks_touched(indices: Mapping[str, np.ndarray], chunks: Mapping[str, int]) -> int:
    """Number of chunks a selection reads: product over dims of the distinct chunk numbers.

    Parameters
    ----------
    indices : mapping of dim -> 1-D int array
        Positions selected along each dim (any order, strides and wraps allowed).
    chunks : mapping of dim -> int
        Chunk size along each dim.
    """
    n = 1
    for dim, idx in indices.items():
        n *= len(np.unique(np.asarray(idx) // int(chunks[dim])))
    return n


def choose_layout(indices: Mapping[str, np.ndarray], sizes: Mapping[str, int]) -> str:
    """The store that decompresses the fewest values for a selection (ties: ``map``).

    Parameters
    ----------
    indices : mapping of dim -> 1-D int array
        Positions selected along ``time``, ``lat`` and ``lon``.
    sizes : mapping of dim -> int
        The cube's sizes.

    Returns
    -------
    str
        ``"map"`` or ``"series"``.
    """
    costs = {}
    for layout, chunks in layout_chunks(sizes).items():
        costs[layout] = chunks_touched(indices, chunks) * math.prod(chunks.values())
    return min(LAYOUTS, key=lambda layout: costs[layout])
