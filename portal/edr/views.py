"""OGC API - Environmental Data Retrieval (EDR 1.1) endpoints under ``/api/edr/``.

Thin DRF views over :mod:`portal.edr.services` (see its docstring for why EDR is implemented here
rather than with pygeoapi or xpublish-edr). Errors are OGC API exception documents
``{"code": ..., "description": ...}`` (plus ``parameter`` for a query parameter at fault): 400 for
a malformed, empty or out-of-extent query, 401 (no user) or 403 (what the user lacks) where the
access policy (:mod:`portal.catalog.access`) refuses, 404 for an unknown collection, 413 above the
direct-answer limit, 429 (with ``Retry-After``) when the day's byte quota is used up.
"""

from __future__ import annotations

from django.urls import NoReverseMatch, get_script_prefix, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import limits
from portal.catalog import access
from portal.catalog.access import AccessDenied
from portal.files import stream_temporary
from portal.subsets import core
from portal.subsets import params as params_module
from portal.subsets import services as subsets
from portal.subsets.params import CRS84_URI, MissingParameter

from . import services

JSON = "application/json"
_CODES = {
    400: "InvalidParameterValue",
    401: "NotAuthenticated",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "PayloadTooLarge",
    429: "TooManyRequests",
}


def _error(status_code: int, description: str, code: str | None = None, parameter: str | None = None) -> Response:
    body = {"code": code or _CODES.get(status_code, "Error"), "description": description}
    if parameter:
        body["parameter"] = parameter
    return Response(body, status=status_code)


_NO_NUL = "^[^\\u0000]*$"  # NUL bytes are refused at the edge (portal.edge): a 400


def _param(
    name: str, description: str, required: bool = False, *, enum=None, pattern: str | None = None
) -> OpenApiParameter:
    return OpenApiParameter(
        name,
        OpenApiTypes.STR,
        OpenApiParameter.QUERY,
        required=required,
        description=description,
        enum=enum,
        pattern=None if enum else (pattern or _NO_NUL),
    )


