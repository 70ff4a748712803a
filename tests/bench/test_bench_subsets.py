"""Benchmark: subsets of a global daily cube, by cube-store layout, through our service and through pygeoapi.

SYNTHETIC data throughout: :class:`SyntheticField` makes a made-up soil-moisture-like field
``sm`` (m3 m-3) on a global grid (default 0.25 degree, 1440 x 720, ``BENCH_SUBSETS_DAYS`` = 1096
daily steps from 2000-01-01, float32): smooth climatology + seasonal cycle + travelling
"weather" waves + Gaussian noise, NaN over a made-up "ocean" (about 70 % of the cells) so that
compression behaves roughly like a real land product. The values mean nothing.

The cube is generated slab by slab (never whole in memory) into the NetCDF-4 file the generators
publish (:func:`products.methods.chunked.create_output`: chunks (1, 256, 256), zlib 4, fill -9999).
Everything is cached under ``BENCH_SUBSETS_DIR`` (default ``var/bench/subsets``) in a folder named
after the parameters, so reruns reuse it; ``build.json`` there keeps the build times of the first run.

Queries (each on ``BENCH_SUBSETS_REPEATS`` different places / dates, default 3):

* point: the full series at the cell nearest to a land point;
* map: one day, the whole globe;
* box: 10 x 10 degrees x 1 year, written to NetCDF-4 (zlib 4 + shuffle, as our writer does);
* area: the cos(lat)-weighted mean series over a 10 x 10 degree box and the whole period.

Each timing includes opening the store (a stateless request opens it too). "cold" timings
evict the store's files from the OS page cache first (``posix_fadvise(DONTNEED)`` on every file
of the store: our files only, no root needed; the disk is virtual, so "cold" is cold-ish);
"warm" ones repeat the same places right after, with the pages cached but a fresh ``open``.
Printed: median (min-max) seconds. Only sanity is asserted (every path returns the same values),
never timings.

:func:`test_cube_store_layouts` (the layout choice): the NetCDF copied into Zarr format-2 stores
(consolidated metadata, Blosc zstd 5 + byte shuffle, NaN fill), one per layout of :func:`layouts`
(map-chunked, time-chunked and two single-store compromises), timed with raw xarray with lazy
indexing (``chunks=None``) and with dask (the store's chunks); store size, file count, build time.
A query whose first cold run takes more than ``BENCH_SUBSETS_SLOW_S`` (default 5) seconds runs
once cold and once warm only.

:func:`test_subset_service_against_raw_xarray_and_pygeoapi`: the NetCDF published (hard link)
under a bench DATA_ROOT with the stores of :func:`portal.subsets.store.build_stores`; our API
(``/api/datasets/<id>/point|subset|area/``) served by gunicorn on its own database
(``BENCH_SUBSETS_DATABASE_URL``, default ``postgis://postgres@127.0.0.1:5432/bench_subsets``:
created, migrated, one Dataset/Version/File row), the same through the service functions
in-process, raw xarray doing the same job (same output format) on the store our service reads,
and pygeoapi 0.21 (own venv, ``tests/bench/pygeoapi/``; EDR ``position`` and Coverages) serving
the same stores. If pygeoapi cannot be installed or started its column is left out with the
reason printed.

Run with ``make bench`` or
``.venv/bin/python -m pytest tests/bench/test_bench_subsets.py -p no:cacheprovider -q -s``;
``BENCH_SUBSETS_RES=1 BENCH_SUBSETS_DAYS=366`` make a small cube for a quick try.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numcodecs
import numpy as np
import xarray as xr
import zarr
from django.conf import settings

from products.methods import chunked

RES = float(os.environ.get("BENCH_SUBSETS_RES", 0.25))
DAYS = int(os.environ.get("BENCH_SUBSETS_DAYS", 1096))
REPEATS = int(os.environ.get("BENCH_SUBSETS_REPEATS", 3))
SEED = 20240601
GEN_VERSION = 1  # bump when the synthetic field or the store encodings change (invalidates the cache)
START = np.datetime64("2000-01-01")
SLAB = 64  # days per generation / copy slab (a multiple of every layout's time chunk below 64)
BAND = 256  # latitude rows per band when building time-chunked layouts (a multiple of 32 and of the NetCDF chunk)
VAR = "sm"
COMPRESSOR = numcodecs.Blosc(cname="zstd", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)
BOX_DEG = 10.0
SLOW_S = float(os.environ.get("BENCH_SUBSETS_SLOW_S", 5))  # a query slower than this once is not repeated


def _cache_dir() -> Path:
    base = Path(os.environ.get("BENCH_SUBSETS_DIR", Path(settings.BASE_DIR) / "var" / "bench" / "subsets"))
    return base / f"sm_res{RES:g}_days{DAYS}_seed{SEED}_v{GEN_VERSION}"


def grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(time, lat, lon) of the SYNTHETIC cube: daily from 2000-01-01, cell centres, lat ascending, lon -180..180."""
    n_lat, n_lon = round(180 / RES), round(360 / RES)
    lat = -90 + RES * (np.arange(n_lat) + 0.5)
    lon = -180 + RES * (np.arange(n_lon) + 0.5)
    return START + np.arange(DAYS).astype("timedelta64[D]"), lat, lon


