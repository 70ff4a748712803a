"""OGC API - Records endpoints under ``/api/records/``: thin views over :mod:`portal.records.services`.

Each view checks its query parameters (only ``f`` outside the items), makes one service call and
answers JSON: ``application/geo+json`` for records and pages of records, ``application/schema+json``
for queryables and sortables, the OpenAPI media type for the definition, ``application/json``
otherwise. Errors are OGC API exception documents ``{"code", "description"}`` (plus ``parameter``
for a query parameter at fault): 400, 404, and 405 for a method other than GET or HEAD. Metadata is
public: no access check (the records describe; the data services they link to check access).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from . import openapi, services


def _json(body: dict, media_type: str = services.JSON, status: int = 200) -> HttpResponse:
    return HttpResponse(json.dumps(body, ensure_ascii=False), status=status, content_type=media_type)


def records_view(media_type: str = services.JSON, parameters: tuple[str, ...] = ("f",)) -> Callable:
    """A GET/HEAD view answering ``media_type``: unknown parameters and an ``f`` other than JSON are a 400
    (``parameters``: those the view reads; None: the service checks them), :class:`RecordsError` its status."""

    def decorate(view: Callable) -> Callable:
        @csrf_exempt  # reads only: any other method is a 405 in JSON, not the CSRF check's 403 page
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method not in ("GET", "HEAD"):
                response = _json(
                    {
                        "code": "MethodNotAllowed",
                        "description": f"{request.method[:20]} is not allowed here: GET or HEAD",
                    },
                    status=405,
                )
                response["Allow"] = "GET, HEAD"
                return response
            try:
                if parameters is not None:
                    services.check_parameters(dict(request.GET.lists()), parameters)
                body = view(request, request.build_absolute_uri, *args, **kwargs)
            except services.RecordsError as exc:
                return _json(exc.as_dict(), status=exc.status)
            return _json(body, media_type)

        return wrapper

    return decorate


@records_view()
def landing(request, absolute):
    """``GET /api/records/``: the landing page."""
    return services.landing(absolute)


@records_view()
def conformance(request, absolute):
    """``GET /api/records/conformance``: the conformance classes."""
    return {"conformsTo": list(services.CONFORMANCE)}


@records_view()
def collections(request, absolute):
    """``GET /api/records/collections``: the one catalogue."""
    return services.collections(absolute)


@records_view()
def collection(request, absolute, collection_id):
    """``GET /api/records/collections/{catalogId}``: the catalogue."""
    services.check_collection(collection_id, absolute)
    return services.catalogue(absolute)


@records_view(services.GEOJSON, parameters=None)
def items(request, absolute, collection_id):
    """``GET /api/records/collections/{catalogId}/items``: search the records."""
    return services.items(collection_id, dict(request.GET.lists()), absolute)


@records_view(services.GEOJSON)
def item(request, absolute, collection_id, record_id):
    """``GET /api/records/collections/{catalogId}/items/{recordId}``: one record."""
    return services.get_record(collection_id, record_id, absolute)


@records_view(services.SCHEMA_JSON)
def queryables(request, absolute, collection_id):
    """``GET /api/records/collections/{catalogId}/queryables``: the queryables (JSON Schema)."""
    return services.queryables(collection_id, absolute)


@records_view(services.SCHEMA_JSON)
def sortables(request, absolute, collection_id):
    """``GET /api/records/collections/{catalogId}/sortables``: the sortables (JSON Schema)."""
    return services.sortables(collection_id, absolute)


@records_view(services.OPENAPI)
def definition(request, absolute):
    """``GET /api/records/openapi``: the OpenAPI 3.0 definition."""
    return openapi.document(absolute)
