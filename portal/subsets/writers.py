"""File writers of subset answers: CF NetCDF, zipped Zarr, CSV, cloud-optimized GeoTIFF, CoverageJSON.

Pure numpy / xarray / rasterio code (no Django). Each writer takes what
:func:`portal.subsets.core.select`, :func:`~portal.subsets.core.point_series` or
:func:`~portal.subsets.core.area_mean` returns and writes it atomically (a temporary name in the
target folder, then a rename): a failure leaves nothing behind. :func:`write` picks the writer of
a format.

Every NetCDF (and the zipped Zarr, which holds the same variables and attributes) passes the
standard checkers: cfchecker without errors, the IOOS compliance checker's ``cf:1.8`` suite fully
and ``acdd:1.3`` at 90 % or more (``tests/subsets/test_writers_cf.py``). :func:`cf_dataset` makes
it so:

* the grid mapping (``crs``, with the full WKT of EPSG:4326 when the source's ``crs_wkt`` does not
  parse) and the bounds of ``time`` / ``lat`` / ``lon`` come with the selection (core carries or
  makes them); coordinates and bounds carry no ``_FillValue``; time is float64 with units;
* packed variables are written packed, as in the source: dtype, ``scale_factor``, ``add_offset``,
  ``_FillValue`` from the variable's ``encoding`` (xarray decodes them on open), ``valid_range``
  in packed units, ``flag_values`` of the stored type;
* attribute names are CF names (no hyphens);
* global attributes: the source file's, then the record's (``attrs``, ACDD 1.3: title, summary,
  creator, licence, ...), then what the writer knows about the file itself: the extent
  (``geospatial_*``, ``time_coverage_*``), a ``history`` line, ``date_created``,
  ``Conventions = "CF-1.8, ACDD-1.3"``; ``coverage_content_type`` on every variable;
* a point series is a CF DSG ``timeSeries`` of one feature (scalar ``lat`` / ``lon`` and a
  ``cf_role = timeseries_id`` variable naming the cell).

References
----------
* CF Conventions 1.8, https://cfconventions.org/
* Attribute Convention for Data Discovery 1.3, https://wiki.esipfed.org/Attribute_Convention_for_Data_Discovery_1-3
* CoverageJSON format specification, OGC Community Standard 21-069r2,
  https://docs.ogc.org/cs/21-069r2/21-069r2.html
* Cloud Optimized GeoTIFF, GDAL COG driver, https://gdal.org/drivers/raster/cog.html
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import shapely
import xarray as xr

from products.methods import cf, geotiff
from products.methods.files import atomic_path

from .core import FORMATS, SubsetError, geospatial_bounds, iso_time, iso_times, region_of

CONVENTIONS = cf.CONVENTIONS
"""The ``Conventions`` global attribute of every NetCDF and Zarr answer."""
SERVICE = "land-surface hydrology data portal, subset service"
_KEEP_ENCODING = (
    "dtype",
    "scale_factor",
    "add_offset",
    "_FillValue",
    "missing_value",
    "_Unsigned",
    "units",
    "calendar",
)
_ZARR_ENCODING = ("dtype", "scale_factor", "add_offset", "_FillValue", "_Unsigned", "units", "calendar")
_EXTENT_ATTRS = re.compile(r"^(geospatial_(lat|lon)_|geospatial_bounds(_crs)?$|time_coverage_)")
_RANGE_ATTRS = ("valid_range", "valid_min", "valid_max", "actual_range", "flag_values", "flag_masks")


def _cf_name(name: str) -> str:
    """An attribute or variable name CF accepts: letters, digits and underscores, a letter first."""
    clean = re.sub(r"[^A-Za-z0-9_]", "_", str(name))
    return clean if re.match(r"[A-Za-z_]", clean) else f"v_{clean}"


def _cf_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """``attrs`` with CF names (hyphens and other characters replaced by ``_``), None values left out."""
    return {_cf_name(k): v for k, v in attrs.items() if v is not None}


def data_variables(ds: xr.Dataset) -> list[str]:
    """Names of the data variables of an answer: those that are not bounds, grid mappings or
    instance variables (``cf_role``). Ancillary variables (a standard error, a class probability,
    a quality flag) are data variables too (CF 3.4): asked for, they are written like the estimate.

    Parameters
    ----------
    ds : xarray.Dataset
        What :func:`~portal.subsets.core.select`, :func:`~portal.subsets.core.point_series` or
        :func:`~portal.subsets.core.area_mean` returned.

    Returns
    -------
    list of str
        In the dataset's order.
    """
    companions = set()
    for var in ds.variables.values():
        for key in ("bounds", "grid_mapping"):
            value = var.attrs.get(key)
            if isinstance(value, str):
                companions.update(value.split())
    return [
        str(n)
        for n, v in ds.data_vars.items()
        if str(n) not in companions and "cf_role" not in v.attrs and "grid_mapping_name" not in v.attrs
    ]


def _drop_missing_ancillaries(ds: xr.Dataset) -> None:
    """Keep in each ``ancillary_variables`` attribute only the variables the answer holds (an
    estimate asked for without its standard error must not name it: CF 3.4). In place."""
    for var in ds.variables.values():
        value = var.attrs.get("ancillary_variables")
        if isinstance(value, str):
            kept = [n for n in value.split() if n in ds.variables]
            if kept:
                var.attrs["ancillary_variables"] = " ".join(kept)
            else:
                del var.attrs["ancillary_variables"]


def _kind(ds: xr.Dataset, names: list[str]) -> str:
    """``grid`` (lat/lon dims), ``area`` (an area mean), ``point`` (scalar lat/lon) or ``stations``."""
    if any("lat" in ds[n].dims and "lon" in ds[n].dims for n in names):
        return "grid"
    if any("area: mean" in str(ds[n].attrs.get("cell_methods", "")) for n in names):
        return "area"
    if "lat" in ds.variables and ds["lat"].ndim == 0:
        return "point"
    return "stations"


def _value_encoding(var: xr.Variable) -> dict[str, Any]:
    """How to store a data variable: its source's packing, fill and type (CF 8.1), made CF-1.8.

    Keeps dtype / scale_factor / add_offset / _FillValue / missing_value / _Unsigned from the
    encoding xarray decoded (or a ``_FillValue`` attribute). An integer variable that a polygon
    mask turned into floats gets the integer type's extreme value as ``_FillValue``. Unsigned
    types, which CF-1.8 does not have, are stored as the signed type of the same size with
    ``_Unsigned = "true"`` (NUG; netCDF4-python and xarray read them back unsigned).
    """
    enc = {k: v for k, v in var.encoding.items() if k in _KEEP_ENCODING and k not in ("units", "calendar")}
    if "dtype" in enc:  # a Zarr store may record a big-endian type: NetCDF is written in the machine's order
        enc["dtype"] = np.dtype(enc["dtype"]).newbyteorder("=")
    if "_FillValue" in var.attrs:
        enc["_FillValue"] = var.attrs["_FillValue"]
    packing = [k for k in ("scale_factor", "add_offset") if k in enc]
    if packing:  # CF 8.1: both of the type of the unpacked data
        kind = np.asarray(_float32_if_it_was(enc[packing[0]])).dtype  # scale_factor's when given
        for key in packing:
            enc[key] = np.asarray(enc[key]).astype(kind)[()]
    stored = np.dtype(enc.get("dtype", var.dtype))
    if stored.kind in "iu" and var.dtype.kind == "f" and "_FillValue" not in enc and "missing_value" not in enc:
        enc["_FillValue"] = np.iinfo(stored).max if stored.kind == "u" else np.iinfo(stored).min
    if stored.kind == "u":
        signed = np.dtype(f"i{stored.itemsize}")
        for key in ("_FillValue", "missing_value"):
            if enc.get(key) is not None:
                enc[key] = np.asarray(enc[key]).astype(stored).view(signed)[()]
        enc.update(dtype=signed, _Unsigned="true")
    elif stored.kind == "i":
        for key in ("_FillValue", "missing_value"):
            if enc.get(key) is not None:
                enc[key] = np.asarray(enc[key]).astype(stored)[()]
    return enc


def _float32_if_it_was(value: Any) -> Any:
    """A packing attribute that a float64 round trip made from a float32 (a Zarr store keeps
    attributes as JSON numbers: float32 0.001 comes back as 0.0010000000474974513) as the float32
    it was; others as they are. The type of ``scale_factor`` is the type of the unpacked data (CF 8.1)."""
    number = np.asarray(value)
    if number.dtype != np.float64 or number.ndim:
        return value
    single = np.float32(number)
    if float(single) == float(number) and len(repr(float(number))) > len(str(single)):
        return single
    return value


def _stored_attr(value: Any, enc: Mapping[str, Any], var: xr.Variable) -> np.ndarray:
    """A valid_range / valid_min / valid_max / flag_values attribute in the type the variable is
    stored with (CF 2.5.1, 8.1): values in data units are packed first; unsigned ones keep their
    bits in the signed type (``_Unsigned``)."""
    stored = np.dtype(enc.get("dtype", var.dtype))
    arr = np.asarray(value)
    if stored.kind in "iu" and arr.dtype.kind == "f" and "scale_factor" in enc:
        arr = cf.pack(arr, scale_factor=float(enc["scale_factor"]), add_offset=float(enc.get("add_offset", 0.0)))
    if enc.get("_Unsigned") == "true" and stored.kind == "i":
        return arr.astype(f"u{stored.itemsize}").view(stored)
    return arr.astype(stored)


def _content_type(var: xr.Variable, default: str) -> str:
    """ACDD ``coverage_content_type`` (ISO 19115-1 code) of a data variable that names none."""
    if "flag_values" in var.attrs or "flag_masks" in var.attrs:
        return "qualityInformation" if "flag" in str(var.attrs.get("standard_name", "")) else "thematicClassification"
    return default


def _parses_as_crs(wkt: Any) -> bool:
    try:
        pyproj.CRS.from_wkt(str(wkt))
    except pyproj.exceptions.CRSError:
        return False
    return True


def _set_grid_mapping(out: xr.Dataset, names: list[str]) -> xr.Dataset:
    """The grid mapping the variables name (else a new ``crs``), CF 5.6: ``latitude_longitude`` on
    WGS 84 with the full WKT of EPSG:4326 (:func:`products.methods.cf.crs_attributes`) where the
    source's mapping is lat/lon, keeping a source ``crs_wkt`` that parses as WKT."""
    mapping = next(
        (
            str(out[n].attrs["grid_mapping"])
            for n in names
            if isinstance(out[n].attrs.get("grid_mapping"), str) and out[n].attrs["grid_mapping"] in out.variables
        ),
        cf.CRS_NAME,
    )
    attrs = dict(out[mapping].attrs) if mapping in out.variables else {}
    if attrs.get("grid_mapping_name", "latitude_longitude") == "latitude_longitude":
        keep = {"crs_wkt": attrs["crs_wkt"]} if _parses_as_crs(attrs.get("crs_wkt", "")) else {}
        attrs = {**attrs, **cf.crs_attributes(), **keep}
    out[mapping] = cf.crs_variable(attrs)
    for name in names:
        out[name].attrs["grid_mapping"] = mapping
    return out


