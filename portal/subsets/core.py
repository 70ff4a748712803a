"""Subsets of gridded products: selection, size estimates, point and area series.

Pure numpy / xarray / shapely code (no Django), the core under the subset download service, the
API, the OGC API-EDR endpoints and the asynchronous jobs. The files are written by
:mod:`portal.subsets.writers`.

A gridded product is an ``xarray.Dataset`` whose data variables have the dims ``(time, lat, lon)``
with 1-D coordinates ``time`` (datetime64 or cftime), ``lat`` (degrees_north, ascending or
descending) and ``lon`` (degrees_east, either -180..180 or 0..360). Cells are selected by their
centres.

Conventions
-----------
* One bbox order everywhere: ``(min_lon, min_lat, max_lon, max_lat)`` in EPSG:4326 degrees. A box
  with ``min_lon > max_lon`` crosses the antimeridian (``(170, -10, -170, 10)`` is 20 degrees wide).
* Selected longitudes are returned *continuous and increasing eastwards from the west edge of the
  request*: each value is the dataset's own longitude shifted by a multiple of 360 degrees. A box
  ``170..-170`` gives ``170 .. 190``; a box ``-20..-10`` on a 0..360 grid gives ``-20 .. -10``.
  Outputs are therefore always regular grids that GeoTIFF and CF readers accept.
* Every request that would be empty or outside the dataset's extent raises :class:`SubsetError`;
  nothing here ever falls back to the full grid.

References
----------
* CF Conventions 1.8, https://cfconventions.org/
* CoverageJSON format specification, OGC Community Standard 21-069r2,
  https://docs.ogc.org/cs/21-069r2/21-069r2.html
* Cloud Optimized GeoTIFF, GDAL COG driver, https://gdal.org/drivers/raster/cog.html
* RFC 7946 GeoJSON, https://www.rfc-editor.org/rfc/rfc7946
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import shapely
import xarray as xr
from shapely.geometry.base import BaseGeometry

from products.methods import cf

FORMATS = ("netcdf", "geotiff", "csv", "zarr", "coveragejson")
"""Output formats a :class:`SubsetRequest` may name."""

_EPS = 1e-9  # degrees; tolerance on box edges for float noise in coordinates
MAX_POLYGON_VERTICES = 10_000
"""A polygon with more vertices is refused (a region to cut, not a coastline: simplify it first)."""


class SubsetError(ValueError):
    """A subset request that cannot be answered.

    The message starts with the request field at fault (``bbox``, ``polygon``, ``time``,
    ``variables``, ``lon``, ``lat``, ``time_stride``, ``space_stride``, ``format``) followed by what
    was expected, e.g. ``"bbox: min_lat 50 > max_lat 40"``. Views turn it into an HTTP 400.

    Parameters
    ----------
    field : str
        The request field at fault.
    message : str
        What is wrong and what was expected.
    """

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")

    def __reduce__(self):  # picklable (Celery results carry exceptions between processes)
        return (type(self), (self.field, self.message))


TimeBound: TypeAlias = str | np.datetime64 | pd.Timestamp | None


@dataclass(frozen=True)
class SubsetRequest:
    """What a user asks for: variables, a region, a period, strides and a format.

    Parameters
    ----------
    variables : sequence of str
        Names of data variables; empty means every gridded variable of the dataset.
    bbox : tuple of 4 float, optional
        ``(min_lon, min_lat, max_lon, max_lat)`` in degrees (EPSG:4326); ``min_lon > max_lon``
        crosses the antimeridian. Longitudes in -180..360, latitudes in -90..90.
    polygon : dict or str or shapely geometry, optional
        A GeoJSON Polygon / MultiPolygon (geometry or Feature) or a WKT string; cells whose
        centres fall inside are kept. Give at most one of ``bbox`` and ``polygon``; with neither,
        the whole spatial extent is requested (the service caps the size).
    time : tuple (start, end), optional
        Inclusive bounds, ISO strings (partial strings such as ``"2001-02"`` cover the whole month
        at either end), ``numpy.datetime64`` or ``pandas.Timestamp``; either may be None (open).
    time_stride, space_stride : int
        Keep every n-th time step / every n-th cell in lat and lon, starting with the first
        selected one. Default 1.
    format : str
        One of :data:`FORMATS`.

    Raises
    ------
    SubsetError
        On a malformed field, naming it (checked on construction, before any data is touched).
    """

    variables: Sequence[str] = ()
    bbox: tuple[float, float, float, float] | None = None
    polygon: Mapping[str, Any] | str | BaseGeometry | None = None
    time: tuple[TimeBound, TimeBound] | None = None
    time_stride: int = 1
    space_stride: int = 1
    format: str = "netcdf"
    geometry: BaseGeometry | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.variables, str):
            object.__setattr__(self, "variables", (self.variables,))
        object.__setattr__(self, "variables", tuple(self.variables))
        for name in self.variables:
            if not isinstance(name, str) or not name:
                raise SubsetError("variables", f"expected variable names, got {name!r}")
        if self.bbox is not None and self.polygon is not None:
            raise SubsetError("bbox", "give a bbox or a polygon, not both")
        if self.bbox is not None:
            object.__setattr__(self, "bbox", check_bbox(self.bbox))
        if self.polygon is not None:
            object.__setattr__(self, "geometry", parse_polygon(self.polygon))
        if self.time is not None:
            object.__setattr__(self, "time", check_time(self.time))
        for name in ("time_stride", "space_stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise SubsetError(name, f"expected an integer >= 1, got {value!r}")
        if self.format not in FORMATS:
            raise SubsetError("format", f"{self.format!r} not in {list(FORMATS)}")


# --------------------------------------------------------------------------- request checks


def check_bbox(bbox: Sequence[float]) -> tuple[float, float, float, float]:
    """Validate ``(min_lon, min_lat, max_lon, max_lat)`` in degrees (EPSG:4326).

    Returns
    -------
    tuple of 4 float
        The box; ``min_lon > max_lon`` is kept (it crosses the antimeridian).

    Raises
    ------
    SubsetError
        ``bbox: ...``: not 4 finite numbers, lon outside -180..360, lat outside -90..90, or
        min_lat > max_lat.
    """
    try:
        values = tuple(float(v) for v in bbox)
    except (TypeError, ValueError):
        raise SubsetError("bbox", f"expected 4 numbers (min_lon, min_lat, max_lon, max_lat), got {bbox!r}") from None
    if len(values) != 4:
        raise SubsetError("bbox", f"expected 4 numbers (min_lon, min_lat, max_lon, max_lat), got {len(values)}")
    if not all(math.isfinite(v) for v in values):
        raise SubsetError("bbox", f"expected finite numbers, got {bbox!r}")
    min_lon, min_lat, max_lon, max_lat = values
    for name, lon in (("min_lon", min_lon), ("max_lon", max_lon)):
        if not -180 <= lon <= 360:
            raise SubsetError("bbox", f"{name} {lon:g} outside -180..360")
    for name, lat in (("min_lat", min_lat), ("max_lat", max_lat)):
        if not -90 <= lat <= 90:
            raise SubsetError("bbox", f"{name} {lat:g} outside -90..90")
    if min_lat > max_lat:
        raise SubsetError("bbox", f"min_lat {min_lat:g} > max_lat {max_lat:g}")
    return values


def from_wkt(text: str) -> BaseGeometry:
    """Shapely's WKT reader, with numbers too large for a double (``1e309``) an error, not a warning.

    Raises
    ------
    ValueError
        Unparsable WKT or a number that overflows (GEOS reads it as infinity and warns).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            return shapely.from_wkt(text.strip())
        except RuntimeWarning as exc:
            raise ValueError(f"a number out of range ({exc})") from None


