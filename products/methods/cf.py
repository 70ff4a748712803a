"""CF-1.8 and ACDD-1.3 pieces shared by every NetCDF writer of the portal (pure xarray/numpy, no Django).

Products (:mod:`products.generators`) and subsets (:mod:`portal.subsets.writers`) build their
``xarray.Dataset`` s, then these functions make them files that the standard checkers accept
(``cfchecker``; the IOOS compliance checker's ``cf:1.8`` and ``acdd:1.3`` suites) and that GIS and
NetCDF tools read without guessing:

* :func:`crs_variable` / :func:`add_crs` -- the ``crs`` grid-mapping variable (``latitude_longitude``
  with the full OGC WKT of EPSG:4326) and ``grid_mapping = "crs"`` on every variable located by lat/lon;
* :func:`add_bounds` -- ``time_bnds``, ``lat_bnds``, ``lon_bnds`` (CF 7.1 cell boundaries) on the
  dimension coordinates, with the ``bounds`` attributes;
* :func:`extent_attributes` -- the ACDD extent attributes (``geospatial_*``, ``time_coverage_*``)
  of the dataset's own coordinates;
* :func:`standardise` -- the above plus coordinate attributes, ``coverage_content_type`` and
  ``Conventions``;
* :func:`encoding_for` -- NetCDF encodings: no ``_FillValue`` on coordinates or bounds, time as
  float64 days, strings as fixed-width character arrays, packed integers left packed, zlib;
* :func:`global_attributes` / :func:`history_line` / :func:`merge_attrs` -- the global attributes
  every file carries (``Conventions``, a time-stamped ``history`` line, None values dropped);
* :func:`pack` / :func:`unpack` -- packed integers (CF 8.1: ``scale_factor``, ``add_offset``,
  ``_FillValue``);
* :func:`timeseries_dataset` -- the one builder of CF ``timeSeries`` discrete sampling geometries
  (stations, pixels, basins, regions) from a long table;
* :func:`write_netcdf` -- all of it, written atomically.

Each works on a (time, lat, lon) grid or any selection of one, on a point series (scalar lat/lon),
on a time-only series and on CF discrete sampling geometries (lat/lon along a station dimension).

References
----------
Eaton, B., et al. (2020): NetCDF Climate and Forecast (CF) Metadata Conventions 1.8,
https://cfconventions.org/ (2.2 data types, 3.5 flags, 5.6 grid mappings and ``crs_wkt``,
7.1 cell boundaries, 8.1 packed data, 9 discrete sampling geometries).
ESIP (2015): Attribute Convention for Data Discovery 1-3,
https://wiki.esipfed.org/Attribute_Convention_for_Data_Discovery_1-3.
PROJ / pyproj: ``pyproj.CRS.from_epsg(4326).to_wkt()`` (OGC WKT2:2019).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Hashable, Mapping
from pathlib import Path

import cftime
import netCDF4
import numpy as np
import pandas as pd
import pyproj
import xarray as xr

from products.methods.files import atomic_path

CONVENTIONS = "CF-1.8, ACDD-1.3"
TIME_UNITS = "days since 1970-01-01 00:00:00"
CALENDAR = "standard"
BOUNDS_DIM = "nv"
CRS_NAME = "crs"
GEOSPATIAL_BOUNDS_CRS = "EPSG:4326"
COVERAGE_CONTENT_TYPES = (
    "image",
    "thematicClassification",
    "physicalMeasurement",
    "auxiliaryInformation",
    "qualityInformation",
    "referenceInformation",
    "modelResult",
    "coordinate",
)
COORDINATE_ATTRS = {
    "time": {"standard_name": "time", "long_name": "time", "axis": "T"},
    "lat": {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north", "axis": "Y"},
    "lon": {"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east", "axis": "X"},
}
"""CF attributes of the ``time``, ``lat`` and ``lon`` coordinates (``axis`` only on dimension coordinates)."""


@functools.lru_cache(maxsize=1)
def epsg4326_wkt() -> str:
    """The full OGC WKT (WKT2:2019) of EPSG:4326 from PROJ's database, as ``crs_wkt`` wants it."""

    return pyproj.CRS.from_epsg(4326).to_wkt()


def crs_attributes() -> dict:
    """Attributes of the ``crs`` grid-mapping variable: WGS 84 latitude/longitude (EPSG:4326).

    Returns
    -------
    dict
        ``grid_mapping_name`` ``latitude_longitude``, the WGS 84 ellipsoid (``semi_major_axis``
        6378137 m, ``inverse_flattening`` 298.257223563), ``longitude_of_prime_meridian`` 0,
        ``crs_wkt`` (:func:`epsg4326_wkt`), ``epsg_code`` and a ``long_name``.
    """
    return {
        "grid_mapping_name": "latitude_longitude",
        "long_name": "coordinate reference system: WGS 84 latitude and longitude (EPSG:4326)",
        "semi_major_axis": 6378137.0,
        "inverse_flattening": 298.257223563,
        "longitude_of_prime_meridian": 0.0,
        "crs_wkt": epsg4326_wkt(),
        "epsg_code": "EPSG:4326",
    }


def crs_variable(attrs: Mapping | None = None) -> xr.Variable:
    """The ``crs`` grid-mapping variable: an int32 scalar (CF 5.6: its value is not used) with attributes.

    Parameters
    ----------
    attrs : mapping, optional
        Its attributes; default :func:`crs_attributes` (WGS 84 latitude/longitude, EPSG:4326).

    Returns
    -------
    xarray.Variable
        Dims (), int32 0.
    """
    return xr.Variable((), np.int32(0), dict(crs_attributes() if attrs is None else attrs))


def _located(ds: xr.Dataset, name: Hashable) -> bool:
    """True when data variable ``name`` has lat and lon among its coordinates (grid, station or point)."""
    var = ds[name]
    return "lat" in var.coords and "lon" in var.coords and name not in (CRS_NAME,) and not _is_bounds(ds, name)


def _is_bounds(ds: xr.Dataset, name: Hashable) -> bool:
    return any(v.attrs.get("bounds") == name for v in ds.variables.values())