def _acdd_lon(low: float, high: float) -> tuple[float, float]:
    """``geospatial_lon_min/max`` in the frame of the data where ACDD allows it (-180..180 or
    0..360); a range in neither is wrapped into -180..180 (``min > max`` then means crossing 180)."""
    if high - low >= 360.0:
        return -180.0, 180.0
    if (-180.0 <= low and high <= 180.0) or (0.0 <= low and high <= 360.0):
        return low, high
    return (low + 180.0) % 360.0 - 180.0, (high + 180.0) % 360.0 - 180.0


def _bounds_of(out: xr.Dataset, dim: str) -> str:
    """The bounds variable of ``dim`` in ``out``, else ``dim`` itself."""
    name = out[dim].attrs.get("bounds")
    return name if isinstance(name, str) and name in out.variables else dim


def _extent(out: xr.Dataset, kind: str) -> dict[str, Any]:
    """ACDD extent attributes of the answer.

    Time: :func:`products.methods.cf.extent_attributes` of ``time`` (and its bounds). Space: for a
    grid, the cell centres' range (which the IOOS checker compares with ``lat`` / ``lon``), the
    spacing as resolution and ``geospatial_bounds`` round the cells' outer edges; for a point, the
    cell centre and the source grid's resolution; for stations, the range of their coordinates;
    for an area mean, the region :func:`portal.subsets.core.area_mean` describes.
    ``geospatial_bounds`` is ACDD WKT (latitude first, split at the antimeridian,
    :func:`portal.subsets.core.geospatial_bounds`); ``geospatial_lon_min/max`` are wrapped into
    -180..180 when the answer's longitudes are in neither ACDD frame (-180..180, 0..360).
    """
    attrs = cf.extent_attributes(out)
    if kind == "area":
        attrs.update(
            {
                k: v
                for k, v in out.attrs.items()
                if k.startswith(("geospatial_lat_", "geospatial_lon_", "geospatial_bounds"))
            }
        )
    elif "geospatial_lat_min" in attrs:
        west, east = attrs["geospatial_lon_min"], attrs["geospatial_lon_max"]
        south, north = attrs["geospatial_lat_min"], attrs["geospatial_lat_max"]
        if kind == "grid":  # round the outer edges of the cells
            lat_edges = np.asarray(out[_bounds_of(out, "lat")].values, dtype="float64")
            lon_edges = np.asarray(out[_bounds_of(out, "lon")].values, dtype="float64")
            shape = shapely.box(lon_edges.min(), lat_edges.min(), lon_edges.max(), lat_edges.max())
        elif south == north and west == east:
            shape = shapely.Point(west, south)
            attrs.update(
                {k: v for k, v in out.attrs.items() if k in ("geospatial_lat_resolution", "geospatial_lon_resolution")}
            )
        elif south == north or west == east:
            shape = shapely.LineString([(west, south), (east, north)])
        else:
            shape = shapely.box(west, south, east, north)
        attrs["geospatial_bounds"] = geospatial_bounds(shape)
    if "geospatial_lon_min" in attrs:
        attrs["geospatial_lon_min"], attrs["geospatial_lon_max"] = _acdd_lon(
            float(attrs["geospatial_lon_min"]), float(attrs["geospatial_lon_max"])
        )
        attrs.update(
            geospatial_lat_units="degrees_north",
            geospatial_lon_units="degrees_east",
            geospatial_bounds_crs=cf.GEOSPATIAL_BOUNDS_CRS,
        )
    return attrs