def parse_polygon(polygon: Mapping[str, Any] | str | BaseGeometry) -> BaseGeometry:
    """Parse a GeoJSON or WKT polygon into a valid shapely geometry.

    Parameters
    ----------
    polygon : dict or str or shapely geometry
        GeoJSON geometry or Feature (``Polygon`` / ``MultiPolygon``, RFC 7946: lon, lat order),
        or WKT. Longitudes may run past 180 (e.g. 170..190) to cross the antimeridian.

    Returns
    -------
    shapely.Polygon or shapely.MultiPolygon

    Raises
    ------
    SubsetError
        ``polygon: ...`` for unparsable text, other geometry types, more than
        :data:`MAX_POLYGON_VERTICES` vertices, invalid (self-intersecting) or empty shapes,
        coordinates outside lon -180..360 / lat -90..90.
    """
    try:
        if isinstance(polygon, BaseGeometry):
            geom = polygon
        elif isinstance(polygon, str) and polygon.lstrip().startswith("{"):  # GeoJSON text (RFC 7946)
            return parse_polygon(json.loads(polygon))
        elif isinstance(polygon, str):
            geom = from_wkt(polygon)
        elif isinstance(polygon, Mapping):
            obj = polygon.get("geometry", polygon) if polygon.get("type") == "Feature" else polygon
            geom = shapely.geometry.shape(obj)
        else:
            raise SubsetError("polygon", f"expected GeoJSON (dict) or WKT (str), got {type(polygon).__name__}")
    except SubsetError:
        raise
    except (
        shapely.errors.ShapelyError,
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        IndexError,
        RecursionError,
    ) as exc:
        raise SubsetError("polygon", f"not a GeoJSON or WKT polygon ({str(exc).splitlines()[0][:200]})") from None
    if not np.isfinite(shapely.get_coordinates(geom)).all():
        raise SubsetError("polygon", "coordinates must be finite numbers")
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise SubsetError("polygon", f"expected a Polygon or MultiPolygon, got {geom.geom_type}")
    if (n := int(shapely.get_num_coordinates(geom))) > MAX_POLYGON_VERTICES:
        raise SubsetError(
            "polygon",
            f"{n} vertices, more than the {MAX_POLYGON_VERTICES} a polygon may have: "
            "simplify it (e.g. shapely's simplify) or use a bbox",
        )
    if not geom.is_empty and not geom.is_valid:
        raise SubsetError("polygon", f"invalid geometry ({shapely.is_valid_reason(geom)})")
    if geom.is_empty or geom.area == 0:
        raise SubsetError("polygon", "the polygon is empty (zero area)")
    min_x, min_y, max_x, max_y = geom.bounds
    if min_x < -180 or max_x > 360:
        raise SubsetError("polygon", f"longitudes {min_x:g}..{max_x:g} outside -180..360")
    if min_y < -90 or max_y > 90:
        raise SubsetError("polygon", f"latitudes {min_y:g}..{max_y:g} outside -90..90")
    return geom


def parse_time_bound(value: TimeBound, name: str) -> pd.Timestamp | None:
    """A period bound as a ``pandas.Timestamp`` (None stays None: an open end).

    Raises
    ------
    SubsetError
        ``time: <name> ... is not an ISO 8601 date``.
    """
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise SubsetError("time", f"{name} {value!r} is not an ISO 8601 date") from None
    if stamp is pd.NaT:
        raise SubsetError("time", f"{name} {value!r} is not an ISO 8601 date")
    return stamp


