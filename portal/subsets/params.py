"""One parser for the query parameters of every front door of the subset service.

The dataset API (``/api/datasets/<id>/subset|point|area/``), ``POST /api/jobs/`` (its ``params``
are the API's), the dataset page's form (which calls the API) and OGC API-EDR
(``position|area|cube``) all come here: :func:`parse` turns their parameters into one
:class:`Query`. Pure Python (no Django).

The same rules everywhere:

* an unknown parameter is refused, naming it and suggesting the right one (an EDR client that
  sends ``parameter_names`` is told ``parameter-name``; ``format`` is told ``f``);
* boxes and times are read by :mod:`portal.extents` (the catalogue search and STAC read theirs
  there too); times are ISO 8601 / RFC 3339: a date (``2001``, ``2001-02``, ``2001-02-03``; at either end of
  an interval it covers the whole year, month or day) or a date-time with ``Z`` or an offset
  (converted to UTC; without one it is read as UTC); an instant or an interval ``start/end`` with
  ``..`` or nothing for an open end, as OGC APIs write them;
* errors (:class:`portal.subsets.core.SubsetError`) name the parameter as the user wrote it
  (:func:`public_name`): ``f``, not ``format``; ``datetime`` and ``parameter-name`` in EDR.

References
----------
* OGC API - Environmental Data Retrieval 1.1 (OGC 19-086r6), query parameters ``coords``,
  ``bbox``, ``datetime``, ``parameter-name``, ``f``, ``crs``, ``z``.
* RFC 3339, https://www.rfc-editor.org/rfc/rfc3339
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely

from portal import extents

from . import core

KINDS = ("subset", "point", "area")
"""What an API query asks for: a gridded ``subset`` (box or polygon), a ``point`` series, an ``area`` mean series."""
SERIES_FORMATS = ("csv", "netcdf", "zarr", "coveragejson")
"""Formats of point and area series (a GeoTIFF needs a grid)."""
EDR_QUERY_TYPES = ("position", "area", "cube")
EDR_FORMATS = {"CoverageJSON": "coveragejson", "NetCDF": "netcdf", "CSV": "csv"}
"""EDR output format name -> :data:`portal.subsets.core.FORMATS` name; the first is the default."""
_EDR_FORMAT_ALIASES = {
    "coveragejson": "coveragejson",
    "covjson": "coveragejson",
    "application/prs.coverage+json": "coveragejson",
    "netcdf": "netcdf",
    "nc": "netcdf",
    "application/x-netcdf": "netcdf",
    "application/netcdf": "netcdf",
    "csv": "csv",
    "text/csv": "csv",
    "json": "coveragejson",
    "application/json": "coveragejson",
}
CRS84 = "OGC:CRS84"
CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
_CRS_NAMES = {CRS84, "CRS84", CRS84_URI, "[OGC:CRS84]"}

_API_COMMON = ("version", "file", "variables", "time", "f", "estimate")
API_PARAMETERS = {
    "subset": (*_API_COMMON, "bbox", "polygon", "time_stride", "space_stride"),
    "point": (*_API_COMMON, "lon", "lat"),
    "area": (*_API_COMMON, "bbox", "polygon", "time_stride", "space_stride"),
}
"""The query parameters each API action accepts (``POST /api/jobs/`` ``params`` too)."""
EDR_PARAMETERS = {
    "position": ("coords", "datetime", "parameter-name", "f", "crs", "z"),
    "area": ("coords", "datetime", "parameter-name", "f", "crs", "z"),
    "cube": ("bbox", "datetime", "parameter-name", "f", "crs", "z"),
}
"""The query parameters each EDR query accepts."""
OBSERVATION_PARAMETERS = ("bbox", "time", "network", "station", "variables", "f")
"""The query parameters of ``/api/observations/``."""

# names people send for what a front door calls otherwise (checked before close spellings)
_ALIASES = {
    "api": {
        "format": "f",
        "datetime": "time",
        "parameter-name": "variables",
        "parameter_name": "variables",
        "parameters": "variables",
        "vars": "variables",
        "var": "variables",
        "variable": "variables",
        "coords": "bbox",
        "longitude": "lon",
        "latitude": "lat",
        "x": "lon",
        "y": "lat",
        "start": "time",
        "end": "time",
    },
    "edr": {
        "format": "f",
        "time": "datetime",
        "parameter_names": "parameter-name",
        "parameter_name": "parameter-name",
        "parameter-names": "parameter-name",
        "parameters": "parameter-name",
        "variables": "parameter-name",
        "parametername": "parameter-name",
        "point": "coords",
        "polygon": "coords",
        "lon": "coords",
        "lat": "coords",
    },
}
# core field -> the parameter the user wrote, per front door
_PUBLIC = {
    "api": {"format": "f"},
    "edr": {
        "polygon": "coords",
        "lon": "coords",
        "lat": "coords",
        "time": "datetime",
        "variables": "parameter-name",
        "format": "f",
        "time_stride": "datetime",
        "space_stride": "bbox",
    },
}


class UnknownParameter(core.SubsetError):
    """A query parameter the front door does not accept (``field`` is the name as sent)."""


class MissingParameter(core.SubsetError):
    """A required query parameter is absent."""


@dataclass(frozen=True)
class Query:
    """A parsed request.

    Attributes
    ----------
    kind : {"subset", "point", "area"}
    request : portal.subsets.core.SubsetRequest
    params : dict of str to str
        The request in the dataset API's parameters (an EDR query translated), without
        ``estimate``: stored with jobs, in the download log, in job hints, and in file names.
    lon, lat : float, optional
        The point of a point series (degrees east, north).
    estimate : bool
        Only the size estimate and what would happen is wanted.
    front_door : {"api", "edr"}
        Which vocabulary errors use (:func:`public_name`).
    """

    kind: str
    request: core.SubsetRequest
    params: Mapping[str, str]
    lon: float | None = None
    lat: float | None = None
    estimate: bool = False
    front_door: str = "api"


# --------------------------------------------------------------------------- names


def check_names(params: Mapping[str, Any], allowed: tuple[str, ...], front_door: str) -> None:
    """Refuse parameters not in ``allowed``, naming the first and suggesting the right one.

    Raises
    ------
    UnknownParameter
        ``field`` is the unknown name as sent.
    """
    for name in params:
        if len(str(params[name] or "")) > MAX_TEXT:
            raise core.SubsetError(
                str(name)[:60],
                f"{len(str(params[name]))} characters, more than the {MAX_TEXT} a "
                "parameter may hold (a polygon: simplify it, or use a bbox)",
            )
        if name in allowed:
            continue
        aliases = _ALIASES.get(front_door, {})
        hint = aliases.get(str(name).lower())
        if hint not in allowed:  # a misspelling of an accepted name or of a known alias ("fromat" -> f)
            known = {a.replace("_", "-"): a for a in allowed}
            known.update({k.replace("_", "-"): v for k, v in aliases.items() if v in allowed and k not in known})
            close = difflib.get_close_matches(str(name).lower().replace("_", "-"), list(known), n=1, cutoff=0.6)
            hint = known[close[0]] if close else None
        shown = str(name)[:60]
        suggestion = f"did you mean {hint!r}? " if hint else ""
        raise UnknownParameter(shown, f"unknown parameter {shown!r}: {suggestion}accepted: {', '.join(allowed)}")


def public_name(field: str, front_door: str, query_type: str | None = None) -> str:
    """The parameter a user wrote for a :class:`~portal.subsets.core.SubsetError` ``field``.

    A core ``bbox`` error is about ``coords`` for EDR position and area queries.
    """
    if front_door == "edr" and field == "bbox" and query_type in ("position", "area"):
        return "coords"
    return _PUBLIC.get(front_door, {}).get(field, field)


# --------------------------------------------------------------------------- values

_INTEGER = re.compile(r"\s*\+?\d{1,9}\s*", re.ASCII)
MAX_TEXT = 200_000
"""Characters a parameter may hold (a WKT or GeoJSON polygon of MAX_POLYGON_VERTICES vertices fits)."""


def _integer(field: str, text: str | None) -> int:
    if text and not _INTEGER.fullmatch(text):
        raise core.SubsetError(field, f"expected an integer >= 1 (ASCII digits), got {str(text)[:40]!r}")
    return int(text or "1")


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (text or "").split(",") if v.strip())


def _wkt(text: str, field: str):
    try:
        geom = core.from_wkt(text)
    except (shapely.errors.ShapelyError, ValueError, TypeError) as exc:
        raise core.SubsetError(field, f"not a WKT geometry ({str(exc).splitlines()[0]}): {text[:200]!r}") from None
    if not np.isfinite(shapely.get_coordinates(geom)).all():
        raise core.SubsetError(field, f"coordinates must be finite numbers: {text[:200]!r}")
    return geom


def _flag(text: str | None) -> bool:
    return str(text or "").strip().lower() in ("1", "true", "yes")


# --------------------------------------------------------------------------- the dataset API


def parse_api(kind: str, params: Mapping[str, str]) -> Query:
    """A :class:`Query` from the dataset API's parameters (all strings, as in a query string).

    Parameters
    ----------
    kind : {"subset", "point", "area"}
    params : mapping
        :data:`API_PARAMETERS` ``[kind]``: ``variables`` (comma-separated), ``bbox``
        (min_lon,min_lat,max_lon,max_lat; min_lon > max_lon crosses the antimeridian) or
        ``polygon`` (WKT or GeoJSON), ``lon`` and ``lat`` (point series), ``time`` (see the module
        notes), ``time_stride``, ``space_stride``, ``f`` (format), ``estimate``, and ``version``
        and ``file`` (kept in ``params`` for the service).

    Raises
    ------
    UnknownParameter, portal.subsets.core.SubsetError
        Naming the parameter: unknown names, malformed values, a missing point, a format the kind
        cannot have.
    """
    if kind not in KINDS:
        raise core.SubsetError("kind", f"expected one of {list(KINDS)}, got {str(kind)[:40]!r}")
    check_names(params, API_PARAMETERS[kind], "api")
    fmt = (params.get("f") or ("netcdf" if kind == "subset" else "csv")).strip().lower()
    if kind != "subset" and fmt not in SERIES_FORMATS:
        raise core.SubsetError("f", f"{fmt!r}: a {kind} series can be one of {list(SERIES_FORMATS)}")
    if fmt not in core.FORMATS:
        raise core.SubsetError("f", f"{fmt!r} is not a format: use one of {list(core.FORMATS)}")
    lon = lat = None
    if kind == "point":
        for name in ("lon", "lat"):
            if not params.get(name):
                raise MissingParameter(name, "a point series needs lon and lat (degrees)")
        lon, lat = (
            extents.parse_numbers(params[name], 1, "a number", name, error=core.SubsetError)[0]
            for name in ("lon", "lat")
        )
    bbox = params.get("bbox") if kind != "point" else None
    request = core.SubsetRequest(
        variables=_names(params.get("variables")),
        bbox=extents.parse_bbox(bbox, error=core.SubsetError) if bbox else None,
        polygon=(params.get("polygon") or None) if kind != "point" else None,
        time=extents.parse_period(params.get("time"), "time", error=core.SubsetError),
        time_stride=_integer("time_stride", params.get("time_stride")),
        space_stride=_integer("space_stride", params.get("space_stride")),
        format=fmt,
    )
    if kind == "area" and request.bbox is None and request.geometry is None:
        raise MissingParameter("bbox", "an area mean needs a bbox or a polygon")
    kept = {k: str(v) for k, v in params.items() if k != "estimate" and v not in (None, "")}
    kept["f"] = fmt
    return Query(kind, request, kept, lon, lat, estimate=_flag(params.get("estimate")))


# --------------------------------------------------------------------------- OGC API-EDR


def edr_format(f: str | None, accept: str | None = None) -> str:
    """The output format from ``f`` (EDR name or media type), else from an Accept header.

    Returns
    -------
    str
        A :data:`portal.subsets.core.FORMATS` name; ``coveragejson`` by default.

    Raises
    ------
    portal.subsets.core.SubsetError
        ``f``: an unknown format.
    """
    if f is not None and f.strip():
        key = f.strip().lower()
        if key not in _EDR_FORMAT_ALIASES:
            raise core.SubsetError(
                "f", f"{f[:40]!r} is not an output format of this collection: use one of {', '.join(EDR_FORMATS)}"
            )
        return _EDR_FORMAT_ALIASES[key]
    for part in (accept or "").split(","):
        media_type = part.split(";")[0].strip().lower()
        if media_type in _EDR_FORMAT_ALIASES:
            return _EDR_FORMAT_ALIASES[media_type]
    return EDR_FORMATS["CoverageJSON"]


def _edr_point(text: str | None) -> tuple[float, float]:
    if text is None or not text.strip():
        raise MissingParameter("coords", "a position query needs coords=POINT(lon lat)")
    geom = _wkt(text, "coords")
    if geom.geom_type == "MultiPoint" and len(geom.geoms) == 1:
        geom = geom.geoms[0]
    if geom.geom_type != "Point" or geom.is_empty:
        got = "an empty point" if geom.is_empty else geom.geom_type
        raise core.SubsetError("coords", f"a position query takes one POINT(lon lat), got {got}")
    if geom.has_z:
        raise core.SubsetError("coords", "the collection has no vertical axis: give POINT(lon lat)")
    lon, lat = float(geom.x), float(geom.y)
    if not (math.isfinite(lon) and -180 <= lon <= 360):
        raise core.SubsetError("coords", f"longitude {lon:g} outside -180..360")
    if not (math.isfinite(lat) and -90 <= lat <= 90):
        raise core.SubsetError("coords", f"latitude {lat:g} outside -90..90")
    return lon, lat


def _edr_bbox(text: str | None) -> tuple[float, ...]:
    if text is None or not text.strip():
        raise MissingParameter("bbox", "a cube query needs bbox=minx,miny,maxx,maxy")
    return extents.parse_bbox(
        text, what="4 comma-separated numbers minx,miny,maxx,maxy", heights="refuse", error=core.SubsetError
    )


def _time_text(value: Any) -> str:
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, pd.Timestamp) else str(value)


def parse_edr(
    query_type: str,
    params: Mapping[str, str],
    accept: str | None = None,
    file: str | None = None,
    version: int | None = None,
) -> Query:
    """A :class:`Query` from the parameters of an EDR ``position``, ``area`` or ``cube`` query.

    Parameters
    ----------
    query_type : {"position", "area", "cube"}
        ``position`` (``coords=POINT``) is a point series; ``area`` (``coords=POLYGON`` or
        ``MULTIPOLYGON``) and ``cube`` (``bbox``) are subsets.
    params : mapping
        :data:`EDR_PARAMETERS` ``[query_type]``: besides the above ``datetime``,
        ``parameter-name`` (comma-separated), ``f``, ``crs`` (CRS84 only) and ``z`` (refused: no
        vertical axis).
    accept : str, optional
        HTTP Accept header, used when ``f`` is absent.
    file : str, optional
        The collection's grid file (kept in ``params``, as the dataset API names it).
    version : int, optional
        The version of an earlier version's collection (kept in ``params`` as ``version``); default the latest.

    Returns
    -------
    Query
        ``params`` are the equivalent dataset API parameters (for the download log and job hints).

    Raises
    ------
    UnknownParameter, MissingParameter, portal.subsets.core.SubsetError
        Naming the parameter (core field names: see :func:`public_name`).
    """
    if query_type not in EDR_QUERY_TYPES:
        raise ValueError(f"unknown query type {query_type!r}")
    check_names(params, EDR_PARAMETERS[query_type], "edr")
    fmt = edr_format(params.get("f"), accept)
    crs = params.get("crs")
    if crs is not None and crs.strip() and crs.strip() not in _CRS_NAMES:
        raise core.SubsetError("crs", f"{crs[:60]!r} is not supported: coordinates are longitude, latitude in {CRS84}")
    if params.get("z") not in (None, ""):
        raise core.SubsetError("z", "the collection has no vertical axis")
    time = extents.parse_period(params.get("datetime"), "datetime", error=core.SubsetError)
    variables = _names(params.get("parameter-name"))
    lon = lat = None
    if query_type == "position":
        lon, lat = _edr_point(params.get("coords"))
        request = core.SubsetRequest(variables=variables, time=time, format=fmt)
    elif query_type == "area":
        coords = params.get("coords")
        if coords is None or not coords.strip():
            raise MissingParameter("coords", "an area query needs coords=POLYGON((lon lat, ...))")
        request = core.SubsetRequest(variables=variables, polygon=_wkt(coords, "coords"), time=time, format=fmt)
    else:
        request = core.SubsetRequest(variables=variables, bbox=_edr_bbox(params.get("bbox")), time=time, format=fmt)
    api: dict[str, str] = {"f": fmt}
    if file:
        api["file"] = file
    if version is not None:
        api["version"] = str(version)
    if variables:
        api["variables"] = ",".join(variables)
    if request.time is not None:
        api["time"] = "/".join(_time_text(t) for t in request.time)
    if lon is not None:
        api.update(lon=repr(lon), lat=repr(lat))
    elif request.geometry is not None:
        api["polygon"] = request.geometry.wkt
    elif request.bbox is not None:
        api["bbox"] = ",".join(repr(v) for v in request.bbox)
    return Query("point" if query_type == "position" else "subset", request, api, lon, lat, front_door="edr")