def _history_line(out: xr.Dataset, names: list[str], kind: str, now: datetime) -> str:
    what = {
        "grid": "subset",
        "point": "series of the cell nearest to a point",
        "area": "area-mean series",
        "stations": "station observations",
    }[kind]
    source = out.attrs.get("source_file")
    parts = [f"{what}{f' of {source}' if source else ''}: variables {', '.join(names)}"]
    if kind == "grid":
        lat, lon = out["lat"].values, out["lon"].values
        parts.append(
            f"lat {float(lat.min()):g}..{float(lat.max()):g}, lon {float(lon.min()):g}..{float(lon.max()):g} "
            f"({lat.size} x {lon.size} cells)"
        )
    elif kind == "point":
        parts.append(f"cell centred at lat {float(out['lat']):g}, lon {float(out['lon']):g}")
    elif kind == "area":
        parts.append(f"region {out.attrs.get('geospatial_bounds', '')}")
    if "time" in out.variables and out["time"].size:
        times = np.atleast_1d(out["time"].values)
        parts.append(f"time {iso_time(times[0])}..{iso_time(times[-1])} ({times.size} steps)")
    return cf.history_entry(f"{SERVICE}: " + "; ".join(parts), now)


def cf_dataset(ds: xr.Dataset, attrs: Mapping[str, Any] | None = None, *, now: datetime | None = None) -> xr.Dataset:
    """The answer ``ds`` as written: CF-1.8 variables and ACDD-1.3 global attributes, encodings set.

    Parameters
    ----------
    ds : xarray.Dataset
        What :func:`~portal.subsets.core.select`, :func:`~portal.subsets.core.point_series` or
        :func:`~portal.subsets.core.area_mean` returned (lazy is fine: nothing is read), or a CF
        DSG ``timeSeries`` collection (:func:`portal.subsets.stations.to_dataset`).
    attrs : mapping, optional
        The record's global attributes (:func:`portal.catalog.metadata.acdd_attributes`: title,
        summary, creator, licence, citation, ...), over the source file's.
    now : datetime, optional
        Time of writing (``date_created``, ``history``); default the current UTC time.

    Returns
    -------
    xarray.Dataset
        A shallow copy whose variables carry the attributes and the value ``encoding`` (packing,
        fill, stored type) to write; :func:`products.methods.cf.encoding_for` adds the rest (no
        ``_FillValue`` on coordinates and bounds, float64 time, character arrays). See the module
        notes for what is made consistent.
    """
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    out = ds.copy()
    for var in out.variables.values():
        var.attrs = _cf_attrs(var.attrs)
    names = data_variables(out)
    _drop_missing_ancillaries(out)
    kind = _kind(out, names)
    if kind in ("grid", "point"):
        out = _set_grid_mapping(out, names)
    else:
        for name in names:
            out[name].attrs.pop("grid_mapping", None)
    if kind == "point":
        label = f"cell lat {float(out['lat']):g} lon {float(out['lon']):g}"
        out = out.assign_coords(
            cell_id=xr.Variable((), label, {"cf_role": "timeseries_id", "long_name": "grid cell of the series"})
        )
    bounds = {
        str(v.attrs["bounds"])
        for v in out.variables.values()
        if isinstance(v.attrs.get("bounds"), str) and v.attrs["bounds"] in out.variables
    }
    default = "physicalMeasurement" if kind == "stations" else "modelResult"
    for variable, var in out.variables.items():
        name = str(variable)
        if name in bounds:  # CF 7.1: bounds take their coordinate's units and need no attributes
            var.attrs, var.encoding = {}, {}
        elif name in cf.COORDINATE_ATTRS:
            defaults = {k: v for k, v in cf.COORDINATE_ATTRS[name].items() if k != "axis" or var.dims == (name,)}
            var.attrs = {**defaults, **{k: v for k, v in var.attrs.items() if k not in ("_FillValue", "calendar")}}
            var.attrs["coverage_content_type"] = "coordinate"
            var.encoding = {k: v for k, v in var.encoding.items() if k in ("units", "calendar")}
            if var.dtype.kind == "M":
                var.attrs.pop("units", None)
        elif "grid_mapping_name" in var.attrs:
            var.encoding = {}
        elif var.dtype.kind in "OSU":
            var.attrs.setdefault(
                "coverage_content_type", "referenceInformation" if "cf_role" in var.attrs else "auxiliaryInformation"
            )
            var.encoding = {}
        else:
            var.encoding = _value_encoding(var)
            for key in _RANGE_ATTRS:
                if key in var.attrs:
                    var.attrs[key] = _stored_attr(var.attrs[key], var.encoding, var)
            var.attrs.pop("_FillValue", None)
            var.attrs.setdefault("coverage_content_type", _content_type(var, default))

    source = {k: v for k, v in ds.attrs.items() if not _EXTENT_ATTRS.match(str(k))}  # recomputed by _extent
    record = dict(attrs or {})
    history = [h for h in (str(source.get("history", "")).strip(), str(record.pop("history", "")).strip()) if h]
    history.append(_history_line(out, names, kind, now))
    created = now.isoformat().replace("+00:00", "Z")
    out.attrs = _cf_attrs(
        cf.global_attributes(
            source,
            record,
            _extent(out, kind),
            {
                "history": "\n".join(history),
                "date_created": created,
                "date_metadata_modified": record.get("date_metadata_modified") or created,
            },
        )
    )
    out.attrs.setdefault("comment", COMMENTS[kind])
    if kind == "point":
        out.attrs.update(featureType="timeSeries", cdm_data_type="Station")
    elif kind == "grid":
        out.attrs["cdm_data_type"] = "Grid"
    out.attrs.pop("coordinates", None)
    return out


