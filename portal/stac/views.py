"""STAC API endpoints under ``/api/stac/``: thin views over :mod:`portal.stac.services`.

Each view translates its request into one service call (and, for a Zarr store file, one access
check). Answers are JSON (``application/json``; Items and ItemCollections ``application/geo+json``).
Errors follow the STAC API: ``{"code": ..., "description": ...}`` with 400 for a bad parameter
(named in the description), 401/403 where the access policy refuses a store file, 404 for an
unknown collection, item or store key, 405 for another method, 429 over the day's byte quota.
Metadata is public; the data behind the asset links keeps the dataset's access policy.
"""

from __future__ import annotations

import functools
import json
from pathlib import PurePosixPath

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from portal import limits
from portal.catalog import access
from portal.files import media_type_for
from portal.subsets.services import send_published

from . import params, services

JSON = services.JSON
GEOJSON = services.GEOJSON
_CODES = {
    400: "InvalidParameterValue",
    401: "NotAuthenticated",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    429: "TooManyRequests",
}


def _json(data, status: int = 200, content_type: str = JSON, headers: dict | None = None) -> JsonResponse:
    return JsonResponse(
        data,
        status=status,
        content_type=content_type,
        headers=headers,
        safe=False,
        json_dumps_params={"ensure_ascii": False},
    )


def _error(status: int, description: str, headers: dict | None = None) -> JsonResponse:
    return _json({"code": _CODES.get(status, "Error"), "description": description}, status, headers=headers)


def _methods(*allowed: str):
    """Answer other methods with a JSON 405 (and ``Allow``); HEAD goes with GET."""
    allowed = (*allowed, "HEAD") if "GET" in allowed else allowed

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if request.method not in allowed:
                return _error(
                    405,
                    f"{request.method} is not allowed here: use {', '.join(allowed)}",
                    headers={"Allow": ", ".join(allowed)},
                )
            try:
                return view(request, *args, **kwargs)
            except params.BadParameter as exc:
                return _error(400, str(exc))
            except services.NotFound as exc:
                return _error(404, str(exc))

        # Every view only reads (other methods are a 405 above, not CSRF's 403); a POST search changes nothing.
        return csrf_exempt(wrapper)

    return decorate


def _urls(request: HttpRequest) -> services.Urls:
    return services.Urls(request.build_absolute_uri)


@_methods("GET")
def landing(request):
    """``GET /api/stac/``: the landing page (a Catalog with ``conformsTo`` and links)."""
    return _json(services.landing_page(_urls(request)))


@_methods("GET")
def conformance(request):
    """``GET /api/stac/conformance``: the conformance classes."""
    return _json({"conformsTo": list(services.CONFORMANCE)})


@_methods("GET")
def collections(request):
    """``GET /api/stac/collections``: every dataset as a Collection."""
    urls = _urls(request)
    return _json(
        {
            "collections": services.collections(urls),
            "links": [
                {"rel": "self", "href": urls.stac("collections"), "type": JSON},
                {"rel": "root", "href": urls.stac("landing"), "type": JSON},
                {"rel": "parent", "href": urls.stac("landing"), "type": JSON},
            ],
        }
    )


@_methods("GET")
def collection(request, collection_id: str):
    """``GET /api/stac/collections/{collectionId}``: one Collection."""
    return _json(services.collection_dict(services.get_dataset(collection_id), _urls(request)))


@_methods("GET")
def items(request, collection_id: str):
    """``GET /api/stac/collections/{collectionId}/items``: the collection's Items, a page at a time
    (the parameters of ``/search``; ``collections``, which clients repeat here, narrows nothing more)."""
    search, datetime_text = params.parse_search(dict(request.GET.items()))
    return _json(
        services.search(
            search, _urls(request), collection_id=collection_id, datetime_text=datetime_text, endpoint="items"
        ),
        content_type=GEOJSON,
    )


@_methods("GET")
def item(request, collection_id: str, item_id: str):
    """``GET /api/stac/collections/{collectionId}/items/{itemId}``: one Item."""
    return _json(services.get_item(collection_id, item_id, _urls(request)), content_type=GEOJSON)


@_methods("GET", "POST")
def search(request):
    """``GET|POST /api/stac/search``: Item Search (``bbox``, ``datetime``, ``intersects``,
    ``collections``, ``ids``, ``limit``, ``token``; a POST takes them as a JSON object)."""
    if request.method == "POST":
        try:
            body = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise params.BadParameter("body", "expected a JSON object of search parameters") from None
        if not isinstance(body, dict):
            raise params.BadParameter("body", "expected a JSON object of search parameters")
        query = body
    else:
        query = dict(request.GET.items())
    found, datetime_text = params.parse_search(query)
    return _json(
        services.search(found, _urls(request), datetime_text=datetime_text, method=request.method), content_type=GEOJSON
    )


@_methods("GET")
def store(request, dataset_id: str, number: str, name: str, layout: str, key: str):
    """``GET /api/stac/stores/{datasetId}/v{number}/{file}/{layout}.zarr/{key}``: a file of a grid's
    read-only Zarr store (the href of a Zarr asset), under the dataset's access policy and the day's
    byte quota; each GET answered 200/206 is logged (kind ``zarr``)."""
    f, relative = services.store_file(dataset_id, int(number), name, layout, key)
    path = PurePosixPath(relative)
    decision = access.decide(request.user, f.version.dataset)
    if not decision.allowed:
        return _error(decision.status, decision.message, headers=access.challenge(decision.status))
    content_type = JSON if path.name in (".zmetadata", ".zattrs", ".zarray", ".zgroup") else media_type_for(path.name)
    try:
        return send_published(
            request,
            f,
            relative,
            kind="zarr",
            content_type=content_type,
            filename=path.name,
            params={"layout": layout, "key": key[:200]},
            format="zarr",
        )
    except limits.QuotaExceeded as exc:
        return _json(
            {"code": _CODES[429], "description": str(exc), **exc.as_dict()},
            429,
            headers={"Retry-After": str(exc.retry_after)},
        )
