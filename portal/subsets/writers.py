"""File writers of subset answers: CF NetCDF, zipped Zarr, CSV, cloud-optimized GeoTIFF, CoverageJSON.

Pure numpy / xarray / rasterio code (no Django). Each writer takes what
:func:`portal.subsets.core.select`, :func:`~portal.subsets.core.point_series` or
:func:`~portal.subsets.core.area_mean` returns and writes it atomically (a temporary name in the
target folder, then a rename): a failure leaves nothing behind.

References
----------
* CF Conventions 1.8, https://cfconventions.org/
* CoverageJSON format specification, OGC Community Standard 21-069r2,
  https://docs.ogc.org/cs/21-069r2/21-069r2.html
* Cloud Optimized GeoTIFF, GDAL COG driver, https://gdal.org/drivers/raster/cog.html
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import xarray as xr

from products.methods.files import atomic_path

from .core import SubsetError, iso_time


@contextmanager
def _atomic(path: str | os.PathLike[str]) -> Iterator[Path]:
    """:func:`products.methods.files.atomic_path`, creating the target's folder first."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        yield tmp


_KEEP_ENCODING = ("dtype", "scale_factor", "add_offset", "_FillValue", "missing_value", "units", "calendar")


def _clean_encoding(ds: xr.Dataset) -> xr.Dataset:
    """Copy of ``ds`` keeping only the value encodings (packing, fill, time units) of the source."""
    out = ds.copy()
    for var in out.variables.values():
        var.encoding = {k: v for k, v in var.encoding.items() if k in _KEEP_ENCODING}
    for name, attrs in (
        ("lat", {"standard_name": "latitude", "units": "degrees_north"}),
        ("lon", {"standard_name": "longitude", "units": "degrees_east"}),
    ):
        if name in out.coords:
            out[name].attrs = {**attrs, **out[name].attrs}
    return out


def to_netcdf(
    ds: xr.Dataset,
    path: str | os.PathLike[str],
    *,
    citation: str,
    attrs: Mapping[str, Any] | None = None,
    complevel: int = 4,
) -> Path:
    """Write a CF NetCDF4 file (zlib-compressed), atomically.

    Parameters
    ----------
    ds : xarray.Dataset
        A selection (:func:`select`), point series or area mean.
    path : path-like
        Target file; written under a temporary name in the same folder, then renamed.
    citation : str
        How to cite the dataset; stored as the global attribute ``citation``.
    attrs : mapping, optional
        More global attributes (title, doi, license, version, ...), overriding the dataset's.
    complevel : int
        zlib level 1-9.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OSError, ValueError
        From netCDF4 / xarray; no file is left behind.

    References
    ----------
    CF Conventions 1.8; netCDF4-python, https://unidata.github.io/netcdf4-python/
    """
    out = _clean_encoding(ds)
    out.attrs = {**ds.attrs, **dict(attrs or {}), "Conventions": "CF-1.8", "citation": citation}
    encoding = {name: {"zlib": True, "complevel": complevel, "shuffle": True} for name in out.data_vars}
    with _atomic(path) as tmp:
        out.to_netcdf(tmp, format="NETCDF4", engine="netcdf4", encoding=encoding)
    return Path(path)