COMMENTS = {
    "grid": "Subset of the published grid: the cells whose centres fall in the requested box or polygon (cells "
    "of a polygon's bounding box outside it are missing), values as published.",
    "point": "Time series of the published grid cell nearest to the requested point (lat/lon: its centre), "
    "values as published.",
    "area": "cos(latitude)-weighted mean of the finite values of the published grid cells whose centres fall in "
    "the region (geospatial_bounds); lat/lon bounds span those cells.",
    "stations": "Station observations as ingested from the source networks (values and quality flags as the "
    "sources give them).",
}
"""The ``comment`` global attribute each kind of answer gets when the record gives none."""


@contextmanager
def _atomic(path: str | os.PathLike[str]) -> Iterator[Path]:
    """:func:`products.methods.files.atomic_path`, creating the target's folder first."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        yield tmp


def to_netcdf(
    ds: xr.Dataset,
    path: str | os.PathLike[str],
    *,
    citation: str | None = None,
    attrs: Mapping[str, Any] | None = None,
    complevel: int = 4,
) -> Path:
    """Write a CF 1.8 / ACDD 1.3 NetCDF4 file (zlib-compressed), atomically.

    Parameters
    ----------
    ds : xarray.Dataset
        A selection (:func:`~portal.subsets.core.select`), point series or area mean, or a
        station collection (:func:`portal.subsets.stations.to_dataset`).
    path : path-like
        Target file; written under a temporary name in the same folder, then renamed.
    citation : str, optional
        How to cite the dataset (global attribute ``citation``); overrides ``attrs["citation"]``.
    attrs : mapping, optional
        The record's global attributes (title, summary, doi, license, ...), over the source's;
        see :func:`cf_dataset`.
    complevel : int
        zlib level 1-9.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OSError, ValueError, TypeError
        From netCDF4 / xarray (e.g. an attribute value NetCDF cannot hold); no file is left behind.

    References
    ----------
    CF Conventions 1.8; ACDD 1.3; netCDF4-python, https://unidata.github.io/netcdf4-python/
    """
    record = {**dict(attrs or {}), **({"citation": citation} if citation else {})}
    out = cf_dataset(ds, record)
    encoding = cf.encoding_for(out, complevel=complevel)
    for name, var in out.variables.items():
        encoding[name].pop("chunksizes", None)
        if "missing_value" in var.encoding:
            encoding[name]["missing_value"] = var.encoding["missing_value"]
        var.encoding = {}
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

    The store holds the same variables, encodings and attributes as :func:`to_netcdf` writes
    (:func:`cf_dataset`), at the zip's root, entries uncompressed (chunks are compressed
    already). Open it with xarray and zarr-python 3 (tested with zarr 3.1.6) in one line::

        ds = xr.open_zarr(zarr.storage.ZipStore(path, mode="r"))

    Parameters
    ----------
    ds : xarray.Dataset
    path : path-like
        Target ``.zip`` file.
    attrs : mapping, optional
        The record's global attributes (title, citation, ...); see :func:`cf_dataset`.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OSError, ValueError, TypeError
        From zarr / zipfile; no file is left behind.

    References
    ----------
    Zarr storage specification v2, https://zarr-specs.readthedocs.io/en/latest/v2/v2.0.html
    """
    out = cf_dataset(ds, attrs)
    encoding = {}
    for name, enc in cf.encoding_for(out, complevel=0).items():
        encoding[name] = {k: v for k, v in enc.items() if k in _ZARR_ENCODING and not (k == "dtype" and v == "S1")}
        out[name].encoding = {}
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".zarr"))
    try:
        out.to_zarr(work, mode="w", zarr_format=2, consolidated=True, encoding=encoding)
        with _atomic(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for file in sorted(p for p in work.rglob("*") if p.is_file()):
                zf.write(file, file.relative_to(work).as_posix())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _decimals(step: float) -> int | None:
    """Decimal places that hold every multiple of ``step`` (0.001 -> 3; a float32 ``scale_factor``
    0.0010000000475 too), None past 9."""
    for places in range(10):
        scaled = step * 10**places
        if abs(scaled - round(scaled)) <= 1e-6 * max(1.0, abs(scaled)):
            return places
    return None


def _is_integer(var: xr.Variable) -> bool:
    """Values that are integer codes or counts: an integer stored type without scaling, or flags."""
    enc = var.encoding
    stored = np.dtype(enc.get("dtype", var.dtype))
    scaled = float(enc.get("scale_factor", 1.0)) != 1.0 or float(enc.get("add_offset", 0.0)) != 0.0
    return (stored.kind in "iub" and not scaled) or "flag_values" in var.attrs or "flag_masks" in var.attrs


def _packing_decimals(var: xr.Variable) -> int | None:
    """Decimal places of a packed variable's values (``scale_factor`` 0.001 -> 3), else None."""
    enc = var.encoding
    if np.dtype(enc.get("dtype", var.dtype)).kind not in "iu" or "scale_factor" not in enc:
        return None
    places = [_decimals(float(enc["scale_factor"])), _decimals(float(enc.get("add_offset", 0.0)))]
    return None if None in places else max(places)  # type: ignore[type-var]


def text_values(var: xr.Variable | xr.DataArray) -> np.ndarray:
    """Values as text at the precision of the data, for CSV cells: ``""`` where missing.

    * integer codes and counts (an integer stored type without scaling, flag variables): integers;
    * packed integers (``scale_factor`` / ``add_offset`` in the encoding): rounded to the decimals of
      the packing (``sm_1km``, scale 0.001: ``0.123``);
    * float32: the shortest text that reads back as the same float32 (``0.139``, not
      ``0.13900000660214573``); float64: the shortest for float64.

    Parameters
    ----------
    var : xarray.Variable or DataArray
        Any shape; its ``encoding`` says how the source stored it.

    Returns
    -------
    numpy.ndarray of str
        Same shape.
    """
    var = var.variable if isinstance(var, xr.DataArray) else var
    values = np.asarray(var.values)
    if values.dtype.kind in "iub":
        return values.astype(np.int64).astype(str) if values.dtype.kind != "b" else values.astype(int).astype(str)
    missing = ~np.isfinite(values)
    if _is_integer(var):
        text = np.where(missing, 0, np.round(values)).astype(np.int64).astype(str)
    elif (places := _packing_decimals(var)) is not None:
        text = np.round(values.astype("float64"), places).astype(str)
    else:
        text = values.astype(str)
    return np.where(missing, "", text)


def _header(name: str, attrs: Mapping[str, Any]) -> str:
    units = attrs.get("units")
    return f"{name} [{units}]" if units not in (None, "") else name


def to_csv(ds: xr.Dataset, path: str | os.PathLike[str], *, drop_empty: bool = False) -> Path:
    """Write long-form CSV, atomically.

    One row per time step and cell for a selection, per time step for a point series (``lat``,
    ``lon`` = the cell's centre on every row) or an area mean (the centre of the cells averaged).
    The header names each column with its units, ``name [units]``:
    ``time,lat [degrees_north],lon [degrees_east],et [kg m-2 d-1],...``. Times in ISO 8601 (UTC),
    values at the precision of the data (:func:`text_values`: float32 as float32, packed integers
    to the decimals of their scale, flags and integers as integers), missing values empty.

    Parameters
    ----------
    ds : xarray.Dataset
        What :func:`~portal.subsets.core.select`, :func:`~portal.subsets.core.point_series` or
        :func:`~portal.subsets.core.area_mean` returned (bounds and the grid mapping are left out).
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
    names = data_variables(ds)
    sub = ds[names]
    dims = [d for d in ("time", "lat", "lon") if d in sub.dims]
    shape = [sub.sizes[d] for d in dims]
    rows = math.prod(shape)

    def along(position: int, values: np.ndarray) -> np.ndarray:  # a coordinate on every row (C order)
        return np.tile(np.repeat(values, math.prod(shape[position + 1 :])), math.prod(shape[:position]))

    columns: dict[str, np.ndarray] = {}
    for dim in ("time", "lat", "lon"):
        if dim not in ds.variables:
            continue
        coord = ds[dim]
        text = (
            np.asarray(iso_times(coord.values), dtype=object)
            if dim == "time"
            else text_values(coord).astype(object).reshape(-1)
        )
        header = "time" if dim == "time" else _header(dim, coord.attrs)
        columns[header] = along(dims.index(dim), text) if dim in dims else np.repeat(text[:1], rows)
    empty = np.ones(rows, bool)
    for name in names:
        da = sub[name].transpose(*[d for d in dims if d in sub[name].dims])
        text = np.broadcast_to(
            text_values(da.expand_dims([d for d in dims if d not in da.dims]).transpose(*dims)), shape
        ).reshape(-1)
        columns[_header(name, ds[name].attrs)] = text
        empty &= text == ""
    frame = pd.DataFrame(columns)
    if drop_empty:
        frame = frame[~empty]
    with _atomic(path) as tmp:
        frame.to_csv(tmp, index=False)
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
    NaN. CRS EPSG:4326; longitudes may exceed 180 for boxes crossing the antimeridian. The profile
    and band metadata are those of the products' GeoTIFFs (:func:`products.methods.geotiff.create`).

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
    names = data_variables(ds)
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
    transform = geotiff.north_up_transform(float(lon[0]) - dx / 2, float(lat.max()) + dy / 2, dx, dy)

    enc = da.encoding
    packed_dtype = np.dtype(enc["dtype"]) if "dtype" in enc else None
    scale, offset = float(enc.get("scale_factor", 1.0)), float(enc.get("add_offset", 0.0))
    fill = enc.get("_FillValue")
    values = np.asarray(da.values)
    if not north_up:
        values = values[:, ::-1, :]
    if packed_dtype is not None and packed_dtype.kind in "iu" and fill is not None and values.dtype.kind == "f":
        data = cf.pack(values, scale_factor=scale, add_offset=offset, dtype=packed_dtype, fill=fill)
        dtype, nodata = packed_dtype, fill
    elif values.dtype.kind in "iu":
        data, dtype, nodata = values, values.dtype, fill
        scale, offset = 1.0, 0.0
    else:
        data, dtype, nodata = values.astype("float32"), np.dtype("float32"), float("nan")
        scale, offset = 1.0, 0.0
    times = iso_times(da["time"].values)
    count = len(times)
    tags = {
        "variable": variable,
        **{key: str(da.attrs[key]) for key in ("units", "standard_name", "long_name") if key in da.attrs},
    }
    with _atomic(path) as tmp:
        with geotiff.create(
            tmp,
            driver="COG",
            width=lon.size,
            height=lat.size,
            count=count,
            dtype=dtype,
            transform=transform,
            nodata=nodata,
            blocksize=blocksize,
            scales=[scale] * count,
            offsets=[offset] * count,
            descriptions=times,
            band_tags=[{"time": t} for t in times],
            tags=tags,
        ) as dst:
            dst.write(data)
    return Path(path)


def _json_values(var: xr.Variable | xr.DataArray) -> list[Any]:
    """Values for a CoverageJSON range at the precision of the data (:func:`text_values`): numbers
    whose JSON text is the shortest of the stored type (float32 ``0.139``), integers for codes,
    ``None`` where missing."""
    convert = int if _integer_values(var) else float
    return [convert(t) if t else None for t in text_values(var).ravel().tolist()]


def _integer_values(var: xr.Variable | xr.DataArray) -> bool:
    var = var.variable if isinstance(var, xr.DataArray) else var
    return var.dtype.kind in "iub" or _is_integer(var)


def _categories(name: str, attrs: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, int]] | None:
    """CoverageJSON categories and categoryEncoding of a CF flag variable (flag_values, flag_meanings)."""
    if "flag_values" not in attrs or "flag_meanings" not in attrs:
        return None
    values = np.atleast_1d(attrs["flag_values"]).tolist()
    meanings = str(attrs["flag_meanings"]).split()
    if len(values) != len(meanings):
        return None
    categories = [{"id": f"{name}:{m}", "label": {"en": m.replace("_", " ")}} for m in meanings]
    return categories, {f"{name}:{m}": int(v) for v, m in zip(values, meanings, strict=True)}


def to_coveragejson(ds: xr.Dataset) -> dict[str, Any]:
    """A CoverageJSON document (plain dict) for charts and EDR responses.

    Domain types: ``Grid`` for a selection ``(time, lat, lon)``, ``PointSeries`` for a point
    series (scalar ``lat`` / ``lon``), ``PolygonSeries`` for an area mean (``cell_methods`` with
    ``area: mean``; the region from ``attrs["geospatial_bounds"]``, split at the antimeridian).
    Ranges are ``NdArray`` with ``null`` for missing values and values at the precision of the
    data (float32 as float32, packed integers to the decimals of their scale). Flag variables
    (``flag_values`` / ``flag_meanings``, e.g. the freeze/thaw state) are categorical parameters:
    ``observedProperty.categories`` (id, label) and ``categoryEncoding`` (category id -> value),
    integer ranges, no unit.

    Parameters
    ----------
    ds : xarray.Dataset
        Output of :func:`~portal.subsets.core.select`, :func:`~portal.subsets.core.point_series`
        or :func:`~portal.subsets.core.area_mean` (loaded or lazy: values are read here).

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
    (9.3 categorical parameters: categories and categoryEncoding)
    """
    times = iso_times(ds["time"].values) if "time" in ds.coords else []
    first = np.atleast_1d(ds["time"].values)[0] if "time" in ds.coords and ds["time"].size else None
    calendar = getattr(first, "calendar", None) or "Gregorian"  # cftime values carry theirs
    crs = {"type": "GeographicCRS", "id": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}
    referencing = [
        {"coordinates": ["x", "y"], "system": crs},
        {"coordinates": ["t"], "system": {"type": "TemporalRS", "calendar": calendar}},
    ]
    names = data_variables(ds)
    spatial = {str(d) for v in names for d in ds[v].dims} - {"time"}
    axes: dict[str, dict[str, Any]]
    order: tuple[str, ...]
    if spatial == {"lat", "lon"}:
        axes = {
            "x": {"values": _json_values(ds["lon"])},
            "y": {"values": _json_values(ds["lat"])},
            "t": {"values": times},
        }
        domain_type, axis_names, order = "Grid", ["t", "y", "x"], ("time", "lat", "lon")
    elif not spatial and _kind(ds, names) == "area" and "geospatial_bounds" in ds.attrs:
        geom = region_of(ds.attrs["geospatial_bounds"])
        polygons = [
            [[[float(x), float(y)] for x, y in ring.coords] for ring in (p.exterior, *p.interiors)]
            for p in getattr(geom, "geoms", [geom])
            if p.geom_type == "Polygon"
        ]
        axes = {
            "composite": {"dataType": "polygon", "coordinates": ["x", "y"], "values": polygons},
            "t": {"values": times},
        }
        domain_type, axis_names, order = "PolygonSeries", ["t"], ("time",)
    elif not spatial and "lat" in ds.coords and "lon" in ds.coords and ds["lat"].ndim == 0:
        axes = {
            "x": {"values": _json_values(ds["lon"])},
            "y": {"values": _json_values(ds["lat"])},
            "t": {"values": times},
        }
        domain_type, axis_names, order = "PointSeries", ["t"], ("time",)
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
        categorical = _categories(name, da.attrs)
        if categorical is not None:
            parameter["observedProperty"]["categories"], parameter["categoryEncoding"] = categorical
        elif "units" in da.attrs:
            parameter["unit"] = {"symbol": str(da.attrs["units"])}
        parameters[name] = parameter
        if "time" not in da.dims:
            da = da.expand_dims("time")
        da = da.transpose(*order)
        values = _json_values(da)
        ranges[name] = {
            "type": "NdArray",
            "dataType": "integer" if _integer_values(da) else "float",
            "axisNames": axis_names,
            "shape": list(da.shape),
            "values": values,
        }
    return {
        "type": "Coverage",
        "domain": {"type": "Domain", "domainType": domain_type, "axes": axes, "referencing": referencing},
        "parameters": parameters,
        "ranges": ranges,
    }


WITH_GLOBAL_ATTRIBUTES = frozenset({"netcdf", "zarr"})
"""The formats of :func:`write` that carry the record's global attributes (``attrs``); the others ignore them."""


def write(
    ds: xr.Dataset, path: str | os.PathLike[str], fmt: str, *, attrs: Mapping[str, str], drop_empty: bool = False
) -> Path:
    """Write an answer at ``path`` in ``fmt``, atomically: the one entry point of the service.

    Parameters
    ----------
    ds : xarray.Dataset
        What :func:`~portal.subsets.core.select`, :func:`~portal.subsets.core.point_series` or
        :func:`~portal.subsets.core.area_mean` returned (lazy; read here).
    path : path-like
        Target file (its folder is made if missing).
    fmt : {"netcdf", "geotiff", "csv", "zarr", "coveragejson"}
        One of :data:`portal.subsets.core.FORMATS`: :func:`to_netcdf` (zlib level 1),
        :func:`to_geotiff` (one variable), :func:`to_csv`, :func:`to_zarr_zip`,
        :func:`to_coveragejson` written as a JSON file.
    attrs : mapping of str to str
        The record's global attributes (:func:`portal.catalog.metadata.acdd_attributes`, with
        ``citation``), carried into the formats that hold them (NetCDF, Zarr).
    drop_empty : bool
        CSV: leave out rows where every variable is missing (cells outside a polygon).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    SubsetError
        ``f``: an unknown format; the writer's own (e.g. ``variables`` for a GeoTIFF of
        several variables).
    OSError, ValueError, TypeError
        From the writer; no file is left behind.
    """
    if fmt == "netcdf":
        return to_netcdf(ds, path, attrs=attrs, complevel=1)
    if fmt == "geotiff":
        return to_geotiff(ds, path)
    if fmt == "csv":
        return to_csv(ds, path, drop_empty=drop_empty)
    if fmt == "zarr":
        return to_zarr_zip(ds, path, attrs=attrs)
    if fmt == "coveragejson":
        document = to_coveragejson(ds)
        with _atomic(path) as tmp:
            tmp.write_text(json.dumps(document, allow_nan=False))
        return Path(path)
    raise SubsetError("f", f"{fmt!r} not in {list(FORMATS)}")