def check_time(time: Sequence[TimeBound]) -> tuple[TimeBound, TimeBound]:
    """Validate a period ``(start, end)``: ISO strings, datetime64 or Timestamps, either may be None.

    Returns
    -------
    tuple
        ``(start, end)`` as given (partial ISO strings keep their whole-month/day meaning).

    Raises
    ------
    SubsetError
        ``time: ...``: not a pair, a bound that is not a date, or start > end.
    """
    if isinstance(time, str) or len(time) != 2:
        raise SubsetError("time", f"expected (start, end), got {time!r}")
    start, end = time
    t0, t1 = parse_time_bound(start, "start"), parse_time_bound(end, "end")
    if t0 is not None and t1 is not None and t0 > t1:
        raise SubsetError("time", f"start {start} > end {end}")
    return (start, end)


# --------------------------------------------------------------------------- the cube


def _check_cube(ds: xr.Dataset) -> None:
    for name in ("time", "lat", "lon"):
        if name not in ds.coords or ds[name].ndim != 1 or ds[name].dims != (name,):
            raise SubsetError("dataset", f"expected a 1-D {name!r} coordinate on a (time, lat, lon) cube")


def _gridded_variables(ds: xr.Dataset) -> list[str]:
    return [str(name) for name, v in ds.data_vars.items() if "lat" in v.dims and "lon" in v.dims]


def _resolve_variables(ds: xr.Dataset, variables: Sequence[str] | None) -> list[str]:
    available = _gridded_variables(ds)
    if not variables:
        if not available:
            raise SubsetError("variables", "the dataset has no (lat, lon) variable")
        return available
    for name in variables:
        if name not in available:
            raise SubsetError("variables", f"{name!r} not in {available}")
    return list(dict.fromkeys(variables))


def _spacing(values: np.ndarray) -> float:
    if values.size < 2:
        return 0.0
    return float(np.median(np.abs(np.diff(values))))


def iso_time(value: Any) -> str:
    """ISO 8601 text of a time value (date only at midnight)."""
    if hasattr(value, "isoformat") and not isinstance(value, pd.Timestamp | np.datetime64):
        text = value.isoformat()  # cftime
    else:
        text = pd.Timestamp(value).isoformat()
    return text[:10] if text.endswith("T00:00:00") else text


def iso_times(values: Any) -> list[str]:
    """:func:`iso_time` of every value of an array of times, vectorised for ``datetime64`` ones.

    Parameters
    ----------
    values : array-like, shape (n,) or scalar
        ``datetime64`` values (any unit) or cftime / datetime objects.

    Returns
    -------
    list of str, length n
        The same texts as ``[iso_time(v) for v in values]`` (a point series of 27,000 days is formatted
        in one NumPy call instead of 27,000 pandas Timestamps; formatting was a fifth of a point request).
    """
    array = np.atleast_1d(np.asarray(values))
    if array.dtype.kind != "M":
        return [iso_time(v) for v in array]
    seconds = array.astype("datetime64[s]")
    if (seconds != array).any():  # sub-second values: pandas' text (microseconds, nanoseconds)
        return [iso_time(v) for v in array]
    text = np.datetime_as_string(seconds, unit="s")
    midnight = np.char.endswith(text, "T00:00:00")
    return np.where(midnight, np.char.ljust(text.astype("<U10"), 10), text).tolist()


def _show(value: TimeBound) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else iso_time(value)


def _as_indexer(idx: np.ndarray) -> slice | np.ndarray:
    """A slice where the indices are evenly spaced and increasing (cheaper for backends)."""
    if idx.size == 1:
        return slice(int(idx[0]), int(idx[0]) + 1)
    steps = np.diff(idx)
    if idx.size and steps[0] > 0 and np.all(steps == steps[0]):
        return slice(int(idx[0]), int(idx[-1]) + 1, int(steps[0]))
    return idx


def _time_slice(ds: xr.Dataset, time: tuple[TimeBound, TimeBound] | None, stride: int) -> slice:
    n = ds.sizes["time"]
    if time is None:
        sl = slice(0, n)
    else:
        start, end = time
        index = ds.indexes["time"]
        start = start.isoformat() if isinstance(start, pd.Timestamp) else start
        end = end.isoformat() if isinstance(end, pd.Timestamp) else end
        try:
            sl = index.slice_indexer(start, end)
        except (KeyError, ValueError, TypeError) as exc:
            raise SubsetError("time", f"cannot select {start}..{end} ({exc})") from None
    lo, hi, _ = sl.indices(n)
    if hi <= lo:
        t = ds["time"].values
        extent = f"{iso_time(t[0])}..{iso_time(t[-1])}" if n else "(no time steps)"
        asked = "the request" if time is None else f"{_show(time[0])}..{_show(time[1])}"
        raise SubsetError("time", f"{asked} is outside the dataset's {extent}")
    return slice(lo, hi, stride)