def to_zarr_zip(
    ds: xr.Dataset,
    path: str | os.PathLike[str],
    *,
    attrs: Mapping[str, Any] | None = None,
) -> Path:
    """Write a Zarr store (format 2, consolidated metadata) inside a zip file, atomically.

    The store sits at the zip's root, entries uncompressed (chunks are Blosc-compressed
    already). Open with ``xarray.open_zarr(zarr.storage.ZipStore(path, mode="r"))``.

    Parameters
    ----------
    ds : xarray.Dataset
    path : path-like
        Target ``.zip`` file.
    attrs : mapping, optional
        Global attributes to add (citation, ...).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OSError, ValueError
        From zarr / zipfile; no file is left behind.

    References
    ----------
    Zarr storage specification v2, https://zarr-specs.readthedocs.io/en/latest/v2/v2.0.html
    """
    out = _clean_encoding(ds)
    out.attrs = {**ds.attrs, **dict(attrs or {})}
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".zarr"))
    try:
        out.to_zarr(work, mode="w", zarr_format=2, consolidated=True)
        with _atomic(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for file in sorted(p for p in work.rglob("*") if p.is_file()):
                zf.write(file, file.relative_to(work).as_posix())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def to_csv(ds: xr.Dataset, path: str | os.PathLike[str], *, drop_empty: bool = False) -> Path:
    """Write long-form CSV, atomically.

    Columns ``time, lat, lon, <variables...>``: one row per time step and cell for a selection,
    per time step for a point series (``lat``, ``lon`` = the cell's centre on every row), and
    ``time, <variables...>`` for an area mean. Times in ISO 8601, floats with full precision,
    missing values empty.

    Parameters
    ----------
    ds : xarray.Dataset
    path : path-like
    drop_empty : bool
        Leave out rows where every variable is missing (e.g. cells outside a polygon).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OSError
        No file is left behind.
    """
    frame = ds.reset_coords().to_dataframe().reset_index()
    names = [str(n) for n in ds.data_vars]
    lead = [c for c in ("time", "lat", "lon") if c in frame.columns]
    frame = frame[lead + names]
    if drop_empty:
        frame = frame.dropna(subset=names, how="all")
    if "time" in frame.columns:
        frame["time"] = frame["time"].map(iso_time)
    with _atomic(path) as tmp:
        frame.to_csv(tmp, index=False, na_rep="")
    return Path(path)


def to_geotiff(
    ds: xr.Dataset,
    path: str | os.PathLike[str],
    *,
    variable: str | None = None,
    blocksize: int = 256,
) -> Path:
    """Write one variable as a cloud-optimized GeoTIFF, one band per time step, atomically.

    Band ``k`` holds time step ``k``; its description (and tag ``time``) is the ISO 8601 time.
    Variables packed as integers in the source (``scale_factor`` / ``add_offset`` / ``_FillValue``
    in their encoding, e.g. ``sm_1km`` with scale 0.001) are written packed, with the band scale,
    offset and nodata set so that ``value = raw * scale + offset``; others as float32 with nodata
    NaN. CRS EPSG:4326; longitudes may exceed 180 for boxes crossing the antimeridian.

    Parameters
    ----------
    ds : xarray.Dataset
        A selection ``(time, lat, lon)`` on a regular grid.
    path : path-like
    variable : str, optional
        Required when ``ds`` holds more than one variable.
    blocksize : int
        COG tile size in pixels.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    SubsetError
        ``variables``: several variables and none named; ``bbox``: an irregular grid or fewer
        than 2 cells in lat or lon (a GeoTIFF needs a pixel size).
    OSError, rasterio.errors.RasterioError
        No file is left behind.

    References
    ----------
    GDAL COG driver (GDAL >= 3.1), https://gdal.org/drivers/raster/cog.html; rasterio,
    https://rasterio.readthedocs.io/
    """
    import rasterio
    from affine import Affine

    names = [str(n) for n in ds.data_vars]
    if variable is None:
        if len(names) != 1:
            raise SubsetError("variables", f"a GeoTIFF holds one variable; choose one of {names}")
        variable = names[0]
    if variable not in names:
        raise SubsetError("variables", f"{variable!r} not in {names}")
    da = ds[variable]
    if "time" not in da.dims:
        da = da.expand_dims("time")
    da = da.transpose("time", "lat", "lon")
    lat = np.asarray(da["lat"].values, dtype=float)
    lon = np.asarray(da["lon"].values, dtype=float)
    for name, values in (("lat", lat), ("lon", lon)):
        if values.size < 2:
            raise SubsetError("bbox", f"a GeoTIFF needs at least 2 cells in {name}, got {values.size}")
        steps = np.diff(values)
        if not np.allclose(steps, steps[0], rtol=1e-6, atol=1e-9):
            raise SubsetError("bbox", f"a GeoTIFF needs a regular grid; {name} spacing varies")
    if lon[1] < lon[0]:
        raise SubsetError("bbox", "lon must increase eastwards")
    dx, dy = float(lon[1] - lon[0]), float(abs(lat[1] - lat[0]))
    north_up = lat[0] > lat[-1]
    transform = Affine(dx, 0.0, float(lon[0]) - dx / 2, 0.0, -dy, float(lat.max()) + dy / 2)

    enc = da.encoding
    packed_dtype = np.dtype(enc["dtype"]) if "dtype" in enc else None
    scale, offset = float(enc.get("scale_factor", 1.0)), float(enc.get("add_offset", 0.0))
    fill = enc.get("_FillValue")
    values = np.asarray(da.values)
    if not north_up:
        values = values[:, ::-1, :]
    if packed_dtype is not None and packed_dtype.kind in "iu" and fill is not None and values.dtype.kind == "f":
        missing = ~np.isfinite(values)
        raw = np.round((np.where(missing, 0.0, values) - offset) / scale)
        data = np.where(missing, fill, raw).astype(packed_dtype)
        dtype, nodata = packed_dtype, fill
    elif values.dtype.kind in "iu":
        data, dtype, nodata = values, values.dtype, fill
        scale, offset = 1.0, 0.0
    else:
        data, dtype, nodata = values.astype("float32"), np.dtype("float32"), float("nan")
        scale, offset = 1.0, 0.0
    times = [iso_time(t) for t in da["time"].values]
    count = len(times)
    profile = {
        "driver": "COG",
        "width": lon.size,
        "height": lat.size,
        "count": count,
        "dtype": dtype.name,
        "crs": "EPSG:4326",
        "transform": transform,
        "nodata": nodata,
        "compress": "deflate",
        "blocksize": blocksize,
    }
    with _atomic(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data)
            dst.scales = [scale] * count
            dst.offsets = [offset] * count
            for k, t in enumerate(times, start=1):
                dst.set_band_description(k, t)
                dst.update_tags(k, time=t)
            tags = {"variable": variable}
            for key in ("units", "standard_name", "long_name"):
                if key in da.attrs:
                    tags[key] = str(da.attrs[key])
            dst.update_tags(**tags)
    return Path(path)


def _json_values(values: np.ndarray) -> list[Any]:
    flat = np.asarray(values).ravel()
    if flat.dtype.kind == "f":
        return [None if not math.isfinite(v) else float(v) for v in flat.tolist()]
    return flat.tolist()


def to_coveragejson(ds: xr.Dataset) -> dict[str, Any]:
    """A CoverageJSON document (plain dict) for charts and EDR responses.

    Domain types: ``Grid`` for a selection ``(time, lat, lon)``, ``PointSeries`` for a point
    series (scalar ``lat`` / ``lon``), ``PolygonSeries`` for an area mean (``time`` only, region
    in ``attrs["geospatial_bounds"]``). Ranges are ``NdArray`` with ``null`` for missing values.

    Parameters
    ----------
    ds : xarray.Dataset
        Output of :func:`select`, :func:`point_series` or :func:`area_mean`.

    Returns
    -------
    dict
        JSON-serialisable ``{"type": "Coverage", "domain": ..., "parameters": ..., "ranges": ...}``.

    Raises
    ------
    SubsetError
        ``dataset``: a shape none of the three domain types describes.

    References
    ----------
    OGC CoverageJSON Community Standard 21-069r2, https://docs.ogc.org/cs/21-069r2/21-069r2.html
    """
    times = [iso_time(t) for t in np.atleast_1d(ds["time"].values)] if "time" in ds.coords else []
    first = np.atleast_1d(ds["time"].values)[0] if "time" in ds.coords and ds["time"].size else None
    calendar = getattr(first, "calendar", None) or "Gregorian"  # cftime values carry theirs
    crs = {"type": "GeographicCRS", "id": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}
    referencing = [
        {"coordinates": ["x", "y"], "system": crs},
        {"coordinates": ["t"], "system": {"type": "TemporalRS", "calendar": calendar}},
    ]
    names = [str(n) for n in ds.data_vars]
    spatial = {d for v in names for d in ds[v].dims} - {"time"}
    if spatial == {"lat", "lon"}:
        axes = {
            "x": {"values": [float(v) for v in ds["lon"].values]},
            "y": {"values": [float(v) for v in ds["lat"].values]},
            "t": {"values": times},
        }
        domain_type, axis_names, order = "Grid", ["t", "y", "x"], ("time", "lat", "lon")
    elif not spatial and "lat" in ds.coords and "lon" in ds.coords and ds["lat"].ndim == 0:
        axes = {
            "x": {"values": [float(ds["lon"])]},
            "y": {"values": [float(ds["lat"])]},
            "t": {"values": times},
        }
        domain_type, axis_names, order = "PointSeries", ["t"], ("time",)
    elif not spatial and "geospatial_bounds" in ds.attrs:
        geom = shapely.from_wkt(ds.attrs["geospatial_bounds"])
        polygons = [
            [[[float(x), float(y)] for x, y in ring.coords] for ring in (p.exterior, *p.interiors)]
            for p in getattr(geom, "geoms", [geom])
        ]
        axes = {
            "composite": {"dataType": "polygon", "coordinates": ["x", "y"], "values": polygons},
            "t": {"values": times},
        }
        domain_type, axis_names, order = "PolygonSeries", ["t"], ("time",)
    else:
        raise SubsetError("dataset", f"no CoverageJSON domain for variables with dims {sorted(spatial)}")

    parameters, ranges = {}, {}
    for name in names:
        da = ds[name]
        label = str(da.attrs.get("long_name", name))
        parameter: dict[str, Any] = {
            "type": "Parameter",
            "description": {"en": label},
            "observedProperty": {"label": {"en": label}},
        }
        if "standard_name" in da.attrs:
            parameter["observedProperty"]["id"] = f"http://vocab.nerc.ac.uk/standard_name/{da.attrs['standard_name']}/"
        if "units" in da.attrs:
            parameter["unit"] = {"symbol": str(da.attrs["units"])}
        parameters[name] = parameter
        if "time" not in da.dims:
            da = da.expand_dims("time")
        da = da.transpose(*order)
        ranges[name] = {
            "type": "NdArray",
            "dataType": "float" if da.dtype.kind == "f" else "integer",
            "axisNames": axis_names,
            "shape": list(da.shape),
            "values": _json_values(da.values),
        }
    return {
        "type": "Coverage",
        "domain": {"type": "Domain", "domainType": domain_type, "axes": axes, "referencing": referencing},
        "parameters": parameters,
        "ranges": ranges,
    }


def write(ds: xr.Dataset, path: str | os.PathLike[str], fmt: str, *, attrs: Mapping[str, str],
          drop_empty: bool = False) -> Path:
    """Write an answer in ``fmt`` (one of :data:`portal.subsets.core.FORMATS`), atomically.

    Parameters
    ----------
    ds : xarray.Dataset
        What :func:`~portal.subsets.core.select`, :func:`~portal.subsets.core.point_series` or
        :func:`~portal.subsets.core.area_mean` returned.
    path : path-like
    fmt : {"netcdf", "geotiff", "csv", "zarr", "coveragejson"}
    attrs : mapping of str to str
        Global attributes of the record (ACDD) to carry into the formats that hold them.
    drop_empty : bool
        CSV: leave out rows where every variable is missing (cells outside a polygon).

    Raises
    ------
    SubsetError
        ``f``: an unknown format; others as the writer's.
    """
    if fmt == "netcdf":
        return to_netcdf(ds, path, citation=attrs.get("citation", ""), attrs=attrs, complevel=1)
    if fmt == "geotiff":
        return to_geotiff(ds, path)
    if fmt == "csv":
        return to_csv(ds, path, drop_empty=drop_empty)
    if fmt == "zarr":
        return to_zarr_zip(ds, path, attrs=attrs)
    if fmt == "coveragejson":
        import json

        document = to_coveragejson(ds.load())
        with _atomic(path) as tmp:
            tmp.write_text(json.dumps(document))
        return Path(path)
    raise SubsetError("f", f"{fmt!r} is not a format")
