"""The water-balance closure page and its API: thin views over :func:`portal.closure.services.water_balance`."""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from portal.catalog import access
from portal.catalog.access import AccessDenied

from . import services

PARAMETERS = ("basin", "region", "storage", "et", "p", "r")


def _call(request):
    unknown = sorted(set(request.GET) - set(PARAMETERS))
    if unknown:
        raise services.ClosureError(unknown[0], f"unknown parameter; expected any of {', '.join(PARAMETERS)}")
    return services.water_balance(
        request.user,
        basin=request.GET.get("basin") or None,
        region=request.GET.get("region") or None,
        params={k: request.GET.get(k) for k in ("storage", "et", "p", "r")},
    )


@require_GET
def water_balance_api(request):
    """``/api/water-balance/``: the closure statistics of every basin and region (JSON), and one series with
    ``?basin=`` or ``?region=``. 400 names a bad parameter; 401/403 as every download; 404 when a product is
    not published."""
    try:
        answer = _call(request)
    except services.ClosureError as exc:
        return JsonResponse({"detail": str(exc), "parameter": exc.parameter}, status=400)
    except AccessDenied as exc:
        return access.denied_json(exc.decision)
    except services.ClosureUnavailable as exc:
        return JsonResponse({"detail": str(exc)}, status=404)
    return JsonResponse(answer)


@require_GET
def water_balance_page(request):
    """``/water-balance/``: the tables of basins and regions and the chart of the chosen one's residual."""
    context: dict = {"query": request.GET.urlencode()}
    status = 200
    try:
        context["answer"] = answer = _call(request)
        context["choice_rows"] = [(k, v, answer["parameters"][k]) for k, v in answer["choices"].items()]
    except services.ClosureError as exc:
        context["problem"], status = str(exc), 400
    except AccessDenied as exc:
        context["problem"], status = str(exc), exc.status
    except services.ClosureUnavailable as exc:
        context["problem"], status = _("The closure needs published TWS and ET versions: %(why)s") % {"why": exc}, 404
    return render(request, "closure/water_balance.html", context, status=status)
