"""OGC API - Environmental Data Retrieval (EDR 1.1) over the subset core: collections and queries.

The protocol layer of ``/api/edr/``: which published grids are EDR collections, their metadata
documents, the parsing of EDR query parameters (``coords``, ``bbox``, ``datetime``,
``parameter-name``, ``f``, ``crs``, ``z``) into :class:`portal.subsets.core.SubsetRequest`, and
the answers (written by :mod:`portal.subsets.services` and :mod:`portal.subsets.core`). No HTTP
here; :mod:`portal.edr.views` turns :class:`~portal.subsets.core.SubsetError` into 400s naming
the EDR parameter at fault (:func:`edr_parameter`).

We implement EDR ourselves, as a thin layer over the subset core, because pygeoapi reads its
collections from a static YAML configuration loaded at start-up (ours change with every published
version) and xpublish-edr is a FastAPI/ASGI application that cannot be mounted in this WSGI
Django site.

Collections: one per dataset whose latest published version holds exactly one gridded NetCDF
(data variables on ``(time, lat, lon)``); the collection id is the dataset id
(``<dataset id>.<file stem>`` per grid when the version holds several).

References
----------
* OGC API - Environmental Data Retrieval Standard 1.1, OGC 19-086r6,
  https://docs.ogc.org/is/19-086r6/19-086r6.html
* OGC API - Common - Part 1: Core, OGC 19-072, https://docs.ogc.org/is/19-072/19-072.html
* CoverageJSON, OGC Community Standard 21-069r2, https://docs.ogc.org/cs/21-069r2/21-069r2.html
"""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import shapely
from django.conf import settings
from django.utils.html import strip_tags

from portal.catalog.models import Dataset, DatasetFile
from portal.subsets import core
from portal.subsets import services as subsets
from portal.subsets.grids import GridInfo, grid_info

log = logging.getLogger(__name__)

CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/landing-page",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
    "http://www.opengis.net/spec/ogcapi-edr-1/1.1/conf/core",
    "http://www.opengis.net/spec/ogcapi-edr-1/1.1/conf/collections",
    "http://www.opengis.net/spec/ogcapi-edr-1/1.1/conf/json",
    "http://www.opengis.net/spec/ogcapi-edr-1/1.1/conf/covjson",
    "http://www.opengis.net/spec/ogcapi-edr-1/1.1/conf/queries",
)
"""Conformance classes declared at ``/conformance`` (no HTML, GeoJSON or OpenAPI classes yet)."""

QUERY_TYPES = ("position", "area", "cube")

OUTPUT_FORMATS = {"CoverageJSON": "coveragejson", "NetCDF": "netcdf", "CSV": "csv"}
"""EDR output format name -> :data:`portal.subsets.core.FORMATS` name; the first is the default."""

_FORMAT_ALIASES = {
    "coveragejson": "coveragejson", "covjson": "coveragejson", "application/prs.coverage+json": "coveragejson",
    "netcdf": "netcdf", "nc": "netcdf", "application/x-netcdf": "netcdf", "application/netcdf": "netcdf",
    "csv": "csv", "text/csv": "csv", "json": "coveragejson", "application/json": "coveragejson",
}

CRS84 = "OGC:CRS84"
CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CRS84_WKT = ('GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],'
             'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433],AXIS["Longitude",EAST],AXIS["Latitude",NORTH]]')
_CRS_NAMES = {CRS84, "CRS84", CRS84_URI, "[OGC:CRS84]"}
TRS_GREGORIAN = 'TIMECRS["DateTime",TDATUM["Gregorian Calendar"],CS[TemporalDateTime,1],AXIS["Time (T)",future]]'

_CORE_TO_EDR = {"polygon": "coords", "lon": "coords", "lat": "coords", "time": "datetime",
                "variables": "parameter-name", "format": "f"}


def edr_parameter(field: str, query_type: str | None = None) -> str:
    """The EDR query parameter behind a :class:`~portal.subsets.core.SubsetError` field.

    Parameters
    ----------
    field : str
        ``SubsetError.field``: a core request field (``time``, ``variables``, ``polygon``, ...)
        or already an EDR parameter name.
    query_type : str, optional
        ``position``, ``area`` or ``cube``; a core ``bbox`` error is about ``coords`` for
        position and area queries.

    Returns
    -------
    str
    """
    if field == "bbox" and query_type in ("position", "area"):
        return "coords"
    return _CORE_TO_EDR.get(field, field)


