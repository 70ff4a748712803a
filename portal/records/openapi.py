"""The OpenAPI 3.0 definition of ``/api/records/`` (the landing page's ``service-desc``).

Written here rather than generated with the site's ``/api/schema/``: it describes the OGC API -
Records paths relative to their own root (``servers``), with the parameters as
:mod:`portal.records.services` reads them.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from portal.catalog import search

from . import services

HTML = "text/html"

_NO_NUL = "^[^\\u0000]*$"
_NUMBER = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"


def _param(name: str, description: str, schema: dict[str, Any], *, where: str = "query", **more) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema,
        **more,
    }


def _string(**more) -> dict[str, Any]:
    return {"type": "string", "pattern": _NO_NUL, **more}


_F = _param(
    "f",
    "The encoding: json (the only one; empty or absent: json; any case)",
    {"type": "string", "enum": ["", "json", "JSON", "geojson", services.JSON, services.GEOJSON]},
)
_CATALOG = _param(
    "catalogId", "The catalogue: datasets (the only one)", {"type": "string", "enum": ["datasets"]}, where="path"
)
_RECORD = _param(
    "recordId", "A record id (a dataset id)", {"type": "string", "pattern": "^[^/\\u0000]+$"}, where="path"
)
_EXCEPTION = {
    "type": "object",
    "required": ["code", "description"],
    "properties": {"code": {"type": "string"}, "description": {"type": "string"}, "parameter": {"type": "string"}},
}
_LINK = {
    "type": "object",
    "required": ["href", "rel"],
    "properties": {
        "href": {"type": "string"},
        "rel": {"type": "string"},
        "type": {"type": "string"},
        "title": {"type": "string"},
    },
}
_RECORD_SCHEMA = {
    "type": "object",
    "required": ["id", "type", "geometry", "properties", "links"],
    "properties": {
        "id": {"type": "string"},
        "type": {"type": "string", "enum": ["Feature"]},
        "conformsTo": {"type": "array", "items": {"type": "string"}},
        "geometry": {"type": "object", "nullable": True},
        "time": {"type": "object", "nullable": True},
        "properties": {
            "type": "object",
            "required": ["type", "title"],
            "properties": {"type": {"type": "string"}, "title": {"type": "string"}},
        },
        "links": {"type": "array", "items": _LINK},
    },
}


def _json(description: str, schema: dict[str, Any] | None = None, media_type: str = services.JSON) -> dict[str, Any]:
    return {"description": description, "content": {media_type: {"schema": schema or {"type": "object"}}}}


_EDGE = {
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string"},
        "field": {"type": "string"},
        "limit": {"type": "integer"},
        "retry_after": {"type": "integer"},
    },
}
"""What the site's edge answers before a view runs (portal.edge): a NUL byte in the query (400), over the
request rate (429, with Retry-After)."""


def _errors(*statuses: int) -> dict[str, Any]:
    what = {
        400: "A parameter that cannot be read: {code, description, parameter}; a NUL byte in the query: "
        "{detail, field} (the site's edge)",
        404: "No such catalogue or record: {code, description}",
    }
    out = {str(s): _json(what[s], {"anyOf": [_EXCEPTION, _EDGE]} if s == 400 else _EXCEPTION) for s in statuses}
    if 400 in statuses:  # gunicorn answers a request line over 8190 bytes itself (portal/gunicorn.conf.py)
        out["400"]["description"] += "; a request line over the web server's limit: its own text/html page"
        out["400"]["content"][HTML] = {"schema": {"type": "string"}}
    out["429"] = _json("Over the request rate: {detail, limit, retry_after}, with Retry-After", _EDGE)
    return out


def _get(operation_id: str, summary: str, parameters: list, ok: dict[str, Any], *errors: int) -> dict[str, Any]:
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "tags": ["records"],
            "parameters": parameters,
            "responses": {"200": ok, **_errors(400, *errors)},
        }
    }


def document(absolute: services.AbsoluteUrl) -> dict[str, Any]:
    """The OpenAPI 3.0 document, its server the absolute URL of ``/api/records``."""
    root = services._url(absolute, "landing").rstrip("/")
    facets = [
        _param(
            name,
            f"{services._QUERYABLES[name][1]}; repeat the parameter for alternatives (each value cut at "
            "300 characters)",
            {"type": "array", "items": _string()},
            style="form",
            explode=True,
        )
        for name in search.FACETS
    ]
    items_params = [
        _param(
            "q",
            "Words, separated by spaces or commas; a record matches when it holds every word (English or "
            f"Chinese; abbreviations and misspellings are understood); cut at {search.MAX_QUERY} characters",
            _string(),
        ),
        _param(
            "bbox",
            "min_lon,min_lat,max_lon,max_lat in CRS84 degrees (longitudes in [-180, 180], latitudes in "
            "[-90, 90], min_lat <= max_lat); min_lon > max_lon crosses the antimeridian; 6 numbers: "
            "the heights are ignored",
            {
                "type": "string",  # empty: no box (an empty value counts as absent)
                "pattern": rf"^(?: *{_NUMBER} *(?:, *{_NUMBER} *){{3}}(?:(?:, *{_NUMBER} *){{2}})?)?$",
            },
        ),
        _param(
            "datetime",
            "An RFC 3339 instant or interval (start/end, ../end, start/..; a date covers its day): "
            "records whose period overlaps it",
            _string(),
        ),
        _param(
            "limit",
            "Records per page",
            {"type": "integer", "minimum": 1, "maximum": settings.API_MAX_PAGE_SIZE, "default": services.DEFAULT_LIMIT},
        ),
        _param(
            "offset",
            "Records to skip (the next link carries it)",
            {"type": "integer", "minimum": 0, "maximum": settings.API_MAX_OFFSET, "default": 0},
        ),
        _param(
            "sortby",
            "title, updated (oldest first) or -updated (newest first); default: relevance with words, "
            "newest first without",
            {"type": "string", "enum": list(services.SORTS)},
        ),
        _param(
            "type",
            "Record types: dataset (the only one)",
            {"type": "array", "items": _string()},
            style="form",
            explode=False,
        ),
        _param(
            "ids",
            f"Record ids (at most {services.MAX_IDS}); not with q, bbox, datetime or the queryables",
            {"type": "array", "maxItems": services.MAX_IDS, "items": _string()},
            style="form",
            explode=False,
        ),
        _param(
            "externalIds",
            f"DOIs or CSTRs (doi:..., cstr:..., or bare; at most {services.MAX_IDS}); not with "
            "q, bbox, datetime or the queryables",
            {"type": "array", "maxItems": services.MAX_IDS, "items": _string()},
            style="form",
            explode=False,
        ),
        *facets,
        _F,
    ]
    collection_ok = _json("The catalogue (itemType record)")
    return {
        "openapi": "3.0.3",
        "info": {
            "title": f"{services.PORTAL_NAME}: OGC API - Records",
            "version": "1.0",
            "description": "The portal's dataset records (OGC API - Records - Part 1: Core, 1.0 draft) over the "
            "catalogue search. Metadata only: the records link to the data services.",
        },
        "servers": [{"url": root}],
        "paths": {
            "/": _get("records_landing", "The landing page", [_F], _json("Links to the API's resources")),
            "/conformance": _get("records_conformance", "Conformance classes", [_F], _json("conformsTo")),
            "/collections": _get("records_collections", "The catalogues", [_F], _json("The one catalogue")),
            "/collections/{catalogId}": _get("records_catalogue", "A catalogue", [_CATALOG, _F], collection_ok, 404),
            "/collections/{catalogId}/items": _get(
                "records_items",
                "Search the records",
                [_CATALOG, *items_params],
                _json(
                    "A page of records",
                    {
                        "type": "object",
                        "required": ["type", "features", "links"],
                        "properties": {
                            "type": {"type": "string", "enum": ["FeatureCollection"]},
                            "features": {"type": "array", "items": _RECORD_SCHEMA},
                            "numberMatched": {"type": "integer", "minimum": 0},
                            "numberReturned": {"type": "integer", "minimum": 0},
                            "timeStamp": {"type": "string"},
                            "links": {"type": "array", "items": _LINK},
                        },
                    },
                    services.GEOJSON,
                ),
                404,
            ),
            "/collections/{catalogId}/items/{recordId}": _get(
                "records_record",
                "A record",
                [_CATALOG, _RECORD, _F],
                _json("The record", _RECORD_SCHEMA, services.GEOJSON),
                404,
            ),
            "/collections/{catalogId}/queryables": _get(
                "records_queryables",
                "The queryables (JSON Schema)",
                [_CATALOG, _F],
                _json("The queryables", media_type=services.SCHEMA_JSON),
                404,
            ),
            "/collections/{catalogId}/sortables": _get(
                "records_sortables",
                "The sortables (JSON Schema)",
                [_CATALOG, _F],
                _json("The sortables", media_type=services.SCHEMA_JSON),
                404,
            ),
            "/openapi": _get(
                "records_openapi", "This document", [_F], _json("OpenAPI 3.0", media_type=services.OPENAPI)
            ),
        },
    }