def add_crs(ds: xr.Dataset) -> xr.Dataset:
    """Add the ``crs`` grid-mapping variable and ``grid_mapping = "crs"`` on the variables it locates.

    Parameters
    ----------
    ds : xarray.Dataset
        With ``lat`` / ``lon`` coordinates in degrees on WGS 84: 1-D grid axes, scalars (a point
        series) or along a station dimension (CF DSG). Without them (a time-only series) ``ds``
        is returned unchanged.

    Returns
    -------
    xarray.Dataset
        A copy with ``crs`` (int32 scalar, attributes :func:`crs_attributes`) and ``grid_mapping``
        on each data variable that has lat and lon coordinates.
    """
    if "lat" not in ds.variables or "lon" not in ds.variables:
        return ds
    ds = ds.copy()
    ds[CRS_NAME] = crs_variable()
    for name in ds.data_vars:
        if _located(ds, name):
            ds[name].attrs["grid_mapping"] = CRS_NAME
            ds[name].encoding.pop("grid_mapping", None)
    return ds


def _month_starts(times: pd.DatetimeIndex) -> bool:
    """True when every time is 00:00 on the first of a month, at least a month apart (gaps allowed)."""
    if not ((times.day == 1) & (times.normalize() == times)).all():
        return False
    steps = np.diff(times.values).astype("timedelta64[D]").astype(int)
    return bool(len(steps) == 0 or (steps >= 28).all())


def _typical_step(times: pd.DatetimeIndex) -> pd.Timedelta | None:
    """The most frequent step between sorted distinct times when it makes up half of them at least, else None."""
    steps = np.diff(np.unique(times.values))
    if not len(steps):
        return None
    values, counts = np.unique(steps, return_counts=True)
    best = int(np.argmax(counts))
    return pd.Timedelta(values[best]) if counts[best] * 2 >= len(steps) else None


def time_encoding(units: str = "days since 1970-01-01") -> dict:
    """The xarray ``encoding`` of a datetime64 time coordinate or bounds variable as the products store it.

    Returns
    -------
    dict
        ``units`` (``"<unit> since <epoch>"``), ``calendar`` :data:`CALENDAR`, ``dtype`` float64 (CF-1.8
        has no int64) and no ``_FillValue``; :func:`encoding_for` keeps the units.
    """
    return {"units": units, "calendar": CALENDAR, "dtype": "float64", "_FillValue": None}


def time_bounds(times, step: str | pd.DateOffset | pd.Timedelta | None = None) -> np.ndarray:
    """Cell bounds ``[t, t + step)`` of times that label the start of their cell.

    Parameters
    ----------
    times : array-like of datetime64
        (n,), increasing; each the start of a cell (day, month).
    step : str, pandas.DateOffset or pandas.Timedelta, optional
        The cell length (``"1D"``, ``"MS"`` for calendar months, ``"3h"``...). Default: calendar
        months when every time is a month start (gaps allowed), else the most frequent step when
        it makes up half of the steps at least, else each cell ends where the next begins and the
        last one is as long as the median step; one time alone is a day.

    Returns
    -------
    numpy.ndarray
        datetime64[ns], (n, 2).
    """
    index = pd.DatetimeIndex(np.atleast_1d(np.asarray(times, dtype="datetime64[ns]")))
    if step is not None:
        offset = pd.tseries.frequencies.to_offset(step) if isinstance(step, str) else step
        upper = index + offset
    elif len(index) and _month_starts(index) and (len(index) > 1):
        upper = index + pd.offsets.MonthBegin(1)
    elif len(index) > 1 and _typical_step(index) is not None:
        upper = index + _typical_step(index)
    elif len(index) > 1:
        values = index.values
        last = values[-1] + np.median(np.diff(values).astype("int64")).astype("timedelta64[ns]")
        upper = pd.DatetimeIndex(np.append(values[1:], last))
    else:
        upper = index + pd.Timedelta(days=1)
    return np.stack([index.values, pd.DatetimeIndex(upper).values], axis=1).astype("datetime64[ns]")


def axis_bounds(values, resolution: float | None = None) -> np.ndarray | None:
    """Cell edges of a regular or irregular 1-D lat/lon axis of cell centres.

    Parameters
    ----------
    values : array-like of float
        (n,), monotonic cell centres in degrees.
    resolution : float, optional
        The cell size in degrees; needed when the axis has one value (else None is returned).

    Returns
    -------
    numpy.ndarray or None
        float64 (n, 2): halfway between neighbours, the outer edges half a step (or half of
        ``resolution``) beyond the outer centres, in the axis' direction.
    """
    x = np.asarray(values, dtype="float64").reshape(-1)
    if x.size == 0:
        return None
    if x.size == 1:
        if not resolution:
            return None
        half = abs(float(resolution)) / 2
        return np.array([[x[0] - half, x[0] + half]])
    mid = (x[1:] + x[:-1]) / 2
    edges = np.concatenate([[x[0] - (mid[0] - x[0])], mid, [x[-1] + (x[-1] - mid[-1])]])
    return np.stack([edges[:-1], edges[1:]], axis=1)


