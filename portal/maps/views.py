"""The map previews' HTTP face: thin views over :mod:`portal.maps.services` and :mod:`portal.maps.wms`.

Each view makes one access check (:func:`portal.catalog.access.decide`, as every front door does) and
one service call. Bad parameters are 400 with ``{"field", "detail"}`` naming the parameter; WMS answers
its own exception reports. PNGs of datasets anyone may download are cached publicly (the versions are
immutable), others privately.
"""

from __future__ import annotations

from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_safe

from portal.catalog import access
from portal.catalog.models import Dataset, DatasetVersion

from . import services, wms

_DAY = 86400


def _cache_control(response: HttpResponse, dataset: Dataset) -> HttpResponse:
    response["Cache-Control"] = (
        f"public, max-age={_DAY}" if access.public_anonymously(dataset) else f"private, max-age={_DAY}"
    )
    return response


def _problem(exc: services.MapError) -> JsonResponse:
    return JsonResponse({"field": exc.field, "detail": str(exc)}, status=exc.status)


def _allowed(request, dataset: Dataset):
    decision = access.decide(request.user, dataset)
    return None if decision.allowed else access.denied_json(decision)


@require_safe
def map_png(request, dataset_id: str):
    """One time step of a variable as PNG: ``variable``, ``time`` (ISO date or instant; default the last),
    ``bbox`` (min_lon,min_lat,max_lon,max_lat; default the grid's extent), ``width``, ``height`` (pixels,
    default 720 x 360), ``version`` (default the latest), ``file`` (the NetCDF, when several)."""
    dataset = get_object_or_404(Dataset, id=dataset_id)
    if denied := _allowed(request, dataset):
        return denied
    try:
        data = services.map_png(dataset, request.GET)
    except services.MapError as exc:
        return _problem(exc)
    return _cache_control(HttpResponse(data, content_type="image/png"), dataset)


@require_safe
def legend(request, dataset_id: str, fmt: str):
    """The legend of a variable (``variable``, ``version``, ``file`` as for the map) as JSON or PNG, with units."""
    dataset = get_object_or_404(Dataset, id=dataset_id)
    if denied := _allowed(request, dataset):
        return denied
    q = request.GET
    try:
        layer = services.find_layer(dataset, q.get("variable"), q.get("version"), q.get("file"))
    except services.MapError as exc:
        return _problem(exc)
    if fmt == "json":
        return _cache_control(JsonResponse(services.legend(layer)), dataset)
    return _cache_control(HttpResponse(services.legend_png(layer), content_type="image/png"), dataset)


@require_safe
def quicklook(request, dataset_id: str, number: int):
    """The quicklook PNG of a published grid version (its first variable, last time step); 404 without a grid."""
    version = get_object_or_404(DatasetVersion, dataset_id=dataset_id, number=number)
    if denied := _allowed(request, version.dataset):
        return denied
    data = services.quicklook(version, request.GET.get("file") or None)
    if data is None:
        return JsonResponse(
            {"field": "file", "detail": f"version {number} of {dataset_id} holds no such grid"}, status=404
        )
    return _cache_control(HttpResponse(data, content_type="image/png"), version.dataset)


@require_safe
def wms_endpoint(request):
    """OGC WMS 1.3.0 (see :mod:`portal.maps.wms`)."""
    status, media_type, body = wms.respond(request.GET, request.user, request.build_absolute_uri(request.path))
    return HttpResponse(body, content_type=media_type, status=status, headers=access.challenge(status))
