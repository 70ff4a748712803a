"""Public pages: dataset list with bilingual search, dataset detail, chart series, file download."""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from portal import limits
from portal.files import media_type_for
from portal.subsets.services import send_published

from . import access, queries, search
from .models import Dataset, DatasetFile
from .subset_form import subset_form_context

PAGE_SIZE = 20


@require_safe
def dataset_list(request):
    """The catalogue search page: one :func:`portal.catalog.search.search`; a bad parameter is a 400 page naming it."""
    try:
        params = search.parse(dict(request.GET.lists()), also=("page",))
        number = search.page_number(request.GET.get("page"))
    except search.SearchError as exc:
        return render(request, "catalog/dataset_list.html", {"error": exc, "params": search.SearchParams()}, status=400)
    result = search.search(params, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    return render(
        request,
        "catalog/dataset_list.html",
        {
            "result": result,
            "params": params,
            "facets": search.facet_links(result.facets, params),
            "page": number,
            "pages": max(1, -(-result.total // PAGE_SIZE)),
            "previous": params.query_string(page=str(number - 1)) if number > 1 else None,
            "next": params.query_string(page=str(number + 1)) if number * PAGE_SIZE < result.total else None,
            "sorts": search.sort_choices(),
            "bbox_text": ",".join(f"{v:g}" for v in params.bbox) if params.bbox else "",
            "time_text": request.GET.get("time", ""),
            "without_bbox": params.query_string(bbox=""),
        },
    )


@require_safe
def dataset_detail(request, dataset_id: str):
    try:
        page = queries.dataset_page(dataset_id)
    except Dataset.DoesNotExist:
        raise Http404("no such dataset") from None
    return render(
        request,
        "catalog/dataset_detail.html",
        {"page": page, "dataset": page.dataset, "subset_form": subset_form_context(page.dataset)},
    )


def _wants_html(request) -> bool:
    """A browser following a link (it asks for HTML and sends no credentials); scripts get a 401 instead."""
    return "HTTP_AUTHORIZATION" not in request.META and "text/html" in request.headers.get("Accept", "")


def _quota(exc: limits.QuotaExceeded) -> JsonResponse:
    return JsonResponse(exc.as_dict(), status=429, headers={"Retry-After": str(exc.retry_after)})


@require_safe
def series(request, dataset_id: str):
    """A site's observed and generated series (the chart's data); the dataset's access policy applies."""
    dataset = Dataset.objects.filter(id=dataset_id).first()
    if dataset is None:
        return JsonResponse({"error": f"no dataset {dataset_id!r}"}, status=404)
    version = dataset.latest_version()
    if version is None:
        return JsonResponse({"error": "this dataset has no published version yet"}, status=404)
    decision = access.decide(request.user, dataset)
    if not decision.allowed:
        return access.denied_json(decision)
    station = request.GET.get("station", "").strip()
    if not station:
        return JsonResponse({"error": "parameter 'station' is required (a site code)"}, status=400)
    try:
        return JsonResponse(queries.tower_series(version, station))
    except queries.QueryError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    except DatasetFile.DoesNotExist as exc:
        return JsonResponse({"error": str(exc) or "no time series in this version"}, status=404)


@require_safe
def download(request, dataset_id: str, number: int, name: str):
    """A published file of a version: access policy, the day's byte quota, ranges; a GET answered
    200/206 is logged with the bytes sent (``Content-Length``)."""
    try:
        f, relative = queries.version_file_path(dataset_id, number, name)
    except DatasetFile.DoesNotExist:
        raise Http404("no such file") from None
    decision = access.decide(request.user, f.version.dataset)
    if decision.status == 401 and _wants_html(request):  # a browser: to the login page, back here after
        return redirect_to_login(request.get_full_path())
    if not decision.allowed:
        return access.denied_json(decision)
    try:
        return send_published(
            request,
            f,
            relative,
            kind="file",
            content_type=media_type_for(f.name, default=f.media_type),
            filename=f.name,
            sha256=f.sha256 or None,
            format=f.name.rsplit(".", 1)[-1][:20] if "." in f.name else "",
        )
    except limits.QuotaExceeded as exc:
        return _quota(exc)