def _circular_cover(intervals: list[tuple[float, float]]) -> tuple[float, float]:
    """Smallest circular longitude interval ``(west, width)`` covering all ``(west, width)`` ones."""
    if any(w >= 360 for _, w in intervals):
        return -180.0, 360.0
    spans = sorted(((w0 % 360.0), (w0 % 360.0) + w) for w0, w in intervals)
    merged: list[list[float]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    # gaps between consecutive merged spans, and the one wrapping round the circle
    gaps = [(merged[i + 1][0] - merged[i][1], i + 1) for i in range(len(merged) - 1)]
    gaps.append((merged[0][0] + 360.0 - merged[-1][1], 0))
    gap, start = max(gaps)
    if gap <= 0:
        return -180.0, 360.0
    west = merged[start][0]
    west = west - 360.0 if west >= 180.0 else west
    return west, 360.0 - gap


def _lon_selection(lon: np.ndarray, west: float, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of cell centres within ``west .. west + width`` (modulo 360) and their lon values.

    Returns indices ordered eastwards from ``west`` and each centre's longitude shifted by a
    multiple of 360 so the sequence is increasing from ``west``.
    """
    offset = np.mod(lon - west, 360.0)
    offset[offset > 360.0 - _EPS] = 0.0
    keep = np.ones(lon.shape, bool) if width >= 360.0 else offset <= width + _EPS
    idx = np.nonzero(keep)[0]
    idx = idx[np.argsort(offset[idx], kind="stable")]
    shift = np.round((west + offset[idx] - lon[idx]) / 360.0) * 360.0
    return idx, lon[idx] + shift


@dataclass
class Selection:
    """What a request selects, worked out from coordinates only (:func:`plan_selection`): computed
    once per request and passed to :func:`select`, :func:`estimate_bytes`, :func:`selection_indices`
    and :func:`area_mean`."""

    variables: list[str]
    indexers: dict[str, slice | np.ndarray]
    lon: np.ndarray  # output longitudes (continuous from the west edge)
    mask: np.ndarray | None  # (lat, lon) bool, True inside the polygon
    companions: tuple | None = None  # :func:`_companions` of the variables, once worked out (the same on every store)


def plan_selection(ds: xr.Dataset, request: SubsetRequest) -> Selection:
    """Work out the selection of ``request`` on ``ds`` from coordinates only (no data is read).

    Raises
    ------
    SubsetError
        As for :func:`select`.
    """
    _check_cube(ds)
    variables = _resolve_variables(ds, request.variables)
    lat = np.asarray(ds["lat"].values, dtype=float)
    lon = np.asarray(ds["lon"].values, dtype=float)
    stride = request.space_stride
    field_name = "polygon" if request.geometry is not None else "bbox"

    if request.geometry is not None:
        parts = list(getattr(request.geometry, "geoms", [request.geometry]))
        bounds = [p.bounds for p in parts]
        west, width = _circular_cover([(b[0], b[2] - b[0]) for b in bounds])
        south, north = min(b[1] for b in bounds), max(b[3] for b in bounds)
    elif request.bbox is not None:
        min_lon, south, max_lon, north = request.bbox
        west = min_lon
        width = max_lon - min_lon if max_lon >= min_lon else max_lon - min_lon + 360.0
        width = min(width, 360.0)
    else:
        west, width, south, north = float(np.min(lon)), 360.0, -90.0, 90.0

    lat_idx = np.nonzero((lat >= south - _EPS) & (lat <= north + _EPS))[0]
    region = f"lat {south:g}..{north:g}"
    if lat_idx.size == 0:
        if north < lat.min() or south > lat.max():
            raise SubsetError(field_name, f"{region} is outside the dataset's lat {lat.min():g}..{lat.max():g}")
        raise SubsetError(field_name, f"no cell centre within {region} (grid spacing {_spacing(lat):g} degrees)")
    lon_idx, lon_out = _lon_selection(lon, west, width)
    if lon_idx.size == 0:
        east = west + width
        east = east - 360.0 if east > 360.0 else east
        raise SubsetError(
            field_name,
            f"lon {west:g}..{east:g} selects no cell centre of the dataset's lon {lon.min():g}..{lon.max():g} "
            f"(grid spacing {_spacing(lon):g} degrees)",
        )

    mask = None
    if request.geometry is not None:
        glon, glat = np.meshgrid(lon_out, lat[lat_idx])
        geom = request.geometry
        shapely.prepare(geom)
        mask = np.zeros(glon.shape, bool)
        for shift in (0.0, -360.0, 360.0):
            mask |= shapely.contains_xy(geom, glon + shift, glat)
        rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
        if not rows.any():
            raise SubsetError("polygon", "no cell centre falls inside the polygon")
        # trim to the rows and columns that hold a centre inside
        r0, r1 = np.nonzero(rows)[0][[0, -1]]
        c0, c1 = np.nonzero(cols)[0][[0, -1]]
        lat_idx, lon_idx, lon_out = lat_idx[r0 : r1 + 1], lon_idx[c0 : c1 + 1], lon_out[c0 : c1 + 1]
        mask = mask[r0 : r1 + 1, c0 : c1 + 1][::stride, ::stride]
        if not mask.any():
            raise SubsetError("space_stride", f"a stride of {stride} skips every cell centre inside the polygon")

    lat_idx, lon_idx, lon_out = lat_idx[::stride], lon_idx[::stride], lon_out[::stride]
    indexers = {
        "time": _time_slice(ds, request.time, request.time_stride),
        "lat": _as_indexer(lat_idx),
        "lon": _as_indexer(lon_idx),
    }
    return Selection(variables, indexers, lon_out, mask)


# --------------------------------------------------------------------------- CF companions

BOUNDS_DIM = "nv"
"""Name of the vertex dimension of the bounds variables this module makes."""


def _bounds_name(ds: xr.Dataset, dim: str) -> str | None:
    """The bounds variable the coordinate ``dim`` names, if ``ds`` holds it with ``dim`` first."""
    name = ds[dim].attrs.get("bounds") or ds[dim].encoding.get("bounds")
    if isinstance(name, str) and name in ds.variables and ds[name].dims[:1] == (dim,) and ds[name].ndim == 2:
        return name
    return None


def _made_bounds(ds: xr.Dataset, dim: str) -> xr.DataArray | None:
    """Cell bounds of the coordinate ``dim`` of the source cube, made from all its values.

    ``lat`` / ``lon``: :func:`products.methods.cf.axis_bounds` (half-way between neighbouring
    centres; lat clipped to -90..90); ``time`` (datetime64): :func:`products.methods.cf.time_bounds`
    (``[t, next t)``, calendar months for month starts; the portal's products label a period by
    its start). None for other time types or an axis of one value.
    """

    values = np.asarray(ds[dim].values)
    bounds: np.ndarray | None
    if dim == "time":
        if values.dtype.kind != "M" or values.size < 2:
            return None
        bounds = cf.time_bounds(values)
    else:
        bounds = cf.axis_bounds(values)
        if bounds is None:
            return None
        if dim == "lat":
            bounds = np.clip(bounds, -90.0, 90.0)
    return xr.DataArray(bounds, dims=(dim, BOUNDS_DIM))


def _companions(
    ds: xr.Dataset, names: Sequence[str], axes: Sequence[str] = ("time", "lat", "lon")
) -> tuple[list[str], dict[str, str | xr.DataArray | None]]:
    """The CF variables that describe ``names``: the grid mappings they name, and per axis of
    ``time``, ``lat`` and ``lon`` the source's bounds variable (its name) or the bounds
    :func:`_made_bounds` makes (None when none can be made). Reads coordinates only."""
    mappings = []
    for name in names:
        mapping = ds[name].attrs.get("grid_mapping") or ds[name].encoding.get("grid_mapping")
        if isinstance(mapping, str) and mapping in ds.variables and ds[mapping].ndim == 0 and mapping not in mappings:
            mappings.append(mapping)
    dims = {d for n in names for d in ds[n].dims}
    bounds: dict[str, str | xr.DataArray | None] = {}
    for dim in axes:
        if dim in dims:
            bounds[dim] = _bounds_name(ds, dim) or _made_bounds(ds, dim)
    return mappings, bounds


def _with_companions(
    ds: xr.Dataset, names: Sequence[str], axes: Sequence[str] = ("time", "lat", "lon"), found: tuple | None = None
) -> xr.Dataset:
    """``ds[names]`` with the CF variables that describe them (:func:`_companions`): the grid mapping
    they name and the bounds of ``time``, ``lat`` and ``lon`` (the source's, or made).

    Built in one step (each assignment to a Dataset aligns it again: a few ms a variable). Nothing
    is read but coordinates; the source's attributes are not modified.
    """
    mappings, bounds = found or _companions(ds, names, axes)
    own = [b for b in bounds.values() if isinstance(b, str)]
    out = ds[list(names) + [m for m in mappings if m not in ds.coords] + [b for b in own if b not in ds.coords]]
    extra = {m: ds[m] for m in mappings if m not in out.variables}
    extra.update({b: ds[b] for b in own if b not in out.variables})
    coords = {}
    for dim, found in bounds.items():
        if isinstance(found, xr.DataArray):  # made: the coordinate names it
            extra[f"{dim}_bnds"] = found
            coords[dim] = out[dim].variable.copy(deep=False)
            coords[dim].attrs["bounds"] = f"{dim}_bnds"
        elif found is None and "bounds" in out[dim].attrs:  # none to give (one time step, say): name none
            coords[dim] = out[dim].variable.copy(deep=False)
            del coords[dim].attrs["bounds"]
    if extra:
        out = out.assign(extra)
    return out.assign_coords(coords) if coords else out


def _shift_lon_bounds(out: xr.Dataset, shift: np.ndarray | float) -> xr.Dataset:
    """Shift the ``lon`` bounds of ``out`` by ``shift`` degrees (per cell or scalar), as its ``lon``."""
    name = out["lon"].attrs.get("bounds")
    if isinstance(name, str) and name in out.variables:
        bounds = out[name]
        shift = np.asarray(shift, dtype="float64")
        values = np.asarray(bounds.values, dtype="float64") + (shift[..., None] if shift.ndim else shift)
        out[name] = bounds.copy(data=values)
    return out


def _apply(ds: xr.Dataset, plan: Selection) -> xr.Dataset:
    plan.companions = plan.companions or _companions(ds, plan.variables)
    out = _with_companions(ds, plan.variables, found=plan.companions).isel(plan.indexers)
    attrs = dict(out["lon"].attrs) or {"standard_name": "longitude", "units": "degrees_east"}
    source_lon = np.asarray(ds["lon"].values, dtype="float64")[plan.indexers["lon"]]
    out = out.assign_coords(lon=("lon", plan.lon.astype(ds["lon"].dtype), attrs))
    return _shift_lon_bounds(out, plan.lon.astype("float64") - source_lon)


def _masked_dtype(da: xr.DataArray) -> np.dtype:
    """dtype of ``da`` once cells outside a polygon are set to missing."""
    if da.dtype.kind in "iub" and _fill_value(da) is not None:
        return da.dtype
    return np.result_type(da.dtype, np.float32) if da.dtype.kind == "f" else np.dtype("float64")


def _fill_value(da: xr.DataArray) -> Any:
    return da.encoding.get("_FillValue", da.attrs.get("_FillValue"))


def select(ds: xr.Dataset, request: SubsetRequest, selection: Selection | None = None) -> xr.Dataset:
    """Select variables, a region, a period and strides from a gridded cube, lazily.

    Parameters
    ----------
    ds : xarray.Dataset
        Cube with data variables ``(time, lat, lon)``; ``lat`` ascending or descending
        (degrees_north), ``lon`` in -180..180 or 0..360 (degrees_east), any dtype and units.
    request : SubsetRequest
        Variables, bbox or polygon, time range and strides (the format is not used here).
    selection : Selection, optional
        :func:`plan_selection` of ``request`` on a dataset with the same coordinates, when the
        caller has it already (else worked out here).

    Returns
    -------
    xarray.Dataset
        The requested variables ``(time, lat, lon)`` with the dataset's dtypes, units and
        attributes, lat in the dataset's order, lon continuous and increasing from the request's
        west edge (see the module notes). A polygon request covers the polygon's bounding box
        with cells whose centres fall outside set to NaN (or to the variable's ``_FillValue`` for
        integer variables that have one; other integer variables become float64); ``encoding``
        (packing, fill) kept. With them, subset with the same indexers, the CF variables that
        describe them: the grid mapping they name (e.g. ``crs``, scalar) and the cell bounds of
        ``time``, ``lat`` and ``lon`` (dim ``nv``): the source's, or made from the source's
        coordinates when it has none (:func:`_made_bounds`; a cube store keeps none); ``lon``
        bounds shifted with ``lon``. Global attributes: the dataset's.
        Selection is lazy (``isel`` on the backend arrays); polygon masking stays lazy on dask
        arrays and reads only the polygon's bounding box otherwise.

    Raises
    ------
    SubsetError
        ``variables`` not in the dataset; ``bbox`` / ``polygon`` outside the dataset's extent or
        holding no cell centre; ``time`` outside the dataset's period; ``space_stride`` that skips
        every cell of a polygon.
    """
    plan = selection or plan_selection(ds, request)
    out = _apply(ds, plan)
    if plan.mask is not None:
        mask = xr.DataArray(plan.mask, dims=("lat", "lon"))
        for name in plan.variables:
            da = out[name]
            fill = _fill_value(da)
            if da.dtype.kind in "iub" and fill is not None:
                masked = da.where(mask, other=np.asarray(fill, dtype=da.dtype))
            else:
                masked = da.where(mask)
            masked.attrs, masked.encoding = dict(da.attrs), dict(da.encoding)
            out[name] = masked
    return out


def selection_indices(
    ds: xr.Dataset, request: SubsetRequest, selection: Selection | None = None
) -> dict[str, np.ndarray]:
    """Integer positions :func:`select` reads along ``time``, ``lat`` and ``lon`` (no data read).

    For a polygon these cover its bounding box (the cells :func:`select` reads before masking).

    Raises
    ------
    SubsetError
        As for :func:`select`.
    """
    plan = selection or plan_selection(ds, request)
    return {dim: np.arange(ds.sizes[dim])[idx] for dim, idx in plan.indexers.items()}


def estimate_bytes(ds: xr.Dataset, request: SubsetRequest, selection: Selection | None = None) -> int:
    """Uncompressed size in bytes of what :func:`select` returns, without reading data.

    Parameters
    ----------
    ds : xarray.Dataset
        As for :func:`select`.
    request : SubsetRequest

    Returns
    -------
    int
        Sum over the selected data variables, coordinates, bounds and grid mapping of
        ``size * itemsize`` (after the dtype change polygon masking may cause). Equals ``select(ds, request).nbytes``. Compressed
        formats are smaller; CSV and CoverageJSON text is typically 2-4 times larger.

    Raises
    ------
    SubsetError
        As for :func:`select`.
    """
    plan = selection or plan_selection(ds, request)
    count: dict[Hashable, int] = {dim: int(np.arange(ds.sizes[dim])[idx].size) for dim, idx in plan.indexers.items()}
    total = 0
    for name in plan.variables:  # the values (after the dtype change polygon masking may cause)
        var = ds[name]
        dtype = _masked_dtype(var) if plan.mask is not None else var.dtype
        total += int(np.prod([count.get(d, ds.sizes[d]) for d in var.dims])) * np.dtype(dtype).itemsize
    plan.companions = plan.companions or _companions(ds, plan.variables)
    mappings, bounds = plan.companions
    names = {d for n in plan.variables for d in ds[n].dims} | set(mappings)
    names |= {c for n in plan.variables for c in ds[n].coords if c not in names}  # scalar coordinates
    for coord in names:  # coordinates and grid mappings
        variable = ds.variables[coord]
        total += int(np.prod([count.get(d, ds.sizes[d]) for d in variable.dims])) * variable.dtype.itemsize
    for dim, found in bounds.items():  # cell bounds: the source's, or made
        if found is not None:
            variable = ds.variables[found] if isinstance(found, str) else found.variable
            total += count[dim] * int(np.prod(variable.shape[1:])) * variable.dtype.itemsize
    return total


# --------------------------------------------------------------------------- point and area series


def point_series(
    ds: xr.Dataset,
    lon: float,
    lat: float,
    variables: Sequence[str] | None = None,
    time: tuple[TimeBound, TimeBound] | None = None,
    *,
    companions: bool = True,
) -> tuple[xr.Dataset, tuple[float, float]]:
    """Time series of the cell nearest to a point.

    Parameters
    ----------
    ds : xarray.Dataset
        Cube ``(time, lat, lon)`` as for :func:`select`.
    lon, lat : float
        Degrees east (-180..360) and north (-90..90), EPSG:4326.
    variables : sequence of str, optional
        Default: every gridded variable.
    time : tuple (start, end), optional
        Inclusive bounds as in :class:`SubsetRequest`.
    companions : bool
        Carry the grid mapping and time bounds (False: the values and coordinates only, for a
        size estimate).

    Returns
    -------
    series : xarray.Dataset
        Variables with dims ``(time,)``, the dataset's dtypes, units and encodings; scalar
        coordinates ``lat`` and ``lon`` hold the cell's centre; ``time_bnds`` and the grid mapping
        (``crs``) as for :func:`select`. Global attributes: the dataset's, less its extent, with
        the grid's ``geospatial_lat_resolution`` / ``geospatial_lon_resolution``.
    cell_centre : tuple of float
        ``(lon, lat)`` of the chosen cell's centre, lon expressed in the frame of the given ``lon``
        (e.g. -170.125 rather than 189.875 on a 0..360 grid).

    Raises
    ------
    SubsetError
        ``lon`` / ``lat`` outside the valid range or more than half a cell outside the dataset's
        extent; ``variables`` or ``time`` as for :func:`select`.
    """
    _check_cube(ds)
    names = _resolve_variables(ds, variables)
    try:
        lon, lat = float(lon), float(lat)
    except (TypeError, ValueError):
        raise SubsetError("lon", f"expected numbers for lon and lat, got {lon!r}, {lat!r}") from None
    if not (math.isfinite(lon) and -180 <= lon <= 360):
        raise SubsetError("lon", f"{lon:g} outside -180..360")
    if not (math.isfinite(lat) and -90 <= lat <= 90):
        raise SubsetError("lat", f"{lat:g} outside -90..90")
    lats = np.asarray(ds["lat"].values, dtype=float)
    lons = np.asarray(ds["lon"].values, dtype=float)
    i = int(np.argmin(np.abs(lats - lat)))
    if abs(lats[i] - lat) > _spacing(lats) / 2 + _EPS:
        raise SubsetError("lat", f"{lat:g} is outside the dataset's lat {lats.min():g}..{lats.max():g}")
    dist = np.abs((lons - lon + 180.0) % 360.0 - 180.0)
    j = int(np.argmin(dist))
    if dist[j] > _spacing(lons) / 2 + _EPS:
        raise SubsetError("lon", f"{lon:g} is outside the dataset's lon {lons.min():g}..{lons.max():g}")
    centre_lon = lon + ((lons[j] - lon + 180.0) % 360.0 - 180.0)
    centre_lon = float(lons[j] + round((centre_lon - lons[j]) / 360.0) * 360.0)
    t = _time_slice(ds, check_time(time) if time is not None else None, 1)
    # a point: the time bounds only (no cell bounds on scalar coordinates: CF 7.1 wants them 2-D)
    series = _with_companions(ds, names, ("time",) if companions else ()).isel(time=t, lat=i, lon=j)
    drop = [
        b for dim in ("lat", "lon") if isinstance(b := series[dim].attrs.get("bounds"), str) and b in series.variables
    ]
    if drop:
        series = series.drop_vars(drop)
    lat_attrs = {k: v for k, v in series["lat"].attrs.items() if k != "bounds"}
    lon_attrs = {k: v for k, v in series["lon"].attrs.items() if k != "bounds"} or {
        "standard_name": "longitude",
        "units": "degrees_east",
    }
    series = series.assign_coords(
        lat=((), series["lat"].values, lat_attrs), lon=((), np.asarray(centre_lon, ds["lon"].dtype), lon_attrs)
    )
    series.attrs = {**_source_attrs(ds), **_resolution_attrs(lats, lons, ds.attrs)}
    return series, (centre_lon, float(lats[i]))


def geospatial_bounds(geom: BaseGeometry) -> str:
    """ACDD 1.3 ``geospatial_bounds`` of a lon/lat geometry: WKT in EPSG:4326 axis order.

    Parameters
    ----------
    geom : shapely geometry
        x = longitude (degrees east, may run past 180 to cross the antimeridian, as the
        selections of this module do), y = latitude.

    Returns
    -------
    str
        WKT with *latitude first* and longitudes in -180..180, as ACDD 1.3 specifies for the
        default EPSG:4326; a shape crossing the antimeridian is split there into a MULTIPOLYGON
        (or MULTIPOINT / MULTILINESTRING). Read it back with :func:`region_of`.

    References
    ----------
    ACDD 1.3, geospatial_bounds, https://wiki.esipfed.org/Attribute_Convention_for_Data_Discovery_1-3
    """
    pieces = []
    for k in (-1, 0, 1):  # the parts west of -180, in -180..180 and east of 180, moved into -180..180
        piece = geom.intersection(shapely.box(-180.0 + 360.0 * k, -90.0, 180.0 + 360.0 * k, 90.0))
        if not piece.is_empty:
            pieces.append(shapely.transform(piece, lambda xy, k=k: xy - np.array([360.0 * k, 0.0])))
    region = shapely.union_all(pieces) if len(pieces) > 1 else pieces[0] if pieces else geom
    swapped = shapely.transform(region, lambda xy: xy[:, ::-1])
    return shapely.to_wkt(swapped, rounding_precision=6, trim=True)


def region_of(wkt: str) -> BaseGeometry:
    """The lon/lat geometry of an ACDD ``geospatial_bounds`` (:func:`geospatial_bounds`): x = lon."""
    return shapely.transform(shapely.from_wkt(wkt), lambda xy: xy[:, ::-1])


def area_mean(ds: xr.Dataset, request: SubsetRequest, selection: Selection | None = None) -> xr.Dataset:
    """Area-weighted mean series over a box or polygon.

    Each cell is weighted by cos(latitude) (cell area on a regular lat-lon grid, up to a
    constant); only cells with finite values count, so a time step's mean is
    ``sum(w * x) / sum(w)`` over finite ``x``, NaN where none is finite. Implemented with
    ``xarray.DataArray.weighted`` (which drops missing values from the weight sum).

    Parameters
    ----------
    ds : xarray.Dataset
        Cube ``(time, lat, lon)`` as for :func:`select`.
    request : SubsetRequest
        Variables, bbox or polygon (cells whose centres fall inside), time range, strides.
    selection : Selection, optional
        :func:`plan_selection` of ``request`` on ``ds``, when the caller has it already.

    Returns
    -------
    xarray.Dataset
        Variables with dims ``(time,)``, float64 (float32 inputs are averaged in float64, packed
        integers unpacked), the input units, ``cell_methods`` ending in ``area: mean`` (after the
        source's own, e.g. ``time: mean``); ``time`` with its bounds ``time_bnds``. Flag
        variables (``flag_values``) become the mean of their codes, units ``1``, without the flag
        attributes (for a 0/1 flag: the area fraction of the state coded 1). Global attributes:
        the source's less its extent, the grid's resolution, and the region averaged: the
        requested box or polygon as ``geospatial_bounds`` (:func:`geospatial_bounds`: ACDD WKT,
        latitude first, split at the antimeridian) with ``geospatial_bounds_crs`` and its
        ``geospatial_lat/lon_min/max`` (lon continuous from the west edge, as :func:`select`).

    Raises
    ------
    SubsetError
        As for :func:`select`.

    References
    ----------
    xarray weighted reductions, https://docs.xarray.dev/en/stable/user-guide/computation.html#weighted-array-reductions;
    CF Conventions 1.8, section 7.3 (cell_methods).
    """
    sub = select(ds, request, selection)
    weights = np.cos(np.deg2rad(sub["lat"].astype("float64")))
    out = xr.Dataset(coords={"time": sub["time"]})
    time_bounds = sub["time"].attrs.get("bounds")
    if isinstance(time_bounds, str) and time_bounds in sub.variables:
        out[time_bounds] = sub[time_bounds]
    for name in _gridded_variables(sub):
        source = sub[name]
        mean = source.astype("float64").weighted(weights).mean(("lat", "lon"), skipna=True)
        attrs = {
            k: v
            for k, v in source.attrs.items()
            if k
            not in (
                "_FillValue",
                "missing_value",
                "valid_range",
                "valid_min",
                "valid_max",
                "grid_mapping",
                "flag_values",
                "flag_meanings",
                "flag_masks",
                "coordinates",
                "cell_methods",
            )
        }
        if "flag_values" in source.attrs:
            codes = ", ".join(
                f"{v} {m}"
                for v, m in zip(
                    np.atleast_1d(source.attrs["flag_values"]).tolist(),
                    str(source.attrs.get("flag_meanings", "")).split(),
                    strict=False,
                )
            )
            attrs.pop("standard_name", None)
            attrs.update(
                units="1", long_name=f"area mean of the codes of {source.attrs.get('long_name', name)} ({codes})"
            )
        method = "area: mean (cos(latitude) weights, finite values only)"
        attrs["cell_methods"] = (
            f"{source.attrs['cell_methods']} {method}" if source.attrs.get("cell_methods") else method
        )
        mean.attrs, mean.encoding = attrs, {}
        out[name] = mean
    out = out.assign_coords(time=sub["time"].variable)  # the means drop the time attributes (bounds)
    # the grid mapping and the lat/lon bounds describe the grid the means reduce away
    out = out.drop_vars([c for c in out.coords if c not in ("time", time_bounds)])
    if request.geometry is not None:
        region = request.geometry
    elif request.bbox is not None:
        west, south, east, north = request.bbox
        region = shapely.box(west, south, east if east >= west else east + 360.0, north)
    else:
        edges = {dim: np.asarray(sub[_bounds_name(sub, dim) or dim].values, dtype="float64") for dim in ("lat", "lon")}
        region = shapely.box(edges["lon"].min(), edges["lat"].min(), edges["lon"].max(), edges["lat"].max())
    west, south, east, north = region.bounds
    out.attrs = {
        **_source_attrs(ds),
        **_resolution_attrs(np.asarray(ds["lat"].values), np.asarray(ds["lon"].values), ds.attrs),
        "geospatial_lat_min": south,
        "geospatial_lat_max": north,
        "geospatial_lon_min": west,
        "geospatial_lon_max": east,
        "geospatial_bounds": geospatial_bounds(region),
        "geospatial_bounds_crs": "EPSG:4326",
    }
    return out


_EXTENT_ATTRS = ("geospatial_lat_", "geospatial_lon_", "geospatial_bounds", "time_coverage_")


def _source_attrs(ds: xr.Dataset) -> dict[str, Any]:
    """The global attributes of the source less those describing its extent (ACDD ``geospatial_lat/lon_*``,
    ``geospatial_bounds*``, ``time_coverage_*``), which a subset does not share; vertical ones stay."""
    return {
        k: v
        for k, v in ds.attrs.items()
        if not str(k).startswith(_EXTENT_ATTRS) or str(k) == "geospatial_bounds_vertical_crs"
    }


def _resolution_attrs(lats: np.ndarray, lons: np.ndarray, attrs: Mapping[str, Any]) -> dict[str, Any]:
    """ACDD ``geospatial_lat/lon_resolution`` of the source grid: the source's own, else its spacing."""
    out = {}
    for dim, values in (("lat", lats), ("lon", lons)):
        key = f"geospatial_{dim}_resolution"
        if attrs.get(key):
            out[key] = attrs[key]
        elif np.asarray(values).size > 1:
            out[key] = f"{_spacing(np.asarray(values, dtype=float)):g} degrees"
    return out