# --------------------------------------------------------------------------- collections



def _latest_version(dataset: Dataset):
    versions = list(dataset.versions.all())  # prefetched by collections(); ordered by -number
    return max(versions, key=lambda v: v.number) if versions else None


class Collection(NamedTuple):
    """An EDR collection: ``id``, its ``dataset``, the grid ``file`` and its ``info``."""

    id: str
    dataset: Dataset
    file: DatasetFile
    info: GridInfo


def dataset_collections(dataset: Dataset) -> list[Collection]:
    """The collections of ``dataset``: one per gridded NetCDF of its latest version.

    The id is the dataset id when the version holds one grid, ``<dataset id>.<file stem>`` for
    each grid when it holds several (e.g. the freeze/thaw proxy and twin grids).

    Parameters
    ----------
    dataset : Dataset

    Returns
    -------
    list of Collection
        Empty without a published version or without a gridded NetCDF.
    """
    version = _latest_version(dataset)
    if version is None:
        return []
    grids = [(f, info) for f in sorted(version.files.all(), key=lambda f: f.name)
             if f.name.endswith(".nc") and (info := grid_info(f)) is not None]
    if len(grids) == 1:
        return [Collection(dataset.id, dataset, *grids[0])]
    return [Collection(f"{dataset.id}.{Path(f.name).stem}", dataset, f, info) for f, info in grids]


def collections() -> list[Collection]:
    """Every EDR collection, ordered by dataset id and file name."""
    datasets = (Dataset.objects.filter(versions__isnull=False).distinct().order_by("id")
                .prefetch_related("versions__files", "tags"))
    return [c for dataset in datasets for c in dataset_collections(dataset)]


def get_collection(collection_id: str) -> Collection | None:
    """The collection ``collection_id`` (a dataset id, or ``<dataset id>.<file stem>``), or None."""
    candidates = [collection_id] + ([collection_id.rsplit(".", 1)[0]] if "." in collection_id else [])
    for dataset_id in candidates:
        dataset = Dataset.objects.filter(id=dataset_id).prefetch_related("versions__files", "tags").first()
        if dataset is not None:
            match = [c for c in dataset_collections(dataset) if c.id == collection_id]
            if match:
                return match[0]
    return None


def _parameter(name: str, kind: str, attrs: Mapping[str, str]) -> dict[str, Any]:
    label = attrs.get("long_name") or attrs.get("standard_name") or name
    observed: dict[str, Any] = {"label": label}
    if "standard_name" in attrs:
        observed["id"] = f"http://vocab.nerc.ac.uk/standard_name/{attrs['standard_name']}/"
    parameter: dict[str, Any] = {"type": "Parameter", "id": name, "label": label, "description": label,
                                 "data-type": "integer" if kind in "iub" else "float",
                                 "observedProperty": observed}
    if "units" in attrs:
        parameter["unit"] = {"label": attrs["units"], "symbol": attrs["units"]}
    return parameter


def _query_link(href: str, query_type: str) -> dict[str, Any]:
    titles = {"position": "Position query: the time series of the cell nearest to coords=POINT(lon lat)",
              "area": "Area query: the cells whose centres fall inside coords=POLYGON((...))",
              "cube": "Cube query: the cells whose centres fall inside bbox=minx,miny,maxx,maxy"}
    return {"link": {
        "href": f"{href}/{query_type}", "rel": "data", "type": "application/prs.coverage+json",
        "title": titles[query_type],
        "variables": {"title": titles[query_type], "query_type": query_type,
                      "output_formats": list(OUTPUT_FORMATS), "default_output_format": next(iter(OUTPUT_FORMATS)),
                      "crs_details": [{"crs": CRS84, "wkt": CRS84_WKT}]},
    }}