def layouts(n_time: int, n_lat: int, n_lon: int) -> dict[str, tuple[int, int, int]]:
    """Zarr chunk shapes (time, lat, lon) compared: map-chunked, time-chunked and two single-store compromises."""
    return {
        "map (1,all,all)": (1, n_lat, n_lon),
        "time (all,32,32)": (n_time, min(32, n_lat), min(32, n_lon)),
        "balanced (64,128,128)": (min(64, n_time), min(128, n_lat), min(128, n_lon)),
        "small (16,64,64)": (min(16, n_time), min(64, n_lat), min(64, n_lon)),
    }


NETCDF = "netcdf (1,256,256) zlib4"  # the file the generators publish (reference)


# --------------------------------------------------------------------------- SYNTHETIC cube


class SyntheticField:
    """SYNTHETIC soil-moisture-like field, evaluated slab by slab (``block(t0, t1)`` -> float32 (t, lat, lon)).

    Static maps are computed once on the grid; each day adds a seasonal cycle and travelling waves
    written as ``a(x) cos(wt) + b(x) sin(wt)`` (two static maps times per-day scalars), plus noise
    from a generator seeded by the slab index (so a slab is reproducible on its own).
    """

    def __init__(self, lat: np.ndarray, lon: np.ndarray, seed: int = SEED):
        rng = np.random.default_rng(seed)
        self.lat, self.lon = lat, lon
        la, lo = np.deg2rad(lat)[:, None], np.deg2rad(lon)[None, :]
        relief = sum(
            rng.uniform(0.5, 1.0)
            * np.sin(k * lo + rng.uniform(0, 2 * np.pi))
            * np.cos(m * la + rng.uniform(0, 2 * np.pi))
            for k, m in [(1, 1), (2, 3), (3, 2), (5, 4), (7, 6), (11, 9)]
        )
        relief = relief + 0.8 * np.cos(la) ** 0.5  # more land at low/mid latitudes
        self.land = relief > np.quantile(relief, 0.70)  # about 30 % "land"
        self.base = (0.22 + 0.08 * np.tanh(relief) + 0.05 * np.cos(3 * la) * np.sin(2 * lo)).astype("float32")
        amp = 0.06 * np.abs(np.sin(la)) + 0.02
        phase = np.where(la >= 0, 0.3, 0.3 + np.pi) + 0.2 * np.sin(lo)
        self.season = (amp * np.cos(phase), amp * np.sin(phase))  # amp * sin(w t - phase)
        self.waves = []
        for _ in range(4):
            k, m = rng.integers(2, 12), rng.integers(1, 8)
            s = k * lo + m * la + rng.uniform(0, 2 * np.pi)
            a = rng.uniform(0.01, 0.03)
            self.waves.append((a * np.cos(s), a * np.sin(s), 2 * np.pi / rng.uniform(8, 40)))
        self.season = tuple(x.astype("float32") for x in np.broadcast_arrays(*self.season))
        self.waves = [(x.astype("float32"), y.astype("float32"), w) for x, y, w in self.waves]
        self.seed = seed

    def block(self, t0: int, t1: int) -> np.ndarray:
        """Days ``t0 <= t < t1``, float32 (t1-t0, n_lat, n_lon), NaN over "ocean"; t0 must be a multiple of SLAB."""
        t = np.arange(t0, t1, dtype="float64")
        w_year = 2 * np.pi * t / 365.25
        out = np.empty((t1 - t0, len(self.lat), len(self.lon)), dtype="float32")
        out[:] = self.base
        c, s = self.season
        out += np.sin(w_year).astype("float32")[:, None, None] * c - np.cos(w_year).astype("float32")[:, None, None] * s
        for a, b, w in self.waves:  # a cos(s - w t) + ... = cos(s) cos(wt) + sin(s) sin(wt)
            out += np.cos(w * t).astype("float32")[:, None, None] * a
            out += np.sin(w * t).astype("float32")[:, None, None] * b
        rng = np.random.default_rng([self.seed, t0 // SLAB])
        out += rng.standard_normal(out.shape, dtype="float32") * np.float32(0.015)
        np.clip(out, 0.01, 0.6, out=out)
        out[:, ~self.land] = np.nan
        return out


def _dir_stats(path: Path) -> tuple[int, int]:
    """(bytes, files) of a file or folder tree."""
    if path.is_file():
        return path.stat().st_size, 1
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def _write_netcdf(path: Path, field: SyntheticField, times: np.ndarray) -> float:
    """The published NetCDF (the generators' writer); returns seconds spent writing (not computing)."""
    spec = chunked.GridSpec(
        name=VAR,
        time=times,
        lat=field.lat,
        lon=field.lon,
        attrs={"long_name": "SYNTHETIC soil moisture (benchmark data, meaningless)", "units": "m3 m-3"},
        global_attrs={
            "title": "SYNTHETIC benchmark cube",
            "Conventions": "CF-1.8",
            "source": "tests/bench/test_bench_subsets.py (synthetic, not a product)",
        },
    )
    tmp = path.with_suffix(".part.nc")
    ds = chunked.create_output(tmp, spec)
    seconds = 0.0
    try:
        for t0 in range(0, len(times), SLAB):
            block = field.block(t0, min(t0 + SLAB, len(times)))
            block[np.isnan(block)] = chunked.FILL_VALUE
            start = time.perf_counter()
            ds[VAR][t0 : t0 + len(block)] = block
            seconds += time.perf_counter() - start
    finally:
        start = time.perf_counter()
        ds.close()
        seconds += time.perf_counter() - start
    os.replace(tmp, path)
    return seconds


def _create_zarr(path: Path, src: xr.Dataset, chunks: tuple[int, int, int]) -> zarr.Array:
    """An empty Zarr format-2 store with the coordinates and attributes of ``src`` (CF, as xarray writes them)."""
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    root.attrs.update(src.attrs)
    times = src["time"].values
    days = ((times - START) / np.timedelta64(1, "D")).astype("int32")
    t = root.create_array("time", data=days, chunks=(len(days),), compressors=None, fill_value=None)
    t.attrs.update(
        {
            "_ARRAY_DIMENSIONS": ["time"],
            "units": f"days since {START}",
            "calendar": "proleptic_gregorian",
            "standard_name": "time",
            "axis": "T",
        }
    )
    for name in ("lat", "lon"):
        a = root.create_array(
            name, data=src[name].values.astype("float64"), chunks=(src.sizes[name],), compressors=None, fill_value=None
        )
        a.attrs.update({"_ARRAY_DIMENSIONS": [name], **src[name].attrs})
    arr = root.create_array(
        VAR,
        shape=(src.sizes["time"], src.sizes["lat"], src.sizes["lon"]),
        chunks=chunks,
        dtype="float32",
        compressors=COMPRESSOR,
        fill_value=np.nan,
    )
    attrs = {k: v for k, v in src[VAR].attrs.items() if k not in ("_FillValue", "missing_value")}
    arr.attrs.update({"_ARRAY_DIMENSIONS": ["time", "lat", "lon"], **attrs})
    return arr


def _copy_to_zarr(nc_path: Path, path: Path, chunks: tuple[int, int, int]) -> float:
    """Copy the published NetCDF into a Zarr store of chunk shape ``chunks``; returns seconds (reading included)."""
    start = time.perf_counter()
    tmp = path.with_name(path.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    with xr.open_dataset(nc_path, chunks=None) as src:
        arr = _create_zarr(tmp, src, chunks)
        n_time, n_lat = src.sizes["time"], src.sizes["lat"]
        var = src[VAR].variable
        if chunks[0] >= n_time:  # every step in a chunk: latitude bands
            for r0 in range(0, n_lat, BAND):
                arr[:, r0 : r0 + BAND, :] = var[:, r0 : r0 + BAND, :].values
        else:
            step = max(chunks[0], SLAB // chunks[0] * chunks[0])
            for t0 in range(0, n_time, step):
                arr[t0 : t0 + step] = var[t0 : t0 + step].values
    zarr.consolidate_metadata(str(tmp), zarr_format=2)
    os.replace(tmp, path)
    return time.perf_counter() - start


@dataclass
class Store:
    name: str
    path: Path
    kind: str  # "zarr" or "netcdf"
    chunks: tuple[int, int, int]
    build_s: float
    bytes: int
    files: int


def synthetic_cube() -> tuple[SyntheticField, list[Store]]:
    """The SYNTHETIC cube in every layout, built once and cached (see the module docstring)."""
    times, lat, lon = grid()
    field = SyntheticField(lat, lon)
    root = _cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    record_path = root / "build.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    nc_path = root / "cube.nc"
    if not nc_path.exists() or NETCDF not in record:
        print(f"\ngenerating the SYNTHETIC cube {DAYS} x {len(lat)} x {len(lon)} into {nc_path} ...", flush=True)
        record = {NETCDF: _write_netcdf(nc_path, field, times)}
        record_path.write_text(json.dumps(record, indent=1))
    stores = [
        Store(
            NETCDF, nc_path, "netcdf", (1, min(256, len(lat)), min(256, len(lon))), record[NETCDF], *_dir_stats(nc_path)
        )
    ]
    for i, (name, chunks) in enumerate(layouts(DAYS, len(lat), len(lon)).items()):
        path = root / f"layout{i}_{'_'.join(map(str, chunks))}.zarr"
        if not path.exists() or name not in record:
            print(f"building {name} ...", flush=True)
            record[name] = _copy_to_zarr(nc_path, path, chunks)
            record_path.write_text(json.dumps(record, indent=1))
        stores.append(Store(name, path, "zarr", chunks, record[name], *_dir_stats(path)))
    return field, stores


# --------------------------------------------------------------------------- queries


def evict(path: Path) -> None:
    """Drop the OS page cache of every file of ``path`` (posix_fadvise DONTNEED; our own files only)."""
    files = [path] if path.is_file() else (p for p in path.rglob("*") if p.is_file())
    for p in files:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def open_raw(store: Store, dask: bool) -> xr.Dataset:
    """Raw xarray on one store: lazy indexing (``chunks=None``) or dask with the store's own chunks."""
    chunks = {} if dask else None
    if store.kind == "zarr":
        return xr.open_zarr(store.path, chunks=chunks, consolidated=True)
    return xr.open_dataset(store.path, chunks=chunks, engine="netcdf4")


def _box(lon0: float, lat0: float) -> dict:
    return {"lon": slice(lon0, lon0 + BOX_DEG), "lat": slice(lat0, lat0 + BOX_DEG)}


def raw_point(ds: xr.Dataset, q: dict) -> np.ndarray:
    return ds[VAR].sel(lon=q["lon"], lat=q["lat"], method="nearest").values


def raw_map(ds: xr.Dataset, q: dict) -> np.ndarray:
    return ds[VAR].sel(time=q["day"]).values


def raw_box(ds: xr.Dataset, q: dict) -> np.ndarray:
    sub = ds[[VAR]].sel(**_box(q["lon"], q["lat"]), time=slice(q["start"], q["end"]))
    for v in sub.variables.values():
        v.encoding = {k: x for k, x in v.encoding.items() if k in ("units", "calendar", "dtype", "_FillValue")}
    out = Path(tempfile.mkstemp(suffix=".nc", dir=q["tmp"])[1])
    try:
        sub.to_netcdf(
            out, engine="netcdf4", format="NETCDF4", encoding={VAR: {"zlib": True, "complevel": 4, "shuffle": True}}
        )
        with xr.open_dataset(out, chunks=None) as check:
            return check[VAR].values[:, ::7, ::7]  # a sample, for the cross-layout check
    finally:
        out.unlink()


def raw_area(ds: xr.Dataset, q: dict) -> np.ndarray:
    sub = ds[VAR].sel(**_box(q["lon"], q["lat"]))
    weights = np.cos(np.deg2rad(sub["lat"].astype("float64")))
    return sub.astype("float64").weighted(weights).mean(("lat", "lon"), skipna=True).values


RAW_QUERIES: dict[str, Callable[[xr.Dataset, dict], np.ndarray]] = {
    "point": raw_point,
    "map": raw_map,
    "box": raw_box,
    "area": raw_area,
}


def query_places(field: SyntheticField, tmp: Path, n: int = REPEATS) -> dict[str, list[dict]]:
    """``n`` places / dates per query, on "land", spread over the grid and the period (deterministic)."""
    rng = np.random.default_rng(7)
    times, lat, lon = grid()
    land = np.argwhere(field.land)
    points = []
    for i in rng.permutation(len(land))[:n]:
        y, x = land[i]
        points.append({"lon": float(lon[x]) + 0.3 * RES, "lat": float(lat[y]) - 0.2 * RES})
    boxes = []
    while len(boxes) < n:  # a 10 degree box whose centre cell is land, off the grid's chunk edges
        y, x = land[rng.integers(len(land))]
        lon0 = float(np.clip(lon[x] - BOX_DEG / 2 + 0.37, -180, 180 - BOX_DEG))
        lat0 = float(np.clip(lat[y] - BOX_DEG / 2 + 0.61, -90, 90 - BOX_DEG))
        boxes.append({"lon": round(lon0, 3), "lat": round(lat0, 3)})
    years = sorted({str(t)[:4] for t in times})
    days = [str(times[int(i)]) for i in np.linspace(0, len(times) - 1, n + 2)[1:-1].round()]
    return {
        "point": points,
        "map": [{"day": d} for d in days],
        "box": [
            {**b, "start": f"{years[i % len(years)]}-01-01", "end": f"{years[i % len(years)]}-12-31", "tmp": tmp}
            for i, b in enumerate(boxes)
        ],
        "area": boxes,
    }


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _fmt(values: list[float]) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    return f"{med:7.3f} ({min(values):.3f}-{max(values):.3f})"


def measure_raw(store: Store, places: dict[str, list[dict]], dask: bool) -> dict[str, dict]:
    """Per query: cold and warm seconds (open included) and the first result, raw xarray on ``store``."""
    out = {}
    for query, fn in RAW_QUERIES.items():
        cold, warm, first = [], [], None
        for cache in ("cold", "warm"):
            for q in places[query]:
                if cold and cold[0] > SLOW_S and len(cold if cache == "cold" else warm) >= 1:
                    break  # slow on this layout: one cold and one warm run are enough
                if cache == "cold":
                    evict(store.path)

                def run(q=q, fn=fn):
                    with open_raw(store, dask) as ds:
                        return fn(ds, q)

                seconds, result = timed(run)
                (cold if cache == "cold" else warm).append(seconds)
                if first is None:
                    first = result
        out[query] = {"cold": cold, "warm": warm, "result": first}
    return out


def test_cube_store_layouts(tmp_path):
    """Part 1: raw xarray on each store layout of the SYNTHETIC cube (the figures that choose the layout)."""
    field, stores = synthetic_cube()
    places = query_places(field, tmp_path)
    for store in stores:  # warm-up: imports, codecs, netCDF-C
        with open_raw(store, False) as ds:
            raw_point(ds, places["point"][0])
    try:
        import dask  # noqa: F401

        modes = [False, True]
    except ImportError:
        modes = [False]
    results = {}
    open_s = {}
    for store in stores:
        evict(store.path)
        open_s[store.name] = timed(lambda store=store: open_raw(store, False).close())[0]
        for dask_mode in modes:
            results[store.name, dask_mode] = measure_raw(store, places, dask_mode)

    times, lat, lon = grid()
    raw_bytes = len(times) * len(lat) * len(lon) * 4
    print(
        f"\nSYNTHETIC global cube {len(times)} days x {len(lat)} lat x {len(lon)} lon ({RES:g} deg), float32, "
        f"{field.land.mean():.0%} land, {raw_bytes / 2**30:.2f} GiB uncompressed; cache {_cache_dir()}"
    )
    print(
        f"{REPEATS} places/dates per query; seconds median (min-max), store open included; cold = store files "
        f"evicted from the page cache (posix_fadvise DONTNEED) before each query; warm = same places again"
    )
    print(f"{'layout':<26}{'size MiB':>9}{'ratio':>7}{'files':>8}{'build s':>9}{'open s':>8}")
    for s in stores:
        print(
            f"{s.name:<26}{s.bytes / 2**20:9.0f}{raw_bytes / s.bytes:7.1f}{s.files:8d}{s.build_s:9.1f}"
            f"{open_s[s.name]:8.3f}"
        )
    header = f"{'layout':<26}{'mode':<6}{'cache':<6}" + "".join(f"{q:>22}" for q in RAW_QUERIES)
    print(header)
    for s in stores:
        for dask_mode in modes:
            r = results[s.name, dask_mode]
            for cache in ("cold", "warm"):
                print(
                    f"{s.name:<26}{'dask' if dask_mode else 'lazy':<6}{cache:<6}"
                    + "".join(f"{_fmt(r[q][cache]):>22}" for q in RAW_QUERIES)
                )

    reference = results[stores[0].name, False]  # sanity: every layout and mode gives the same values
    for key, r in results.items():
        for q in RAW_QUERIES:
            np.testing.assert_allclose(
                r[q]["result"], reference[q]["result"], rtol=1e-6, equal_nan=True, err_msg=f"{key} {q}"
            )
    assert np.isfinite(reference["point"]["result"]).all() and np.isfinite(reference["area"]["result"]).all()


# --------------------------------------------------------------------------- our service and pygeoapi (Parts 2-3)

BENCH_DATABASE_URL = os.environ.get("BENCH_SUBSETS_DATABASE_URL", "postgis://postgres@127.0.0.1:5432/bench_subsets")
DATASET_ID = "bench-synthetic-sm"
PUBLISHED = Path("products") / "bench_subsets" / "v1" / "sm.nc"  # under the bench's DATA_ROOT
PYGEOAPI_DIR = Path(__file__).resolve().parent / "pygeoapi"
PYGEOAPI_VENV = Path(os.environ.get("PYGEOAPI_VENV", Path(settings.BASE_DIR) / ".venv-pygeoapi"))
SERVER_WORKERS = 2  # both servers, as the portal_url fixture starts ours
ROWS = """
from portal.catalog.models import Dataset, DatasetFile, DatasetVersion
d, _ = Dataset.objects.update_or_create(id={id!r}, defaults=dict(
    title_en="SYNTHETIC benchmark cube (tests/bench/test_bench_subsets.py; meaningless values)",
    share_type=Dataset.ShareType.OPEN))
v, _ = DatasetVersion.objects.get_or_create(dataset=d, number=1, defaults=dict(directory={directory!r}))
DatasetFile.objects.update_or_create(version=v, name={name!r}, defaults=dict(path={path!r}, size={size}, sha256="0" * 64))
"""


def published_cube(root: Path, nc_path: Path) -> tuple[Path, dict[str, Path], float]:
    """The SYNTHETIC NetCDF published under ``root/data_root`` (a hard link) with the stores of
    :func:`portal.subsets.store.build_stores`; returns (DATA_ROOT, {layout: store}, build seconds)."""
    from portal.subsets import store

    data_root = root / "data_root"
    target = data_root / PUBLISHED
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        os.link(nc_path, target)
    record_path = root / "build.json"
    record = json.loads(record_path.read_text())
    paths = store.store_paths(target)
    if "ours: build_stores" not in record or not all(p.exists() for p in paths.values()):
        print("building our stores (portal.subsets.store.build_stores) ...", flush=True)
        record["ours: build_stores"] = timed(lambda: store.build_stores(target))[0]
        record_path.write_text(json.dumps(record, indent=1))
    return data_root, paths, record["ours: build_stores"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 600) -> bytes:
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


@contextlib.contextmanager
def serving(cmd: list[str], env: dict, probe: str, log: Path, timeout: float = 120):
    """Run a server (its own process group), wait until ``probe`` answers, yield (process, base url); stop it."""
    import subprocess
    import urllib.error

    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, env=env, cwd=settings.BASE_DIR, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                _get(probe, timeout=5)
                break
            except (OSError, urllib.error.URLError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{cmd[:3]} did not start: see {log}\n{log.read_text()[-3000:]}") from None
                time.sleep(0.5)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except Exception:
            proc.kill()


def peak_rss_mib(proc) -> float:
    """Largest peak RSS (VmHWM) among the server's worker processes (children of the gunicorn master)."""
    peak = 0
    for task in Path(f"/proc/{proc.pid}/task").glob("*"):
        for child in (task / "children").read_text().split():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{child}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
    return peak / 1024


def prepare_database(env: dict, data_root: Path) -> None:
    """The bench's own PostGIS database (created, migrated) with one Dataset/Version/File row for the cube."""
    import subprocess

    python = [str(Path(settings.BASE_DIR) / ".venv" / "bin" / "python")]
    for args in (
        ["-m", "portal.dbsetup"],
        ["manage.py", "migrate", "--noinput", "-v", "0"],
        [
            "manage.py",
            "shell",
            "-v",
            "0",
            "-c",
            ROWS.format(
                id=DATASET_ID,
                directory=str(PUBLISHED.parent),
                name=PUBLISHED.name,
                path=str(PUBLISHED),
                size=(data_root / PUBLISHED).stat().st_size,
            ),
        ],
    ):
        subprocess.run(python + args, env=env, cwd=settings.BASE_DIR, check=True, stdout=subprocess.DEVNULL)


def start_pygeoapi(stores: dict[str, Path], workdir: Path) -> tuple[contextlib.AbstractContextManager | None, str]:
    """pygeoapi 0.21 serving ``stores`` (collection = layout name), or (None, why not)."""
    import subprocess

    try:
        subprocess.run(
            [str(PYGEOAPI_DIR / "setup_venv.sh")],
            check=True,
            capture_output=True,
            text=True,
            env=dict(os.environ, PYGEOAPI_VENV=str(PYGEOAPI_VENV)),
            timeout=900,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        return None, f"pygeoapi venv could not be made ({exc}; {getattr(exc, 'stderr', '') or ''})"[-2000:]
    times, _, _ = grid()
    port = _free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(PYGEOAPI_VENV / "bin" / "python"),
        str(PYGEOAPI_DIR / "serve.py"),
        "--port",
        str(port),
        "--workdir",
        str(workdir),
        "--begin",
        str(times[0]),
        "--end",
        str(times[-1]),
        "--workers",
        str(SERVER_WORKERS),
        *[f"--store={k}={v}" for k, v in stores.items()],
    ]
    return serving(
        cmd, dict(os.environ), f"http://127.0.0.1:{port}/collections?f=json", workdir / "server.log"
    ), f"http://127.0.0.1:{port}"


def covjson_values(body: bytes) -> np.ndarray:
    document = json.loads(body)
    (rng,) = document["ranges"].values()
    return np.array([np.nan if v is None else v for v in rng["values"]], dtype="float64")


def raw_answer(kind: str, ds: xr.Dataset, q: dict, out: Path) -> None:
    """Raw xarray doing the same job as our endpoint, in the same output format (the baseline)."""
    if kind == "point":  # CoverageJSON values of the series (what both services return)
        series = ds[VAR].sel(lon=q["lon"], lat=q["lat"], method="nearest")
        values = series.values.astype("float64")
        document = {
            "type": "Coverage",
            "domain": {
                "type": "Domain",
                "domainType": "PointSeries",
                "axes": {
                    "x": {"values": [float(series.lon)]},
                    "y": {"values": [float(series.lat)]},
                    "t": {"values": [str(t)[:19] + "Z" for t in series.time.values]},
                },
            },
            "ranges": {
                VAR: {
                    "type": "NdArray",
                    "dataType": "float",
                    "axisNames": ["t"],
                    "shape": [len(values)],
                    "values": [None if np.isnan(v) else float(v) for v in values],
                }
            },
        }
        out.write_text(json.dumps(document))
    elif kind == "area":  # CSV of the cos(lat)-weighted mean series
        sub = ds[VAR].sel(**_box(q["lon"], q["lat"]))
        weights = np.cos(np.deg2rad(sub["lat"].astype("float64")))
        sub.astype("float64").weighted(weights).mean(("lat", "lon"), skipna=True).to_dataframe().to_csv(out)
    else:  # map, box: NetCDF-4, zlib 4 + shuffle, as our writer
        if kind == "map":
            sub = ds[[VAR]].sel(time=slice(q["day"], q["day"]))
        else:
            sub = ds[[VAR]].sel(**_box(q["lon"], q["lat"]), time=slice(q["start"], q["end"]))
        for v in sub.variables.values():
            v.encoding = {k: x for k, x in v.encoding.items() if k in ("units", "calendar", "dtype", "_FillValue")}
        sub.to_netcdf(
            out, engine="netcdf4", format="NETCDF4", encoding={VAR: {"zlib": True, "complevel": 4, "shuffle": True}}
        )


def service_params(kind: str, q: dict) -> tuple[str, dict]:
    """(endpoint, query parameters) of our API for the query."""
    if kind == "point":
        return "point", {"lon": f"{q['lon']:.4f}", "lat": f"{q['lat']:.4f}", "f": "coveragejson"}
    if kind == "map":
        return "subset", {"bbox": "-180,-90,180,90", "time": f"{q['day'][:10]}/{q['day'][:10]}", "f": "netcdf"}
    bbox = f"{q['lon']},{q['lat']},{q['lon'] + BOX_DEG},{q['lat'] + BOX_DEG}"
    if kind == "box":
        return "subset", {"bbox": bbox, "time": f"{q['start']}/{q['end']}", "f": "netcdf"}
    return "area", {"bbox": bbox, "f": "csv"}


def pygeoapi_url(kind: str, q: dict, collection: str) -> str:
    """pygeoapi's closest request: EDR position (CoverageJSON) for points, Coverages (native NetCDF) otherwise.

    A one-day map asks ``datetime=D/D`` (a single instant fails in pygeoapi 0.21: IndexError on a
    scalar time); pygeoapi has no area mean, so ``area`` fetches the box over the whole period and
    the client averages it (timed with the request).
    """
    from urllib.parse import urlencode

    base = f"/collections/{collection}"
    if kind == "point":
        return f"{base}/position?" + urlencode(
            {"coords": f"POINT({q['lon']:.4f} {q['lat']:.4f})", "parameter-name": VAR, "f": "json"}
        )
    if kind == "map":
        params = {"datetime": f"{q['day'][:10]}/{q['day'][:10]}"}
    else:
        times, _, _ = grid()
        bbox = f"{q['lon']},{q['lat']},{q['lon'] + BOX_DEG},{q['lat'] + BOX_DEG}"
        period = f"{q['start']}/{q['end']}" if kind == "box" else f"{str(times[0])[:10]}/{str(times[-1])[:10]}"
        params = {"bbox": bbox, "datetime": period}
    return f"{base}/coverage?" + urlencode({**params, "properties": VAR, "f": "NetCDF"})


def area_from_netcdf(body: bytes, tmp: Path) -> np.ndarray:
    """Client-side cos(lat)-weighted mean of a NetCDF box (pygeoapi has no area mean)."""
    path = Path(tempfile.mkstemp(suffix=".nc", dir=tmp)[1])
    try:
        path.write_bytes(body)
        with xr.open_dataset(path) as ds:
            sub = ds[VAR].astype("float64")
            return sub.weighted(np.cos(np.deg2rad(sub["lat"]))).mean(("lat", "lon"), skipna=True).values
    finally:
        path.unlink()


def result_values(kind: str, data: bytes | Path, tmp: Path) -> np.ndarray:
    """The values of an answer (for the cross-check), whatever wrote it."""
    body = data.read_bytes() if isinstance(data, Path) else data
    if kind == "point":
        return covjson_values(body)
    if kind == "area":
        import io

        import pandas as pd

        frame = pd.read_csv(io.BytesIO(body), comment="#")
        frame = frame.rename(columns=lambda c: c.split(" [")[0])  # our header says "name [units]"
        return frame[VAR].to_numpy(dtype="float64")
    path = Path(tempfile.mkstemp(suffix=".nc", dir=tmp)[1])
    try:
        path.write_bytes(body)
        with xr.open_dataset(path) as ds:
            return ds[VAR].values.astype("float64").ravel()
    finally:
        path.unlink()


KINDS = ("point", "map", "box", "area")


def test_subset_service_against_raw_xarray_and_pygeoapi(tmp_path):
    """Parts 2-3: our endpoints (HTTP and in-process) against raw xarray on the same store and against pygeoapi."""
    from urllib.parse import urlencode

    from portal.catalog.models import Dataset, DatasetFile, DatasetVersion
    from portal.subsets import core, services, store
    from portal.subsets import params as subset_params

    field, stores_ = synthetic_cube()
    nc_path = stores_[0].path
    data_root, paths, build_s = published_cube(_cache_dir(), nc_path)
    places = query_places(field, tmp_path)
    old_root = settings.DATA_ROOT
    settings.DATA_ROOT = data_root
    try:
        # unsaved rows: the service functions only read their attributes
        dataset = Dataset(id=DATASET_ID, title_en="SYNTHETIC benchmark cube", share_type=Dataset.ShareType.OPEN)
        version = DatasetVersion(dataset=dataset, number=1, directory=str(PUBLISHED.parent))
        f = DatasetFile(version=version, name=PUBLISHED.name, path=str(PUBLISHED), size=1, sha256="0" * 64)

        def layout_of(kind: str, q: dict) -> str:  # the store our service reads for the query
            if kind == "point":
                return "series"
            _, params = service_params(kind, q)
            request = subset_params.parse_api("area" if kind == "area" else "subset", params).request
            with store.open_store(paths["map"]) as meta:
                return store.choose_layout(core.selection_indices(meta, request), meta.sizes)

        def in_process(kind: str, q: dict) -> bytes:
            endpoint, params = service_params(kind, q)
            query = subset_params.parse_api(endpoint, params)
            assert services.plan(f, query).mode == "direct"
            result = services.answer_directly(f, query)
            try:
                return result.path.read_bytes()
            finally:
                result.path.unlink()

        def raw(kind: str, q: dict, layout: str, dask_mode: bool) -> bytes:
            out = Path(tempfile.mkstemp(suffix=".out", dir=tmp_path)[1])
            try:
                with store.open_store(paths[layout], chunks={} if dask_mode else None) as ds:
                    raw_answer(kind, ds, q, out)
                return out.read_bytes()
            finally:
                out.unlink()

        env = dict(
            os.environ,
            DATABASE_URL=BENCH_DATABASE_URL,
            DATA_ROOT=str(data_root),
            DEBUG="false",
            CELERY_BROKER_URL="redis://127.0.0.1:6379/15",
            SUBSET_SYNC_MAX_BYTES=str(256 * 2**20),
        )
        prepare_database(env, data_root)
        port = _free_port()
        ours_cm = serving(
            [
                str(Path(settings.BASE_DIR) / ".venv" / "bin" / "python"),
                "-m",
                "gunicorn",
                "portal.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(SERVER_WORKERS),
                "--log-level",
                "warning",
                "--timeout",
                "600",
            ],
            env,
            f"http://127.0.0.1:{port}/api/",
            tmp_path / "ours.log",
        )
        ours_url = f"http://127.0.0.1:{port}/api/datasets/{DATASET_ID}"
        pg_cm, pg_info = start_pygeoapi(paths, tmp_path / "pygeoapi")  # (server, its url) or (None, why not)
        with contextlib.ExitStack() as stack:
            ours_proc = stack.enter_context(ours_cm)
            pg_proc = None
            if pg_cm is not None:
                try:
                    pg_proc = stack.enter_context(pg_cm)
                except (RuntimeError, OSError) as exc:
                    pg_info = f"pygeoapi did not start: {exc}"
            runners = {
                "raw lazy": lambda kind, q, lay: raw(kind, q, lay, False),
                "raw dask": lambda kind, q, lay: raw(kind, q, lay, True),
                "ours in-process": lambda kind, q, lay: in_process(kind, q),
                "ours HTTP": lambda kind, q, lay: _get(
                    f"{ours_url}/{service_params(kind, q)[0]}/?" + urlencode(service_params(kind, q)[1])
                ),
            }
            if pg_proc is not None:

                def pygeoapi(kind, q, lay):
                    body = _get(pg_info + pygeoapi_url(kind, q, lay))
                    return area_from_netcdf(body, tmp_path) if kind == "area" else body

                runners["pygeoapi HTTP"] = pygeoapi
            # warm-up: imports, first connections, worker start, each query's first open of its store; every
            # kind, as many times as the servers have workers (a request goes to whichever worker is free: with
            # the point alone, a worker's first map paid ~0.8 s of first-time costs inside the timed runs)
            for kind in KINDS:
                for run in runners.values():
                    for _ in range(2 * SERVER_WORKERS):
                        run(kind, places[kind][0], layout_of(kind, places[kind][0]))
            timings: dict[tuple[str, str, str], list[float]] = {}
            values: dict[tuple[str, str], np.ndarray] = {}
            layouts_used = {}
            for kind in KINDS:
                for cache in ("cold", "warm"):
                    for q in places[kind]:
                        layout = layout_of(kind, q)
                        layouts_used.setdefault(kind, set()).add(layout)
                        for name, run in runners.items():
                            if cache == "cold":
                                for p in paths.values():
                                    evict(p)
                            seconds, out = timed(lambda run=run, kind=kind, q=q, layout=layout: run(kind, q, layout))
                            timings.setdefault((kind, name, cache), []).append(seconds)
                            if (kind, name) not in values:
                                values[kind, name] = (
                                    out
                                    if isinstance(out, np.ndarray) and kind == "area"
                                    else result_values(kind, out, tmp_path)
                                )
            peaks = {"ours": peak_rss_mib(ours_proc), "pygeoapi": peak_rss_mib(pg_proc) if pg_proc else float("nan")}
    finally:
        settings.DATA_ROOT = old_root

    times, lat, lon = grid()
    print(
        f"\nSYNTHETIC global cube {len(times)} x {len(lat)} x {len(lon)} ({RES:g} deg daily float32); our stores "
        f"(portal.subsets.store.build_stores, {build_s:.0f} s): "
        + ", ".join(f"{k} {_dir_stats(p)[0] / 2**20:.0f} MiB" for k, p in paths.items())
    )
    print(
        f"{REPEATS} places per query, seconds median (min-max); cold = stores evicted from the page cache before "
        f"each request; both servers gunicorn with {SERVER_WORKERS} workers on this machine; raw = raw xarray "
        f"(open + select + the same output format) on the store our service reads"
    )
    if "pygeoapi HTTP" not in runners:
        print(f"pygeoapi SKIPPED: {pg_info}")
    print(
        "queries: point = full series, CoverageJSON (pygeoapi: EDR position); map = one day, NetCDF (pygeoapi: "
        "Coverages, uncompressed NetCDF); box = 10x10 deg x 1 year, NetCDF (same); area = cos-lat mean series over "
        "10x10 deg x all days, CSV (pygeoapi has none: Coverages NetCDF of the box + mean in the client)"
    )
    names = list(runners)
    print(
        f"{'query':<7}{'store':<8}{'cache':<6}"
        + "".join(f"{n:>24}" for n in names)
        + f"{'ours/raw':>10}{'in-proc/raw':>12}{'ours/pygeoapi':>14}"
    )
    for kind in KINDS:
        for cache in ("cold", "warm"):
            med = {n: statistics.median(timings[kind, n, cache]) for n in names}
            best_raw = min(med["raw lazy"], med["raw dask"])
            pg = f"{med['ours HTTP'] / med['pygeoapi HTTP']:14.2f}" if "pygeoapi HTTP" in med else f"{'-':>14}"
            print(
                f"{kind:<7}{'/'.join(sorted(layouts_used[kind])):<8}{cache:<6}"
                + "".join(f"{_fmt(timings[kind, n, cache]):>24}" for n in names)
                + f"{med['ours HTTP'] / best_raw:10.2f}{med['ours in-process'] / best_raw:12.2f}"
                + pg
            )
    print(f"peak RSS of a server worker (VmHWM): ours {peaks['ours']:.0f} MiB, pygeoapi {peaks['pygeoapi']:.0f} MiB")

    for kind in KINDS:  # sanity: every path gives the same values as raw xarray
        reference = values[kind, "raw lazy"]
        for name in names:
            got = values[kind, name]
            if kind == "map" and name == "pygeoapi HTTP":
                got = got.astype("float32").astype("float64")
            np.testing.assert_allclose(got, reference, rtol=1e-5, equal_nan=True, err_msg=f"{kind} {name}")