def add_bounds(
    ds: xr.Dataset,
    *,
    time_step: str | pd.DateOffset | pd.Timedelta | None = None,
    resolution: Mapping[str, float] | float | None = None,
) -> xr.Dataset:
    """Add ``time_bnds``, ``lat_bnds``, ``lon_bnds`` (dims (axis, nv)) to the dimension coordinates.

    Existing bounds variables are kept (their ``bounds`` attribute is set). Scalar coordinates (a
    point series) and lat/lon along a station dimension get none: they are points.

    Parameters
    ----------
    ds : xarray.Dataset
        With any of ``time`` (datetime64, start of each cell), ``lat``, ``lon`` (degrees, cell
        centres) as 1-D dimension coordinates.
    time_step : str, pandas.DateOffset or pandas.Timedelta, optional
        The time cell length, see :func:`time_bounds`.
    resolution : float or mapping, optional
        Grid cell size in degrees (one number, or ``{"lat": .., "lon": ..}``), used when an axis
        has a single value; otherwise the spacing of the values gives the edges.

    Returns
    -------
    xarray.Dataset
        A copy with the bounds variables. ``lat_bnds`` are clipped to [-90, 90].
    """
    ds = ds.copy()
    sizes = resolution if isinstance(resolution, Mapping) else {"lat": resolution, "lon": resolution}
    for axis in ("time", "lat", "lon"):
        if axis not in ds.coords or ds[axis].dims != (axis,):
            continue
        name = ds[axis].attrs.get("bounds") or f"{axis}_bnds"
        if name not in ds.variables:
            bounds: np.ndarray | None
            if axis == "time":
                if not np.issubdtype(ds[axis].dtype, np.datetime64):
                    continue
                bounds = time_bounds(ds[axis].values, time_step)
            else:
                bounds = axis_bounds(ds[axis].values, sizes.get(axis))
                if bounds is None:
                    continue
                if axis == "lat":
                    bounds = np.clip(bounds, -90.0, 90.0)
            ds[name] = xr.DataArray(bounds, dims=(axis, BOUNDS_DIM))
        ds[axis].attrs["bounds"] = name
        ds[name].attrs = {}
    return ds