def collection_document(collection: Collection, href: str, links: list[dict] | None = None) -> dict[str, Any]:
    """The EDR collection metadata (``/collections/{collectionId}``).

    Parameters
    ----------
    collection : Collection
    href : str
        Absolute URL of the collection, without a trailing slash; query links are ``href/<type>``.
    links : list of dict, optional
        More links (self, the dataset record, ...), placed first.

    Returns
    -------
    dict
        JSON-serialisable: ``id``, ``title``, ``description``, ``keywords``, ``links``,
        ``extent`` (spatial bbox from the grid's cell edges, temporal interval and values from its
        time axis), ``data_queries``, ``crs``, ``output_formats``, ``parameter_names``.
    """
    dataset, info = collection.dataset, collection.info
    title = dataset.title_en or dataset.title_cn or dataset.id
    if collection.id != dataset.id:
        title = f"{title} ({collection.file.name})"
    description = " ".join(strip_tags(dataset.abstract_en or dataset.abstract_cn or "").split())
    trs = TRS_GREGORIAN if info.calendar in ("standard", "gregorian", "proleptic_gregorian") else (
        f'TIMECRS["DateTime",TDATUM["{info.calendar} calendar"],CS[TemporalDateTime,1],AXIS["Time (T)",future]]')
    query_links = [{"href": f"{href}/{q}", "rel": "data", "type": "application/prs.coverage+json",
                    "title": f"{q.capitalize()} query"} for q in QUERY_TYPES]
    return {
        "id": collection.id,
        "title": title,
        "description": description,
        "keywords": sorted({t.name for t in dataset.tags.all()}),
        "links": [*(links or []), *query_links],
        "extent": {
            "spatial": {"bbox": [list(info.bbox)], "crs": CRS84_WKT, "name": "WGS 84 (CRS84)"},
            "temporal": {"interval": [list(info.interval)], "values": list(info.time_values), "trs": trs,
                         "name": info.calendar},
        },
        "data_queries": {q: _query_link(href, q) for q in QUERY_TYPES},
        "crs": [CRS84],
        "output_formats": list(OUTPUT_FORMATS),
        "parameter_names": {name: _parameter(name, kind, attrs) for name, kind, attrs in info.parameters},
    }


# --------------------------------------------------------------------------- query parameters


class MissingParameter(core.SubsetError):
    """A required EDR query parameter is absent or empty."""


@dataclass(frozen=True)
class EdrQuery:
    """A parsed EDR data query.

    Attributes
    ----------
    query_type : str
        ``position``, ``area`` or ``cube``.
    request : portal.subsets.core.SubsetRequest
        Parameters, period and format; the region of area (``polygon``) and cube (``bbox``)
        queries.
    point : tuple (lon, lat), optional
        The position query's point.
    """

    query_type: str
    request: core.SubsetRequest
    point: tuple[float, float] | None = None


