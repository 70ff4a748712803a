"""The metadata exports' front door: ``/datasets/<id>/metadata/<format>[?version=N]``.

Metadata is public for every dataset, whatever its access rule: it describes the data and gives none
of it (the files it links to keep their own access policy). So the one access check is that there is
none; the one service call is :func:`portal.catalog.exports.export`.
"""

from __future__ import annotations

from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_safe

from . import exports


@require_safe
def metadata_export(request, dataset_id: str, fmt: str):
    """The export ``fmt`` of a record (``?version=N``: of its published version N), as a download.

    200 with the format's media type (``; charset=utf-8``) and ``Content-Disposition: attachment``
    with ``<id>[-vN].<suffix>``; 404 JSON naming an unknown format (with the list of formats), dataset
    or version (with the dataset's versions); 400 JSON for a ``version`` that is not a number.
    """
    try:
        doc = exports.export(dataset_id, fmt, request.GET.get("version"))
    except exports.ExportError as exc:
        return JsonResponse(exc.detail, status=exc.status)
    response = HttpResponse(doc.content, content_type=f"{doc.media_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{doc.filename}"'
    return response