def _iso(value) -> str:
    stamp = pd.Timestamp(value)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_duration(start, end) -> str:
    """ISO 8601 duration between two times: ``P<n>M`` / ``P<y>Y<m>M`` for whole calendar months, else ``P<d>DT<h>H<m>M<s>S``."""
    a, b = pd.Timestamp(start), pd.Timestamp(end)
    if a.day == b.day == 1 and a == a.normalize() and b == b.normalize():
        months = (b.year - a.year) * 12 + b.month - a.month
        if months > 0:
            years, months = divmod(months, 12)
            return "P" + (f"{years}Y" if years else "") + (f"{months}M" if months else "")
    seconds = int(round((b - a).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{secs}S" if secs else "")
    return "P" + (f"{days}D" if days or not clock else "") + (f"T{clock}" if clock else "")


def _resolution(values) -> float | None:
    x = np.asarray(values, dtype="float64").reshape(-1)
    if x.size < 2:
        return None
    steps = np.abs(np.diff(x))
    return float(np.round(np.median(steps), 10))


def _polygon(lat_min: float, lat_max: float, lon_min: float, lon_max: float) -> str:
    """WKT of the box in EPSG:4326 axis order (latitude, longitude), as ACDD's examples write it."""
    if lat_min == lat_max and lon_min == lon_max:
        return f"POINT ({lat_min:.6g} {lon_min:.6g})"
    if lat_min == lat_max or lon_min == lon_max:
        return f"LINESTRING ({lat_min:.6g} {lon_min:.6g}, {lat_max:.6g} {lon_max:.6g})"
    corners = [(lat_min, lon_min), (lat_max, lon_min), (lat_max, lon_max), (lat_min, lon_max), (lat_min, lon_min)]
    return "POLYGON ((" + ", ".join(f"{y:.6g} {x:.6g}" for y, x in corners) + "))"


def bbox_attributes(bbox) -> dict:
    """ACDD horizontal extent attributes of a box ``(min_lon, min_lat, max_lon, max_lat)`` in EPSG:4326.

    Returns
    -------
    dict
        ``geospatial_lat_min/max/units``, ``geospatial_lon_min/max/units``, ``geospatial_bounds``
        (WKT POLYGON, POINT or LINESTRING) and ``geospatial_bounds_crs``.
    """
    min_lon, min_lat, max_lon, max_lat = (float(v) for v in bbox)
    return {
        "geospatial_lat_min": min_lat,
        "geospatial_lat_max": max_lat,
        "geospatial_lat_units": "degrees_north",
        "geospatial_lon_min": min_lon,
        "geospatial_lon_max": max_lon,
        "geospatial_lon_units": "degrees_east",
        "geospatial_bounds": _polygon(min_lat, max_lat, min_lon, max_lon),
        "geospatial_bounds_crs": GEOSPATIAL_BOUNDS_CRS,
    }


def soil_layer_attributes(top: float, bottom: float) -> dict:
    """ACDD vertical extent of a soil layer, depths below the land surface in metres (``positive = "down"``).

    For fields of one layer (surface soil moisture 0-0.05 m, a 0-0.1 m model layer) that carry no
    vertical coordinate.
    """
    return {
        "geospatial_vertical_min": float(top),
        "geospatial_vertical_max": float(bottom),
        "geospatial_vertical_positive": "down",
        "geospatial_vertical_units": "m",
    }


def extent_attributes(ds: xr.Dataset) -> dict:
    """ACDD 1.3 extent attributes of the dataset's own coordinates.

    Parameters
    ----------
    ds : xarray.Dataset
        With ``lat`` / ``lon`` (degrees; grid axes, scalars or station coordinates) and/or a
        ``time`` coordinate (datetime64), optionally their bounds (:func:`add_bounds`).

    Returns
    -------
    dict
        ``geospatial_lat_min/max/units`` and ``geospatial_lon_*`` (the coordinate values' range,
        which the IOOS checker compares with the data), ``geospatial_lat/lon_resolution`` for
        grid axes (e.g. ``"0.25 degrees"``), ``geospatial_bounds`` (WKT POLYGON of the cells'
        outer edges, POINT for a point) and ``geospatial_bounds_crs`` ``EPSG:4326``;
        ``time_coverage_start`` / ``time_coverage_end`` (first and last time value, ISO 8601 UTC),
        ``time_coverage_duration`` (first to last cell bound when bounds exist) and
        ``time_coverage_resolution`` (``P1M`` for month starts, else the most frequent step, e.g.
        ``P1D``; left out for irregular times such as satellite overpasses). Only the keys the
        coordinates allow.
    """
    attrs: dict = {}
    if "lat" in ds.variables and "lon" in ds.variables:
        lat, lon = np.asarray(ds["lat"].values, "float64"), np.asarray(ds["lon"].values, "float64")
        lat, lon = lat[np.isfinite(lat)], lon[np.isfinite(lon)]
        if lat.size and lon.size:
            box = {"lat": [float(lat.min()), float(lat.max())], "lon": [float(lon.min()), float(lon.max())]}
            attrs.update(
                {
                    "geospatial_lat_min": box["lat"][0],
                    "geospatial_lat_max": box["lat"][1],
                    "geospatial_lat_units": "degrees_north",
                    "geospatial_lon_min": box["lon"][0],
                    "geospatial_lon_max": box["lon"][1],
                    "geospatial_lon_units": "degrees_east",
                }
            )
            edges = dict(box)
            for axis in ("lat", "lon"):
                if ds[axis].dims == (axis,):
                    res = _resolution(ds[axis].values)
                    bounds = ds[axis].attrs.get("bounds")
                    if bounds in ds.variables:
                        b = np.asarray(ds[bounds].values, "float64")
                        edges[axis] = [float(b.min()), float(b.max())]
                        res = res or float(np.round(np.abs(b[0, 1] - b[0, 0]), 10))
                    if res:
                        attrs[f"geospatial_{axis}_resolution"] = f"{res:g} degrees"
            attrs["geospatial_bounds"] = _polygon(*edges["lat"], *edges["lon"])
            attrs["geospatial_bounds_crs"] = GEOSPATIAL_BOUNDS_CRS
    if "time" in ds.variables and np.issubdtype(ds["time"].dtype, np.datetime64) and ds["time"].size:
        times = pd.DatetimeIndex(np.sort(np.asarray(ds["time"].values).reshape(-1)))
        times = times[~times.isna()]
        if len(times):
            attrs["time_coverage_start"], attrs["time_coverage_end"] = _iso(times[0]), _iso(times[-1])
            bounds = ds["time"].attrs.get("bounds")
            if bounds in ds.variables and np.issubdtype(ds[bounds].dtype, np.datetime64):
                b = np.asarray(ds[bounds].values).reshape(-1)
                attrs["time_coverage_duration"] = iso_duration(b.min(), b.max())
                first = np.asarray(ds[bounds].values)[0] if ds[bounds].ndim == 2 else None
                if first is not None and len(times) == 1:
                    attrs["time_coverage_resolution"] = iso_duration(first[0], first[1])
            else:
                attrs["time_coverage_duration"] = iso_duration(times[0], times[-1])
            if len(times) > 1:
                step = None if _month_starts(times) else _typical_step(times)
                if _month_starts(times):
                    attrs["time_coverage_resolution"] = "P1M"
                elif step is not None:
                    attrs["time_coverage_resolution"] = iso_duration(times[0], times[0] + step)
    return attrs


def _default_content_type(var: xr.DataArray) -> str:
    if "flag_values" in var.attrs or "flag_masks" in var.attrs:
        return "auxiliaryInformation"
    if np.issubdtype(var.dtype, np.floating) or "scale_factor" in var.encoding or "scale_factor" in var.attrs:
        return "modelResult"
    return "auxiliaryInformation"


def standardise(
    ds: xr.Dataset,
    *,
    time_step: str | pd.DateOffset | pd.Timedelta | None = None,
    resolution: Mapping[str, float] | float | None = None,
    attrs: Mapping | None = None,
) -> xr.Dataset:
    """The dataset as the portal writes it: CF coordinates, bounds, ``crs``, ACDD extents and content types.

    Parameters
    ----------
    ds : xarray.Dataset
        Any product or subset dataset (grid, selection, point or time series, CF DSG).
    time_step, resolution
        Passed to :func:`add_bounds`.
    attrs : mapping, optional
        Global attributes set last (None values dropped).

    Returns
    -------
    xarray.Dataset
        A copy: ``time``/``lat``/``lon`` with ``standard_name``, ``long_name``, ``units`` and
        (as dimension coordinates) ``axis``, ``coverage_content_type = "coordinate"``; bounds
        (:func:`add_bounds`); ``crs`` (:func:`add_crs`); uint8 variables stored as CF-1.8 bytes
        with ``_Unsigned = "true"`` (:func:`unsigned_byte`); a ``coverage_content_type`` on every
        data variable that lacks one (``modelResult`` for floating-point or packed values,
        ``auxiliaryInformation`` for flags and other integers); the ACDD extent attributes
        (:func:`extent_attributes`) and ``Conventions = "CF-1.8, ACDD-1.3"`` among the globals.

    Raises
    ------
    ValueError
        A ``coverage_content_type`` outside the ISO 19115-1 codes.
    """
    ds = ds.copy()
    for axis, defaults in COORDINATE_ATTRS.items():
        if axis not in ds.variables:
            continue
        extra = {k: v for k, v in defaults.items() if k != "axis" or ds[axis].dims == (axis,)}
        if axis == "time":
            extra.pop("units", None)
        ds[axis].attrs = {
            **extra,
            **{k: v for k, v in ds[axis].attrs.items() if k != "_FillValue"},
            "coverage_content_type": "coordinate",
        }
    ds = add_crs(add_bounds(ds, time_step=time_step, resolution=resolution))
    bounds = {v.attrs.get("bounds") for v in ds.variables.values()} - {None}
    for name, var in ds.data_vars.items():
        if name == CRS_NAME or name in bounds:
            continue
        if var.dtype == np.uint8 and np.dtype(var.encoding.get("dtype", "u1")) == np.uint8:
            fill = var.encoding.get("_FillValue", var.attrs.get("_FillValue"))
            var.attrs = {k: v for k, v in unsigned_byte(var.attrs).items() if k != "_Unsigned"}
            var.encoding.update({"dtype": "int8", "_Unsigned": "true"})
            if fill is not None:
                var.encoding["_FillValue"] = unsigned_byte_fill(fill)
        kind = var.attrs.setdefault("coverage_content_type", _default_content_type(var))
        if kind not in COVERAGE_CONTENT_TYPES:
            raise ValueError(f"{name}: coverage_content_type {kind!r} is not one of {COVERAGE_CONTENT_TYPES}")
    for name, var in ds.coords.items():
        if name not in COORDINATE_ATTRS and name not in bounds:
            var.attrs.setdefault("coverage_content_type", "coordinate" if name in ds.dims else "auxiliaryInformation")
    ds.attrs = {
        **{k: v for k, v in ds.attrs.items() if v is not None},
        **extent_attributes(ds),
        "Conventions": CONVENTIONS,
        **{k: v for k, v in (attrs or {}).items() if v is not None},
    }
    return ds


def encoding_for(ds: xr.Dataset, *, complevel: int = 4) -> dict:
    """NetCDF-4 encodings of ``ds``'s variables, for ``Dataset.to_netcdf(encoding=...)``.

    Parameters
    ----------
    ds : xarray.Dataset
        As :func:`standardise` returns it (encodings it already holds are respected: a packed
        int16 variable keeps dtype, ``scale_factor``, ``add_offset`` and ``_FillValue``).
    complevel : int
        zlib deflate level of the data variables (1-9); 0 writes them uncompressed.

    Returns
    -------
    dict
        Per variable: no ``_FillValue`` on coordinates, bounds and ``crs`` (xarray would add NaN
        to float coordinates); ``time`` and its bounds as float64 ``days since 1970-01-01
        00:00:00`` (``standard`` calendar; CF-1.8 has no int64); strings as fixed-width
        character arrays (``S1`` with a ``<name>_strlen`` dimension: cfchecker rejects
        variable-length strings); ``zlib``/``shuffle`` on array data variables.
    """
    bounds = {v.attrs.get("bounds") for v in ds.variables.values()} - {None}
    out: dict = {}
    for name, var in ds.variables.items():
        enc = {
            k: v
            for k, v in var.encoding.items()
            if k
            in ("dtype", "scale_factor", "add_offset", "_FillValue", "units", "calendar", "chunksizes", "_Unsigned")
        }
        fixed = name in ds.coords or name in bounds or name == CRS_NAME
        if var.dtype.kind in "OUS":
            out[name] = {"dtype": "S1", "char_dim_name": f"{name}_strlen", "_FillValue": None}
            continue
        if fixed:
            enc["_FillValue"] = None
        if np.issubdtype(var.dtype, np.datetime64):
            parent = next((v for v in ds.variables.values() if v.attrs.get("bounds") == name), None)
            units = (parent.encoding if parent is not None else var.encoding).get("units", TIME_UNITS)
            enc = {
                "units": units if " since " in str(units) else TIME_UNITS,
                "calendar": CALENDAR,
                "dtype": "float64",
                "_FillValue": None,
            }
        elif not fixed and var.ndim and complevel:
            enc.update({"zlib": True, "complevel": int(complevel), "shuffle": True})
        out[name] = enc
    return out


encoding = encoding_for
"""Alias of :func:`encoding_for`."""


def grid_coordinates(
    time,
    lat,
    lon,
    *,
    time_step: str | pd.DateOffset | pd.Timedelta | None = None,
    resolution: Mapping[str, float] | float | None = None,
    attrs: Mapping | None = None,
) -> xr.Dataset:
    """The coordinates of a (time, lat, lon) grid as the portal writes them, without data variables.

    For writers that fill a grid window by window with netCDF4 (:func:`create_grid_netcdf`).

    Parameters
    ----------
    time : array-like of datetime64
        (n_time,), start of each cell.
    lat, lon : array-like of float
        (n_lat,), (n_lon,) cell centres in degrees, monotonic (a north-up grid has decreasing lat).
    time_step, resolution
        See :func:`add_bounds`.
    attrs : mapping, optional
        Global attributes (None values dropped).

    Returns
    -------
    xarray.Dataset
        :func:`standardise` d: ``time``, ``lat``, ``lon`` with their bounds, ``crs``, the extent
        attributes and ``Conventions``.
    """
    ds = xr.Dataset(
        coords={
            "time": ("time", np.asarray(time, dtype="datetime64[ns]").reshape(-1)),
            "lat": ("lat", np.asarray(lat, dtype="float64").reshape(-1)),
            "lon": ("lon", np.asarray(lon, dtype="float64").reshape(-1)),
        }
    )
    return standardise(ds, time_step=time_step, resolution=resolution, attrs=attrs)


def create_grid_netcdf(path: str | os.PathLike, coords: xr.Dataset):
    """Write ``coords`` (:func:`grid_coordinates`) as a NetCDF-4 file and reopen it to add data variables.

    Parameters
    ----------
    path : str or os.PathLike
        File to create (overwritten); typically the temporary path of
        :func:`products.methods.files.atomic_path`.
    coords : xarray.Dataset
        Coordinates, bounds, ``crs`` and global attributes.

    Returns
    -------
    netCDF4.Dataset
        Open in append mode; the caller creates its (time, lat, lon) variables with
        :func:`grid_variable_attributes` and closes it.
    """

    coords.to_netcdf(path, format="NETCDF4", encoding=encoding_for(coords))
    return netCDF4.Dataset(path, "a")


def grid_variable_attributes(attrs: Mapping, *, coverage_content_type: str = "modelResult") -> dict:
    """Attributes of a gridded data variable: ``attrs`` (None dropped), ``grid_mapping = "crs"`` and a content type.

    Raises
    ------
    ValueError
        ``coverage_content_type`` outside the ISO 19115-1 codes.
    """
    out = {
        "coverage_content_type": coverage_content_type,
        **{k: v for k, v in attrs.items() if v is not None},
        "grid_mapping": CRS_NAME,
    }
    if out["coverage_content_type"] not in COVERAGE_CONTENT_TYPES:
        raise ValueError(
            f"coverage_content_type {out['coverage_content_type']!r} is not one of {COVERAGE_CONTENT_TYPES}"
        )
    return out


def complete_grid_file(
    path: str | os.PathLike,
    *,
    time_step: str | pd.DateOffset | pd.Timedelta | None = None,
    resolution: Mapping[str, float] | float | None = None,
    coverage_content_type: str = "modelResult",
    attrs: Mapping | None = None,
) -> None:
    """Bring a (time, lat, lon) NetCDF-4 grid written by other code up to the portal's CF/ACDD form, in place.

    For files created by :func:`products.methods.chunked.create_output` (and any grid with 1-D
    ``time``, ``lat``, ``lon`` coordinate variables): adds what :func:`standardise` would have
    given an xarray dataset -- ``lat_bnds``/``lon_bnds`` (and ``time_bnds`` when missing), the
    ``crs`` grid mapping, ``grid_mapping`` and ``coverage_content_type`` on the gridded
    variables, coordinate ``long_name``/``coverage_content_type``, the ACDD extent attributes and
    ``Conventions``. Call it on the temporary file, before it is moved into place.

    Parameters
    ----------
    path : str or os.PathLike
        The NetCDF-4 file (modified in place).
    time_step, resolution
        See :func:`add_bounds`.
    coverage_content_type : str
        For gridded variables that have none.
    attrs : mapping, optional
        Global attributes set last (None values dropped).

    Raises
    ------
    KeyError
        The file has no ``time``, ``lat`` or ``lon`` variable.
    """
    with netCDF4.Dataset(path, "a") as nc:
        tv = nc["time"]
        times = cftime.num2date(
            tv[:],
            tv.units,
            getattr(tv, "calendar", CALENDAR),
            only_use_cftime_datetimes=False,
            only_use_python_datetimes=True,
        )
        coords = xr.Dataset(
            coords={
                "time": ("time", pd.DatetimeIndex(times).values.astype("datetime64[ns]")),
                "lat": ("lat", np.asarray(nc["lat"][:], dtype="float64")),
                "lon": ("lon", np.asarray(nc["lon"][:], dtype="float64")),
            }
        )
        tb = getattr(tv, "bounds", None)
        if tb in nc.variables:
            values = cftime.num2date(
                nc[tb][:],
                tv.units,
                getattr(tv, "calendar", CALENDAR),
                only_use_cftime_datetimes=False,
                only_use_python_datetimes=True,
            )
            coords["time"].attrs["bounds"] = tb
            coords[tb] = (("time", BOUNDS_DIM), np.array(values, dtype="datetime64[ns]").reshape(-1, 2))
        coords = standardise(coords, time_step=time_step, resolution=resolution, attrs=attrs)
        if BOUNDS_DIM not in nc.dimensions:
            nc.createDimension(BOUNDS_DIM, 2)
        for axis in ("time", "lat", "lon"):
            var = nc[axis]
            var.setncatts({k: v for k, v in coords[axis].attrs.items() if k not in var.ncattrs() or k == "bounds"})
            name = coords[axis].attrs["bounds"]
            if name in nc.variables:  # CF 7.1: bounds inherit units and calendar from their coordinate
                for key in ("units", "calendar"):
                    if key in nc[name].ncattrs() and getattr(nc[name], key) == getattr(var, key, None):
                        nc[name].delncattr(key)
            else:
                values = coords[name].values
                if axis == "time":
                    values = netCDF4.date2num(
                        pd.DatetimeIndex(values.reshape(-1)).to_pydatetime(),
                        tv.units,
                        getattr(tv, "calendar", CALENDAR),
                    ).reshape(-1, 2)
                nc.createVariable(name, "f8", (axis, BOUNDS_DIM))[:] = values
        if CRS_NAME not in nc.variables:
            nc.createVariable(CRS_NAME, "i4").setncatts(crs_attributes())
        for var in nc.variables.values():
            if var.dimensions[-2:] == ("lat", "lon"):
                var.setncatts(
                    {
                        "grid_mapping": CRS_NAME,
                        "coverage_content_type": getattr(var, "coverage_content_type", coverage_content_type),
                    }
                )
        nc.setncatts({k: v for k, v in coords.attrs.items() if v is not None})


def unsigned_byte(attrs: Mapping) -> dict:
    """Attributes of a uint8 variable stored as a CF-1.8 ``byte`` with the NUG ``_Unsigned = "true"``.

    CF-1.8 knows no unsigned types (they came with CF-1.9), so a uint8 field (flags 0..254, fill
    255) is written as int8 with ``_Unsigned = "true"``: netCDF4-python and xarray read it back as
    uint8. ``flag_values``, ``flag_masks``, ``valid_range``/``valid_min``/``valid_max`` and
    ``_FillValue`` are given as int8 of the same bit pattern (0 and 1 stay 0 and 1; 255 is -1).

    Parameters
    ----------
    attrs : mapping
        The uint8 variable's attributes.

    Returns
    -------
    dict
        Attributes to set on the int8 variable (``_FillValue`` is left out: netCDF4 takes it at
        creation, see :func:`unsigned_byte_fill`).
    """
    out = {}
    for key, value in attrs.items():
        if value is None or key == "_FillValue":
            continue
        if key in ("flag_values", "flag_masks", "valid_range", "valid_min", "valid_max"):
            value = np.asarray(value).astype("u1").view("i1")
        out[key] = value
    out["_Unsigned"] = "true"
    return out


def unsigned_byte_fill(fill) -> np.int8:
    """The int8 stored for a uint8 ``_FillValue`` (255 -> -1), see :func:`unsigned_byte`."""
    return np.int8(np.array(fill, dtype="u1").view("i1")[()])


def history_entry(text: str, now: dt.datetime | None = None) -> str:
    """A CF ``history`` line: the UTC time stamp (``%Y-%m-%dT%H:%M:%SZ``) of ``now`` (default: the current
    time), a space and ``text``."""
    return f"{now or dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ} {text}"


def history_line(module: str, action: str = "created") -> str:
    """A CF ``history`` line: UTC time stamp, ``action`` and the module that did it (:func:`history_entry`)."""
    return history_entry(f"{action} by {module}")


def merge_attrs(*parts: Mapping | None) -> dict:
    """Merge attribute dicts left to right (a later part overrides), dropping None values."""
    out: dict = {}
    for part in parts:
        out.update(part or {})
    return {k: v for k, v in out.items() if v is not None}


def global_attributes(*parts: Mapping | None, module: str | None = None) -> dict:
    """The global attributes of a file the portal writes: ``Conventions``, a ``history`` line, then ``parts``.

    Parameters
    ----------
    *parts : mapping or None
        Attribute dicts merged left to right over ``history`` (:func:`merge_attrs`: a later part
        overrides, None values are dropped), e.g. a source file's, a record's, the writer's own.
    module : str, optional
        The producing module; gives ``history`` = :func:`history_line` of it.

    Returns
    -------
    dict
        ``Conventions`` first and always :data:`CONVENTIONS` (a part's own is replaced: every file the
        portal writes is CF-1.8 / ACDD-1.3), ``history`` when ``module`` is given, then the parts.
    """
    out = merge_attrs({"Conventions": CONVENTIONS, **({"history": history_line(module)} if module else {})}, *parts)
    out["Conventions"] = CONVENTIONS
    return out


def pack(
    values,
    *,
    scale_factor: float,
    add_offset: float = 0.0,
    dtype=None,
    fill=None,
    valid_range: tuple[float, float] | None = None,
    missing: float | None = None,
) -> np.ndarray:
    """Packed integers of values in data units (CF 8.1): ``round((value - add_offset) / scale_factor)``.

    Parameters
    ----------
    values : array_like
        Data units, any shape; float32 and float64 are computed in their own precision, others in float64.
    scale_factor, add_offset : float
        The packing (``value = packed * scale_factor + add_offset``).
    dtype : numpy dtype, optional
        Stored type (e.g. ``int16``); None keeps the rounded float64 values.
    fill : number, optional
        Stored for non-finite values (and ``missing``); None leaves them as they are.
    valid_range : (number, number), optional
        Packed values are clipped to it.
    missing : float, optional
        A value in data units that also means missing (e.g. a fill of an upstream step).

    Returns
    -------
    numpy.ndarray
        Shape of ``values``, ``dtype``. Rounding is half to even (:func:`numpy.rint`).
    """
    v = np.asarray(values)
    v = v if v.dtype.kind == "f" else v.astype("float64")  # float32 data are packed in float32 arithmetic
    bad = ~np.isfinite(v) if missing is None else ~np.isfinite(v) | (v == missing)
    packed = np.rint(((np.where(bad, 0.0, v) if fill is not None else v) - add_offset) / scale_factor)
    if valid_range is not None:
        packed = np.clip(packed, *valid_range)
    if fill is not None:
        packed = np.where(bad, fill, packed)
    return packed if dtype is None else packed.astype(dtype)


def unpack(packed, *, scale_factor: float, add_offset: float = 0.0, fill=None, dtype="float32") -> np.ndarray:
    """Values in data units of packed integers (CF 8.1): ``packed * scale_factor + add_offset``, NaN at ``fill``.

    Parameters
    ----------
    packed : array_like
        Stored integers, any shape.
    scale_factor, add_offset : float
        The packing.
    fill : number, optional
        The stored fill value.
    dtype : numpy dtype
        Type of the result (float).

    Returns
    -------
    numpy.ndarray
        Shape of ``packed``, ``dtype`` (computed in float64).
    """
    p = np.asarray(packed)
    values = p.astype("float64") * scale_factor + add_offset
    return (values if fill is None else np.where(p == fill, np.nan, values)).astype(dtype)


STATION_COORDINATE_ATTRS = {
    "lat": {k: v for k, v in COORDINATE_ATTRS["lat"].items() if k != "axis"},
    "lon": {k: v for k, v in COORDINATE_ATTRS["lon"].items() if k != "axis"},
    "alt": {"standard_name": "altitude", "long_name": "altitude of the station", "units": "m", "positive": "up"},
}
"""CF attributes of the ``lat``, ``lon`` and ``alt`` coordinates along a station dimension (no ``axis``)."""
_STATION_LOCATION = {"lat": "lat", "lon": "lon", "alt": "altitude"}  # coordinate -> column of the stations table


def _station_values(values: np.ndarray) -> np.ndarray:
    """Per-station values as written: text as Python ``str`` objects (character arrays in the file), else as they are."""
    return values.astype(str).astype(object) if values.dtype == object else values


def _split_fill(attrs: Mapping) -> tuple[dict, dict]:
    """``attrs`` without ``_FillValue``, and the encoding that carries it (empty when ``attrs`` has none)."""
    out = dict(attrs)
    return out, ({"_FillValue": out.pop("_FillValue")} if "_FillValue" in out else {})


def timeseries_dataset(
    frame: pd.DataFrame,
    variables: Mapping[str, Mapping],
    *,
    stations: pd.DataFrame | None = None,
    station_col: str = "station",
    time_col: str = "time",
    instance_dim: str = "station",
    id_attrs: Mapping | None = None,
    station_variables: Mapping[str, Mapping] | None = None,
    auxiliary: Mapping[str, Mapping] | None = None,
    time_attrs: Mapping | None = None,
    time_step: str | pd.DateOffset | pd.Timedelta | None = None,
    time_units: str = "days since 1970-01-01",
    attrs: Mapping | None = None,
) -> xr.Dataset:
    """A CF-1.8 ``timeSeries`` discrete sampling geometry (orthogonal multidimensional array) from a long table.

    The one builder of the portal's station, pixel, basin and region series files: the product
    builders say which variables a file holds, with their standard names, long names and comments,
    and this makes the rest the same way for all of them.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long table: ``station_col``, ``time_col`` (datetime64) and one column per entry of
        ``variables``; a (station, time) appears once at most.
    variables : mapping of str to mapping
        Column -> the variable's attributes, variables in this order along (instance, time). A
        ``_FillValue`` among them is the variable's fill and gives its type (``np.int8(-1)``
        writes int8 flags); without one the values are float64 with NaN fill.
    stations : pandas.DataFrame, optional
        One row per series, in the file's order: ``station_col`` and the columns of
        ``station_variables`` and ``auxiliary``; ``lat``, ``lon`` (degrees) and ``altitude`` (m)
        become the ``lat``, ``lon`` and ``alt`` coordinates where present (basins and regions have
        none). Default: the stations of ``frame``, sorted, with no other column.
    station_col, time_col : str
        Columns of the series' name and time.
    instance_dim : str
        The instance dimension (``station``, ``region``); the series' names are the coordinate
        ``<instance_dim>_name`` (``cf_role = timeseries_id``).
    id_attrs : mapping, optional
        Attributes of ``<instance_dim>_name`` besides ``cf_role`` (its ``long_name``).
    station_variables : mapping of str to mapping, optional
        Per-series data variables (instance dimension only): column of ``stations`` -> attributes
        (``coverage_content_type`` default ``auxiliaryInformation``; a ``_FillValue`` goes to the
        encoding).
    auxiliary : mapping of str to mapping, optional
        Per-series auxiliary coordinates named in every variable's ``coordinates`` (a fold, a
        continent, an area): column of ``stations`` -> attributes.
    time_attrs : mapping, optional
        Attributes of ``time`` over ``standard_name`` and ``axis`` (its ``long_name``).
    time_step : str, pandas.DateOffset or pandas.Timedelta, optional
        The length of each time's cell (``"MS"``: calendar months): adds ``time_bnds``
        (:func:`time_bounds`). Default none here (:func:`standardise` adds bounds from the spacing).
    time_units : str
        Units of the stored time and bounds (:func:`time_encoding`).
    attrs : mapping, optional
        Global attributes after ``Conventions`` and ``featureType = "timeSeries"`` (which they may
        replace); None values dropped.

    Returns
    -------
    xarray.Dataset
        Data variables: ``variables`` (dims (instance, time)), ``station_variables`` (instance),
        ``time_bnds`` (time, nv); coordinates ``time`` (sorted distinct times, datetime64[ns]),
        ``<instance_dim>_name``, the ``auxiliary`` ones, ``lat``, ``lon``, ``alt``. Every
        (instance, time) variable has its fill and ``coordinates`` (time, lat, lon, alt, the name,
        the auxiliary coordinates) in its encoding; coordinates and bounds have no ``_FillValue``.

    Raises
    ------
    ValueError
        A (station, time) repeats, a station of ``frame`` is not in ``stations``, or a station
        appears twice in ``stations``.
    KeyError
        A column of ``variables``, ``station_variables`` or ``auxiliary`` is missing.

    References
    ----------
    CF Conventions 1.8, section 9 (Discrete Sampling Geometries) and appendix H.2.1.
    """
    if frame.duplicated([station_col, time_col]).any():
        raise ValueError(f"frame: a ({station_col}, {time_col}) appears twice")
    if stations is None:
        sites = pd.DataFrame(index=pd.Index(np.sort(frame[station_col].unique()), name=station_col))
    else:
        sites = stations.set_index(station_col)
        if sites.index.has_duplicates:
            raise ValueError(f"stations: a {station_col} appears twice")
    times = np.sort(frame[time_col].unique()).astype("datetime64[ns]")
    si = sites.index.get_indexer(frame[station_col])
    ti = np.searchsorted(times, frame[time_col].to_numpy().astype("datetime64[ns]"))
    if (si < 0).any():
        raise ValueError(f"frame: a {station_col} is missing from stations")
    dims = (instance_dim, "time")
    id_name = f"{instance_dim}_name"
    located = {name: column for name, column in _STATION_LOCATION.items() if column in sites}
    coordinates = " ".join(["time", *located, id_name, *(auxiliary or {})])

    data: dict[str, xr.Variable] = {}
    for name, given in variables.items():
        a, fill = _split_fill(given)
        fill_value = fill.get("_FillValue", np.nan)
        grid = np.full((len(sites), len(times)), fill_value, dtype=np.asarray(fill_value).dtype)
        grid[si, ti] = frame[name].to_numpy(dtype=grid.dtype)
        data[name] = xr.Variable(dims, grid, a, encoding={"_FillValue": fill_value, "coordinates": coordinates})
    for name, given in (station_variables or {}).items():
        a, fill = _split_fill(given)
        if "coverage_content_type" not in a:
            a = {"coverage_content_type": "auxiliaryInformation", **a}
        data[name] = xr.Variable(instance_dim, _station_values(sites[name].to_numpy()), a, encoding=fill)
    if time_step is not None:
        data["time_bnds"] = xr.Variable(
            ("time", BOUNDS_DIM), time_bounds(times, time_step), encoding=time_encoding(time_units)
        )

    coords: dict[str, xr.Variable] = {
        "time": xr.Variable(
            "time",
            times,
            {
                "standard_name": "time",
                **(time_attrs or {}),
                "axis": "T",
                **({"bounds": "time_bnds"} if time_step is not None else {}),
            },
            encoding=time_encoding(time_units),
        ),
        id_name: xr.Variable(
            instance_dim,
            sites.index.to_numpy(dtype=str).astype(object),
            {"cf_role": "timeseries_id", **(id_attrs or {})},
        ),
    }
    for name, given in (auxiliary or {}).items():
        a, fill = _split_fill(given)
        coords[name] = xr.Variable(instance_dim, _station_values(sites[name].to_numpy()), a, encoding=fill)
    for name, column in located.items():
        coords[name] = xr.Variable(
            instance_dim,
            sites[column].to_numpy(dtype="float64"),
            dict(STATION_COORDINATE_ATTRS[name]),
            encoding={"_FillValue": None},
        )
    return xr.Dataset(
        data, coords=coords, attrs={"Conventions": CONVENTIONS, "featureType": "timeSeries", **merge_attrs(attrs)}
    )


def write_netcdf(
    ds: xr.Dataset, path: str | os.PathLike, *, standardised: bool = False, complevel: int = 4, **options
) -> Path:
    """Write ``ds`` as a CF-1.8 / ACDD-1.3 NetCDF-4 file, atomically (temporary file, then ``os.replace``).

    Parameters
    ----------
    ds : xarray.Dataset
        The product or subset; passed through :func:`standardise` (with ``options``) unless
        ``standardised``.
    path : str or os.PathLike
        Target file; its folder must exist. Readers never see a partial file.
    standardised : bool
        ``ds`` already went through :func:`standardise`.
    complevel : int
        zlib level of the data variables (:func:`encoding_for`).
    **options
        ``time_step``, ``resolution``, ``attrs`` of :func:`standardise`.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OSError
        The folder is not writable; the temporary file is removed on any error.
    """
    if not standardised:
        ds = standardise(ds, **options)
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, format="NETCDF4", encoding=encoding_for(ds, complevel=complevel))
    return Path(path)