def parse_format(f: str | None, accept: str | None = None) -> str:
    """The output format from ``f`` (EDR name or media type), else from an Accept header.

    Parameters
    ----------
    f : str, optional
        ``CoverageJSON``, ``NetCDF`` or ``CSV`` (case-insensitive; also ``covjson``, ``nc`` or the
        media types).
    accept : str, optional
        HTTP Accept header; the first media range naming one of the formats wins.

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
        if key not in _FORMAT_ALIASES:
            raise core.SubsetError("f", f"{f!r} is not an output format of this collection: use one of "
                                        f"{', '.join(OUTPUT_FORMATS)}")
        return _FORMAT_ALIASES[key]
    for part in (accept or "").split(","):
        media_type = part.split(";")[0].strip().lower()
        if media_type in _FORMAT_ALIASES:
            return _FORMAT_ALIASES[media_type]
    return OUTPUT_FORMATS["CoverageJSON"]


def _bound(text: str, name: str) -> str | pd.Timestamp:
    try:
        stamp = pd.Timestamp(text)
    except (TypeError, ValueError, OverflowError):
        stamp = pd.NaT
    if stamp is pd.NaT:
        raise core.SubsetError("datetime", f"{name} {text!r} is not an RFC 3339 date or date-time")
    if "T" not in text.upper() and " " not in text.strip():
        return text.strip()  # a date (or year, month): covers the whole day at either end of an interval
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp


def parse_datetime(text: str | None) -> tuple[Any, Any] | None:
    """An EDR ``datetime``: an instant, ``a/b``, ``../b`` or ``a/..`` (empty ends are open too).

    Parameters
    ----------
    text : str, optional

    Returns
    -------
    tuple (start, end) or None
        Bounds for :class:`portal.subsets.core.SubsetRequest` ``time``: date-only text stays text
        (a date covers its whole day), date-times become naive UTC ``pandas.Timestamp``; None for
        an absent or fully open ``datetime``.

    Raises
    ------
    portal.subsets.core.SubsetError
        ``datetime``: not an instant or an interval of RFC 3339 dates.
    """
    if text is None or not text.strip():
        return None
    parts = text.strip().split("/")
    if len(parts) == 1:
        if parts[0] == "..":
            raise core.SubsetError("datetime", "'..' is only allowed as an open end of an interval (a/..)")
        instant = _bound(parts[0], "instant")
        return (instant, instant)
    if len(parts) != 2:
        raise core.SubsetError("datetime", f"expected an instant or an interval start/end, got {text!r}")
    start, end = (None if p.strip() in ("", "..") else _bound(p.strip(), n)
                  for p, n in zip(parts, ("start", "end"), strict=True))
    if start is None and end is None:
        return None
    return (start, end)  # SubsetRequest checks start <= end


def parse_point(text: str | None) -> tuple[float, float]:
    """``coords`` of a position query: ``POINT(lon lat)`` in CRS84 (or a one-point MULTIPOINT).

    Parameters
    ----------
    text : str, optional

    Returns
    -------
    tuple (lon, lat)

    Raises
    ------
    MissingParameter
        ``coords`` absent.
    portal.subsets.core.SubsetError
        ``coords``: not WKT, not a point, with a height, or outside lon -180..360 / lat -90..90.
    """
    if text is None or not text.strip():
        raise MissingParameter("coords", "a position query needs coords=POINT(lon lat)")
    geom = _wkt(text)
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


def _wkt(text: str):
    try:
        return shapely.from_wkt(text.strip())
    except (shapely.errors.ShapelyError, ValueError, TypeError) as exc:
        raise core.SubsetError("coords", f"not a WKT geometry ({str(exc).splitlines()[0]}): {text[:200]!r}") from None


def parse_bbox(text: str | None) -> tuple[float, float, float, float]:
    """``bbox`` of a cube query: ``minx,miny,maxx,maxy`` in CRS84 (``minx > maxx`` crosses the antimeridian).

    Parameters
    ----------
    text : str, optional

    Returns
    -------
    tuple of 4 float
        Unchecked for ranges (:class:`~portal.subsets.core.SubsetRequest` checks them).

    Raises
    ------
    MissingParameter
        ``bbox`` absent.
    portal.subsets.core.SubsetError
        ``bbox``: not 4 numbers.
    """
    if text is None or not text.strip():
        raise MissingParameter("bbox", "a cube query needs bbox=minx,miny,maxx,maxy")
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise core.SubsetError("bbox", f"expected 4 comma-separated numbers minx,miny,maxx,maxy, got {text!r}") from None
    if len(values) == 6:
        raise core.SubsetError("bbox", "the collection has no vertical axis: give 4 numbers minx,miny,maxx,maxy")
    if len(values) != 4:
        raise core.SubsetError("bbox", f"expected 4 comma-separated numbers minx,miny,maxx,maxy, got {len(values)}")
    return tuple(values)


def parse_query(query_type: str, params: Mapping[str, str], accept: str | None = None) -> EdrQuery:
    """Parse the query parameters of an EDR position, area or cube query.

    Parameters
    ----------
    query_type : str
        ``position`` (``coords=POINT``), ``area`` (``coords=POLYGON`` or ``MULTIPOLYGON``) or
        ``cube`` (``bbox``).
    params : mapping
        Query parameters; besides the above ``datetime``, ``parameter-name`` (comma-separated),
        ``f``, ``crs`` (CRS84 only) and ``z`` (refused: no vertical axis). Others are ignored.
    accept : str, optional
        HTTP Accept header, used when ``f`` is absent.

    Returns
    -------
    EdrQuery

    Raises
    ------
    portal.subsets.core.SubsetError
        Naming the parameter at fault, as EDR or core field names (see :func:`edr_parameter`).
    """
    if query_type not in QUERY_TYPES:
        raise ValueError(f"unknown query type {query_type!r}")
    fmt = parse_format(params.get("f"), accept)
    crs = params.get("crs")
    if crs is not None and crs.strip() and crs.strip() not in _CRS_NAMES:
        raise core.SubsetError("crs", f"{crs!r} is not supported: coordinates are longitude, latitude in {CRS84}")
    if params.get("z") not in (None, ""):
        raise core.SubsetError("z", "the collection has no vertical axis")
    time = parse_datetime(params.get("datetime"))
    variables = tuple(v.strip() for v in (params.get("parameter-name") or "").split(",") if v.strip())
    if query_type == "position":
        lon, lat = parse_point(params.get("coords"))
        request = core.SubsetRequest(variables=variables, time=time, format=fmt)
        return EdrQuery(query_type, request, (lon, lat))
    if query_type == "area":
        coords = params.get("coords")
        if coords is None or not coords.strip():
            raise MissingParameter("coords", "an area query needs coords=POLYGON((lon lat, ...))")
        request = core.SubsetRequest(variables=variables, polygon=_wkt(coords), time=time, format=fmt)
        return EdrQuery(query_type, request)
    request = core.SubsetRequest(variables=variables, bbox=parse_bbox(params.get("bbox")), time=time, format=fmt)
    return EdrQuery(query_type, request)


# --------------------------------------------------------------------------- answers


class TooLarge(subsets.SubsetTooLarge):
    """An EDR query above the direct-answer limit; ``job`` is the equivalent ``POST /api/jobs/`` body
    (None when the request is above the job limit too)."""

    def __init__(self, field: str, message: str, job: dict[str, Any] | None = None):
        super().__init__(field, message)
        self.job = job


def _time_text(value: Any) -> str:
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, pd.Timestamp) else str(value)


def subset_query(f: DatasetFile, query: EdrQuery) -> subsets.Query:
    """The subset service's :class:`~portal.subsets.services.Query` for an EDR query.

    Parameters
    ----------
    f : DatasetFile
        The collection's grid.
    query : EdrQuery

    Returns
    -------
    portal.subsets.services.Query
        Kind ``point`` for a position query, ``subset`` for area and cube queries; its ``params``
        are the equivalent parameters of the dataset API (``/api/datasets/<id>/subset/`` and
        ``point/``, and ``POST /api/jobs/``), kept for the download log and job hints.
    """
    request = query.request
    params: dict[str, str] = {"file": f.name, "f": request.format}
    if request.variables:
        params["variables"] = ",".join(request.variables)
    if request.time is not None:
        params["time"] = "/".join(_time_text(t) for t in request.time)
    lon = lat = None
    if query.query_type == "position":
        lon, lat = query.point
        params.update(lon=repr(lon), lat=repr(lat))
    elif request.geometry is not None:
        params["polygon"] = request.geometry.wkt
    elif request.bbox is not None:
        params["bbox"] = ",".join(repr(v) for v in request.bbox)
    return subsets.Query("point" if query.query_type == "position" else "subset", request, params, lon, lat)


def answer(f: DatasetFile, query: EdrQuery) -> tuple[subsets.Query, subsets.SubsetResult]:
    """Answer an EDR query on the grid ``f`` directly, written to a temporary file.

    Area and cube queries are subsets (CoverageJSON ``Grid``; cells of an area's bounding box
    whose centres fall outside the polygon are null); a position query is the time series of the
    nearest cell (CoverageJSON ``PointSeries``). Sizes are judged by
    :func:`portal.subsets.services.plan`; EDR answers only what the service answers directly.

    Parameters
    ----------
    f : DatasetFile
        The collection's grid.
    query : EdrQuery

    Returns
    -------
    service_query : portal.subsets.services.Query
        What was answered (for :func:`portal.subsets.services.log_download`).
    result : portal.subsets.services.SubsetResult
        A temporary file the caller streams and deletes.

    Raises
    ------
    TooLarge
        Above the direct-answer limit: the message says what to do instead, ``job`` is the
        equivalent job request when one would be accepted.
    portal.subsets.core.SubsetError
        Empty or outside the collection's extent, unknown parameter names (core field names, see
        :func:`edr_parameter`).
    """
    service_query = subset_query(f, query)
    plan = subsets.plan(f, service_query)
    if plan.mode != "direct":
        field = "datetime" if query.query_type == "position" else ("coords" if query.query_type == "area" else "bbox")
        size = f"about {plan.read_bytes / 2**20:.3g} MiB to read"
        limit = f"the {settings.SUBSET_SYNC_MAX_BYTES / 2**20:.3g} MiB an EDR query is answered with directly"
        if plan.mode == "job":
            job = {"dataset": f.version.dataset_id, "kind": service_query.kind, "params": dict(service_query.params)}
            raise TooLarge(field, f"{size}, above {limit}: ask for a smaller area or period or fewer parameters, "
                                  f"or submit it as an asynchronous job: POST /api/jobs/ with {json.dumps(job)}", job)
        raise TooLarge(field, f"{size}, above {limit} and above the size of an asynchronous job (/api/jobs/): "
                              f"{plan.detail}")
    return service_query, subsets.answer_directly(f, service_query, plan.layout)
