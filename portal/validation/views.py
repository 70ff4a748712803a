"""The validation browser's pages and API twins: each view one service call (:mod:`portal.validation.services`)
and, for the series, one access check (:func:`portal.catalog.access.decide`, inside the service)."""

from __future__ import annotations

from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from portal.catalog import access

from . import filters, services

_MEASURES = ("n", *filters.METRICS, "alpha", "beta")


def _query(request) -> dict:
    return dict(request.GET.lists())


@require_safe
def version_page(request, dataset_id: str, number: int):
    """A version's validation stations: map, filtered and sorted table, per-split tables, freeze/thaw matrices."""
    try:
        context = services.browse(dataset_id, number, _query(request))
    except services.NotFound as exc:
        raise Http404(str(exc)) from None
    except filters.FilterError as exc:
        context = services.browse(dataset_id, number, {})
        context["error"] = exc
        return render(request, "validation/version.html", context, status=400)
    return render(request, "validation/version.html", context)


def _json_row(row: dict) -> dict:
    out = {k: row[k] for k in ("split", "variable", "units", "label", "network", "land_cover", "lat", "lon")}
    out.update({k: row[k] for k in _MEASURES})
    out.update(not_meaningful=row["not_meaningful"] or None, reason=row["reason"] or None, data_kind=row["kind"])
    return out


@require_safe
def version_api(request, dataset_id: str, number: int):
    """The version page's stations as JSON, with the same filters (400 ``{field, detail}`` on a bad one)."""
    try:
        context = services.browse(dataset_id, number, _query(request))
    except services.NotFound as exc:
        return JsonResponse({"detail": str(exc)}, status=404)
    except filters.FilterError as exc:
        return JsonResponse({"field": exc.field, "detail": str(exc)}, status=400)
    return JsonResponse(
        {
            "dataset": dataset_id,
            "version": number,
            "latest_version": context["latest"],
            "filters": context["filters"].as_query(),
            "choices": context["choices"],
            "data_kinds": context["kinds"],
            "splits": [
                {
                    "split": t["split"],
                    "title": str(t["facts"]["title"]),
                    "partition": str(t["facts"]["partition"]),
                    "reference": str(t["facts"]["reference"]),
                    "independent": t["facts"]["independent"],
                    "data_kind": str(t["facts"]["kind"]),
                    "limit": str(t["facts"]["limit"]),
                }
                for t in context["tables"]
            ],
            "count": len(context["stations"]),
            "total": context["total"],
            "stations": [_json_row(r) for r in context["stations"]],
            "classification": [
                {
                    "experiment": c["experiment"],
                    "data_kind": str(c["facts"]["kind"]),
                    "sets": [
                        {
                            k: s.get(k)
                            for k in (
                                "set",
                                "n",
                                "matrix",
                                "overall_accuracy",
                                "kappa",
                                "recall_thawed",
                                "recall_frozen",
                                "missing",
                            )
                        }
                        for s in c["sets"]
                    ],
                }
                for c in context["classification"]
            ],
        }
    )


@require_safe
def station_page(request, dataset_id: str, number: int, code: str):
    """One station of a version: its metrics per split, its role, and (where allowed and stored) its series."""
    try:
        context = services.station_page(dataset_id, number, code, request.user)
    except services.NotFound as exc:
        raise Http404(str(exc)) from None
    return render(request, "validation/station.html", context)


@require_safe
def station_api(request, dataset_id: str, number: int, code: str):
    """One station's metrics, role and series as JSON; the dataset's access policy applies (401/403)."""
    try:
        context = services.station_page(dataset_id, number, code, request.user)
    except services.NotFound as exc:
        return JsonResponse({"detail": str(exc)}, status=404)
    decision = context["decision"]
    if not decision.allowed:
        return access.denied_json(decision)
    return JsonResponse(
        {
            "dataset": dataset_id,
            "version": number,
            "station": code,
            "rows": [_json_row(r) for r in context["rows"]],
            "roles": [
                {
                    "split": r["split"],
                    "role": str(r["role"]) if r["role"] else None,
                    "fold": r["fold"],
                    "folds": r["folds"],
                }
                for r in context["roles"]
            ],
            "series": context["series"],
            "series_not_stored": context["missing"],
        }
    )
