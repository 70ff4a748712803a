"""Versions side by side: the page, the API answer (JSON) and the difference map (PNG).

Each view reads ``a`` and ``b`` (400 naming the parameter when missing or malformed), checks the
download rule of the dataset (:func:`portal.catalog.access.decide`: a comparison shows the data)
and makes one call of :mod:`portal.compare.services`; an unknown dataset or version is a 404.
"""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_safe

from portal.catalog import access
from portal.catalog.models import Dataset

from . import diff, services

_OPTIONS = ("file", "variable", "time")


def _dataset(dataset_id: str) -> Dataset:
    dataset = Dataset.objects.filter(id=dataset_id).first()
    if dataset is None:
        raise Http404("no such dataset")
    return dataset


def _numbers(request) -> tuple[int, int]:
    return services.parse_number("a", request.GET.get("a")), services.parse_number("b", request.GET.get("b"))


def _options(request) -> dict[str, str | None]:
    return {name: request.GET.get(name) or None for name in _OPTIONS}


def _answer(request, dataset_id: str, service):
    """``(dataset, a, b, service's answer)``, or ``(None, None, None, error response)``: a and b parsed, one access
    check (the download rule), one service call; a bad parameter is a 400 naming it, an unknown version a 404."""
    dataset = _dataset(dataset_id)
    try:
        a, b = _numbers(request)
        decision = access.decide(request.user, dataset)
        if not decision.allowed:
            return None, None, None, access.denied_json(decision)
        return dataset, a, b, service(dataset, a, b, **_options(request))
    except services.VersionNotFound as exc:
        return None, None, None, JsonResponse({"detail": str(exc)}, status=404)
    except services.CompareError as exc:
        return None, None, None, JsonResponse({"field": exc.field, "detail": str(exc)}, status=400)


@require_safe
def compare_api(request, dataset_id: str):
    """``GET /api/datasets/<id>/compare/?a=&b=[&file=&variable=&time=]``: :func:`services.compare_versions` as JSON."""
    dataset, a, b, answer = _answer(request, dataset_id, services.compare_versions)
    if dataset is None:
        return answer
    query = urlencode({"a": a, "b": b, **{k: v for k, v in _options(request).items() if v}})
    answer["links"] = {
        "page": request.build_absolute_uri(reverse("compare:page", args=[dataset.id]) + "?" + query),
        "difference_png": request.build_absolute_uri(reverse("compare:png", args=[dataset.id]) + "?" + query),
    }
    return JsonResponse(answer)


@require_safe
def difference_png(request, dataset_id: str):
    """``GET /datasets/<id>/compare/difference.png?a=&b=``: the difference map ``b - a`` as a PNG."""
    dataset, _, _, png = _answer(request, dataset_id, services.difference_png)
    if dataset is None:
        return png
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = "private, max-age=86400"  # versions are immutable; private: access-checked
    return response


@require_safe
def compare_page(request, dataset_id: str):
    """``/datasets/<id>/compare/?a=&b=``: the comparison page (a form to pick two versions above it)."""
    dataset = _dataset(dataset_id)
    numbers = list(dataset.versions.order_by("-number").values_list("number", flat=True))
    context = {
        "dataset": dataset,
        "numbers": numbers,
        "ramp": diff.ramp_css(),
        "a": request.GET.get("a", ""),
        "b": request.GET.get("b", ""),
    }
    try:
        a, b = _numbers(request)
    except services.CompareError as exc:
        return render(request, "compare/compare.html", {**context, "error": exc}, status=400)
    decision = access.decide(request.user, dataset)
    if decision.status == 401 and "HTTP_AUTHORIZATION" not in request.META:
        return redirect_to_login(request.get_full_path())
    if not decision.allowed:
        return render(request, "compare/compare.html", {**context, "denied": decision}, status=decision.status)
    try:
        answer = services.compare_versions(dataset, a, b, **_options(request))
    except services.VersionNotFound as exc:
        return render(request, "compare/compare.html", {**context, "error": exc}, status=404)
    except services.CompareError as exc:
        return render(request, "compare/compare.html", {**context, "error": exc}, status=400)
    query = {"a": a, "b": b}
    if answer["grid"]:
        query.update(
            file=answer["grid"]["file"], variable=answer["grid"]["variable"], time=answer["grid"]["map"]["time"]
        )
    context.update(
        answer=answer,
        png_url=reverse("compare:png", args=[dataset.id]) + "?" + urlencode(query),
        api_url=reverse("compare:api", args=[dataset.id]) + "?" + urlencode(query),
        sites=[d for d in answer["validation"] if d["scope"] == "site"],
        pooled=[d for d in answer["validation"] if d["scope"] != "site"],
    )
    return render(request, "compare/compare.html", context)