_NUMBER = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"  # ASCII digits only
_PAIR = rf"{_NUMBER} +{_NUMBER}"
_RING = rf"\( *{_PAIR}(?: *, *{_PAIR}){{2,}} *\)"
_F_JSON = _param(
    "f", "json (the only encoding of metadata documents; empty or absent: json)", enum=["", "json", "JSON", JSON]
)
_QUERY_PARAMS = [
    _param("datetime", "an instant or an interval a/b, ../b, a/.. (RFC 3339; a date covers its day)"),
    _param("parameter-name", "comma-separated parameter names (default: all)"),
    _param(
        "f",
        "CoverageJSON (default), NetCDF or CSV; without f, the Accept header chooses",
        enum=[*params_module.EDR_FORMATS, *params_module._EDR_FORMAT_ALIASES],
    ),
    _param("crs", "OGC:CRS84 (the only one)", enum=sorted(params_module._CRS_NAMES)),
]
_COORDS = {
    "position": _param(
        "coords",
        "POINT(lon lat) in CRS84: the nearest cell's time series",
        True,
        pattern=rf"^ *POINT *\( *{_PAIR} *\) *$",
    ),
    "area": _param(
        "coords",
        "POLYGON or MULTIPOLYGON in CRS84 (WKT): cells whose centres fall inside",
        True,
        pattern=rf"^ *(?:POLYGON *\( *{_RING}(?: *, *{_RING})* *\)|MULTIPOLYGON *\(.+\)) *$",
    ),
    "cube": _param(
        "bbox",
        "minx,miny,maxx,maxy in CRS84; minx > maxx crosses the antimeridian",
        True,
        pattern=rf"^ *{_NUMBER} *(?:, *{_NUMBER} *){{3}}$",
    ),
}
_PROBLEM = "{code, description, parameter}: "
_ERRORS = {
    (400, JSON): OpenApiResponse(
        OpenApiTypes.OBJECT, description=_PROBLEM + "the bad parameter (NUL bytes and non-ASCII digits included)"
    ),
    (401, JSON): OpenApiResponse(OpenApiTypes.OBJECT, description=_PROBLEM + "login-access dataset, no login or token"),
    (403, JSON): OpenApiResponse(
        OpenApiTypes.OBJECT,
        description=_PROBLEM + "what the user lacks (verification, an approved application, a licence)",
    ),
    (404, JSON): OpenApiResponse(OpenApiTypes.OBJECT, description=_PROBLEM + "no such collection"),
    (429, JSON): OpenApiResponse(
        OpenApiTypes.OBJECT, description=_PROBLEM + "over the rate limit or the day's quota (Retry-After)"
    ),
    (400, "text/html"): OpenApiResponse(
        OpenApiTypes.STR,
        description="the web server's own answer to a request "
        "line over its limit (gunicorn: 4094 bytes by default, 8190 with "
        "portal/gunicorn.conf.py): send long polygons to the job API instead",
    ),
}
_DATA = {
    (200, "application/prs.coverage+json"): OpenApiResponse(OpenApiTypes.OBJECT, description="CoverageJSON"),
    (200, "application/x-netcdf"): OpenApiResponse(OpenApiTypes.BINARY, description="CF NetCDF"),
    (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV"),
    **_ERRORS,
    (413, JSON): OpenApiResponse(
        OpenApiTypes.OBJECT, description="too large for a direct answer: what to do, and the equivalent job request"
    ),
}


def _metadata_schema(operation_id: str):
    return extend_schema(
        operation_id=operation_id,
        tags=["edr"],
        parameters=[_F_JSON],
        responses={(200, JSON): OpenApiTypes.OBJECT, **_ERRORS},
    )


class _AnyAccept(BaseContentNegotiation):
    """JSON documents whatever the Accept header: data formats are chosen by ``f`` / Accept in the views."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class _EdrView(APIView):
    permission_classes = [AllowAny]  # read-only; login-access datasets are checked by the queries
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _AnyAccept

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        data = response.data
        detail = data.get("detail", data) if isinstance(data, dict) else data
        response.data = {"code": _CODES.get(response.status_code, "Error"), "description": str(detail)}
        return response

    def check_json(self, request):
        f = request.query_params.get("f")
        if f not in (None, "", "json", "JSON", JSON):
            return _error(400, f"f: {f!r} is not available here: metadata documents are JSON (f=json)", parameter="f")
        return None

    def url(self, name: str, *args) -> str:
        return self.request.build_absolute_uri(reverse(f"edr:{name}", args=args))

    def link(self, name: str, rel: str, title: str, *args, media_type: str = JSON) -> dict:
        return {"href": self.url(name, *args), "rel": rel, "type": media_type, "title": title}

    def collection(self, collection_id: str):
        found = services.get_collection(collection_id)
        if found is None:
            raise NotFound(f"collectionId: no collection {collection_id!r}; see {self.url('collections')}")
        return found

    def collection_doc(self, collection: services.Collection) -> dict:
        links = [
            self.link("collection", "self", "This collection", collection.id),
            {
                "href": self.request.build_absolute_uri(reverse("api:dataset-detail", args=[collection.dataset.id])),
                "rel": "describedby",
                "type": JSON,
                "title": "The dataset record",
            },
            *(self.link("collection", rel, title, other) for rel, other, title in services.version_links(collection)),
        ]
        return services.collection_document(collection, self.url("collection", collection.id), links)


class LandingPage(_EdrView):
    """``GET /api/edr/``: the EDR landing page."""

    @_metadata_schema("edr_landing_page")
    def get(self, request):
        if (error := self.check_json(request)) is not None:
            return error
        try:
            schema = request.build_absolute_uri(reverse("api:schema"))
        except NoReverseMatch:  # the OpenAPI document is not mounted (yet): its planned place
            schema = request.build_absolute_uri(f"{get_script_prefix()}api/schema/")
        return Response(
            {
                "title": "Land-surface hydrology grids: OGC API - Environmental Data Retrieval",
                "description": "Position, area and cube queries on the published gridded products, answered "
                "in CoverageJSON, NetCDF or CSV.",
                "links": [
                    self.link("landing", "self", "This document"),
                    {
                        "href": schema,
                        "rel": "service-desc",
                        "type": "application/vnd.oai.openapi+json;version=3.0",
                        "title": "The API definition (OpenAPI 3.0)",
                    },
                    self.link("conformance", "conformance", "Conformance classes"),
                    self.link(
                        "conformance", "http://www.opengis.net/def/rel/ogc/1.0/conformance", "Conformance classes"
                    ),
                    self.link("collections", "data", "Collections"),
                    self.link("collections", "http://www.opengis.net/def/rel/ogc/1.0/data", "Collections"),
                ],
            }
        )


class Conformance(_EdrView):
    """``GET /api/edr/conformance``: the conformance classes."""

    @_metadata_schema("edr_conformance")
    def get(self, request):
        if (error := self.check_json(request)) is not None:
            return error
        return Response({"conformsTo": list(services.CONFORMANCE)})


class Collections(_EdrView):
    """``GET /api/edr/collections``: one collection per published gridded product."""

    @_metadata_schema("edr_collections")
    def get(self, request):
        if (error := self.check_json(request)) is not None:
            return error
        return Response(
            {
                "links": [
                    self.link("collections", "self", "This document"),
                    self.link("landing", "root", "The landing page"),
                ],
                "collections": [self.collection_doc(c) for c in services.collections()],
            }
        )


class Collection(_EdrView):
    """``GET /api/edr/collections/{collectionId}``: a collection's metadata."""

    @_metadata_schema("edr_collection")
    def get(self, request, collection_id):
        if (error := self.check_json(request)) is not None:
            return error
        return Response(self.collection_doc(self.collection(collection_id)))


class Query(_EdrView):
    """A data query (``position``, ``area`` or ``cube``: the subclasses)."""

    query_type = ""

    def get(self, request, collection_id):
        _, dataset, f, info, version = self.collection(collection_id)
        params = {k: request.query_params.get(k) for k in request.query_params}
        try:
            answer = subsets.handle(
                dataset,
                self.query_type,
                params,
                user=request.user,
                file=f.name,
                version=version,
                client=request.META.get("REMOTE_ADDR"),
                front_door="edr",
                accept=request.headers.get("Accept"),
                jobs=False,
            )
        except AccessDenied as exc:
            response = _error(exc.status, str(exc))
            for name, value in (access.challenge(exc.status) or {}).items():
                response[name] = value
            return response
        except limits.QuotaExceeded as exc:
            response = _error(429, str(exc))
            response.data.update({k: v for k, v in exc.as_dict().items() if k != "detail"})
            response["Retry-After"] = str(exc.retry_after)
            return response
        except subsets.SubsetTooLarge as exc:
            response = _error(413, exc.message, parameter=exc.field)
            if exc.job is not None:
                response.data["job"] = exc.job
            return response
        except core.SubsetError as exc:
            code = "MissingParameterValue" if isinstance(exc, MissingParameter) else None
            hint = (
                f" (the collection's time steps: {', '.join(info.time_values[:5])})" if exc.field == "datetime" else ""
            )
            return _error(400, f"{exc}{hint}", code=code, parameter=exc.field)
        result = answer.result
        response = stream_temporary(
            result.path,
            filename=result.filename,
            content_type=result.media_type,
            as_attachment=answer.query.request.format != "coveragejson",
        )
        response["Content-Crs"] = f"<{CRS84_URI}>"
        return response


def _query_schema(query_type: str):
    return extend_schema(
        operation_id=f"edr_{query_type}",
        tags=["edr"],
        parameters=[_COORDS[query_type], *_QUERY_PARAMS],
        responses=_DATA,
    )


class Position(Query):
    """``GET /api/edr/collections/{collectionId}/position?coords=POINT(lon lat)``: the nearest cell's time series."""

    query_type = "position"

    @_query_schema("position")
    def get(self, request, collection_id):
        return super().get(request, collection_id)


class Area(Query):
    """``GET /api/edr/collections/{collectionId}/area?coords=POLYGON((...))``: the cells whose centres fall inside."""

    query_type = "area"

    @_query_schema("area")
    def get(self, request, collection_id):
        return super().get(request, collection_id)


class Cube(Query):
    """``GET /api/edr/collections/{collectionId}/cube?bbox=minx,miny,maxx,maxy``: the cells whose centres fall inside."""

    query_type = "cube"

    @_query_schema("cube")
    def get(self, request, collection_id):
        return super().get(request, collection_id)
