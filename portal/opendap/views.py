"""OPeNDAP (DAP2) endpoints for the NetCDF grids of published versions.

``/opendap/<dataset id>/v<number>/<file>.dds|.das|.dods`` (and ``.html`` or the bare file URL for a
short description), so that ``xarray.open_dataset("https://host/opendap/<id>/v<n>/<file>")``
(netCDF4 engine: netCDF-C's DAP2 client) opens a published version lazily and reads only the
hyperslabs it indexes. The protocol work is in :mod:`portal.opendap.dap`; the grid is opened only
through :func:`portal.subsets.services.open_cube`.

Errors are DAP2 ``Error {...}`` bodies: 404 for an unknown dataset, version or file, 400 for a
malformed constraint (naming the clause and what is wrong), 413 above ``settings.OPENDAP_MAX_BYTES``
(1 GiB), 429 (``Retry-After``) when a ``.dods`` read would pass the day's byte quota
(:func:`portal.limits.check_bytes`). Access follows the one policy (:mod:`portal.catalog.access`):
restricted datasets answer 401 with ``WWW-Authenticate: Basic`` to anonymous requests and accept
HTTP Basic credentials of a portal user (an API token as the password; netCDF-C sends those given
as ``https://user:password@host/...`` or from ``~/.netrc``) as well as a logged-in session.
Every ``.dods`` read is logged (:func:`portal.subsets.services.log_download`, kind ``opendap``)
with the bytes actually sent, once the response is closed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import numpy as np
from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from django.utils.html import escape
from django.views.decorators.http import require_safe

from portal import limits
from portal.catalog import access
from portal.catalog.models import Dataset, DatasetFile
from portal.subsets import services, store

from . import dap

logger = logging.getLogger(__name__)
SUFFIXES = (".dds", ".das", ".dods", ".html")
HEADERS = {"XDODS-Server": "dods/2.0", "XOPeNDAP-Server": "portal-opendap/1.0 (opendap-protocol)", "XDAP": "2.0"}


def _error(status: int, message: str, **headers) -> HttpResponse:
    response = HttpResponse(
        dap.error_body(status, message),
        status=status,
        content_type="text/plain; charset=utf-8",
        headers={**HEADERS, "Content-Description": "dods-error", **headers},
    )
    return response


class _Stream:
    """A DODS body that closes the dataset when the server is done with the response (sent or not),
    and then logs the read with the bytes sent (``log``: called with that size)."""

    def __init__(self, parts: Iterator[bytes], ds, log=None):
        self.parts, self.ds, self.log, self.sent = parts, ds, log, 0

    def __iter__(self):
        for part in self.parts:
            self.sent += len(part)
            yield part

    def close(self):
        self.ds.close()
        if self.log is not None:
            log, self.log = self.log, None
            log(self.sent)


def _layout(view: dap.DapView, projection: dap.Projection) -> str | None:
    """The cube store to read a DODS projection from: ``series`` when that decompresses less (point series)."""
    sizes = {d: view.ds.sizes.get(d) for d in ("time", "lat", "lon")}
    if None in sizes.values():
        return None
    requests = [(name, s) for name, s in projection.slices.items()]
    requests += [(name, s) for name, members in projection.members.items() for m, s in members.items() if m == name]
    cube = [(name, s) for name, s in requests if view.variables[name].variable.dims == ("time", "lat", "lon")]
    if not cube:
        return None
    name, slices = max(cube, key=lambda item: np.prod([len(range(s.start, s.stop, s.step)) for s in item[1]]))
    indices = {d: np.arange(s.start, s.stop, s.step) for d, s in zip(("time", "lat", "lon"), slices, strict=True)}
    return store.choose_layout(indices, sizes)


@require_safe
def dap2(request, dataset_id: str, number: int, name: str):
    """One DAP2 response (``.dds``, ``.das``, ``.dods``; ``.html`` or no suffix: a description) of a published file.

    Parameters
    ----------
    request : django.http.HttpRequest
        The query string is the DAP2 constraint expression.
    dataset_id : str
    number : int
        The version number.
    name : str
        The file name followed by the response suffix.

    Returns
    -------
    django.http.HttpResponse
        A streamed body for ``.dods``; DAP2 error bodies for 400, 401, 404 and 413.
    """
    dataset = (
        Dataset.objects.filter(pk=dataset_id).only("id", "share_type").first() if "\x00" not in dataset_id else None
    )
    if dataset is None:
        return _error(404, f"no dataset {dataset_id!r}")
    decision = access.decide(request.user, dataset)
    if decision.status == 401:
        return _error(
            401,
            f"{decision.message} (HTTP Basic with your e-mail and password or an API token as the "
            "password; ~/.netrc works, or https://user:token@host/opendap/... with netCDF/xarray)",
            **{"WWW-Authenticate": 'Basic realm="data portal", charset="UTF-8"'},
        )
    if not decision.allowed:
        return _error(403, decision.message)
    suffix = next((s for s in SUFFIXES if name.endswith(s)), "")
    filename = name[: len(name) - len(suffix)]
    f = (
        DatasetFile.objects.filter(version__dataset=dataset, version__number=number, name=filename)
        .select_related("version__dataset")
        .first()
        if filename.endswith(".nc") and "\x00" not in filename
        else None
    )
    if f is None:
        if name.endswith((".dmr", ".dap", ".dsr", ".xml")):
            return _error(404, f"{name!r}: DAP4 is not served here, only DAP2 (.dds, .das, .dods)")
        return _error(404, f"no NetCDF file {filename!r} in {dataset_id} v{number}")
    try:
        ds = services.open_cube(f)
    except FileNotFoundError:
        return _error(404, f"{f.name} of {dataset_id} v{number} is missing on the server")
    streaming = False
    try:
        view = dap.DapView(ds, f.name)
        if suffix == ".das":
            return HttpResponse(
                view.das(),
                content_type="text/plain; charset=utf-8",
                headers={**HEADERS, "Content-Description": "dods-das"},
            )
        if suffix in ("", ".html"):
            return HttpResponse(
                _html(view, request.build_absolute_uri(request.path[: len(request.path) - len(suffix)])),
                content_type="text/html; charset=utf-8",
            )
        projection = dap.parse_constraint(request.META.get("QUERY_STRING", ""), view.variables)
        if suffix == ".dds":
            return HttpResponse(
                view.dds(projection),
                content_type="text/plain; charset=utf-8",
                headers={**HEADERS, "Content-Description": "dods-dds"},
            )
        limit = settings.OPENDAP_MAX_BYTES
        if (size := view.size(projection)) > limit:
            return _error(
                413,
                f"the request would return {size / 2**20:.0f} MiB, above the {limit / 2**20:.0f} MiB "
                "limit of one OPeNDAP response: ask for smaller hyperslabs (with xarray: index or "
                ".sel() a smaller part before loading)",
            )
        client = request.META.get("REMOTE_ADDR")
        try:
            limits.check_bytes(request.user, client, size)
        except limits.QuotaExceeded as exc:
            return _error(429, str(exc), **{"Retry-After": str(exc.retry_after)})
        layout = _layout(view, projection)
        if layout not in (None, "map"):  # e.g. a point series: read the time-chunked store
            ds.close()
            ds = services.open_cube(f, layout=layout)
            view = dap.DapView(ds, f.name)
        query, user, started = request.META.get("QUERY_STRING", ""), request.user, time.monotonic()

        def log(sent: int) -> None:
            try:
                services.log_download(
                    user=user,
                    f=f,
                    query=None,
                    size=sent,
                    seconds=time.monotonic() - started,
                    client=client,
                    kind="opendap",
                    format="dods",
                    params={"constraint": query[:2000]} if query else {},
                )
            except Exception:  # the response is sent: a failed log entry must not turn into an error page
                logger.exception("OPeNDAP read of %s: the download log failed", f.name)

        response = StreamingHttpResponse(
            _Stream(view.dods(projection), ds, log),
            content_type="application/octet-stream",
            headers={**HEADERS, "Content-Description": "dods-data"},
        )
        streaming = True  # the response closes the dataset once sent
        return response
    except dap.ConstraintError as exc:
        return _error(400, f"bad constraint expression: {exc}")
    finally:
        if not streaming:
            ds.close()


def _html(view: dap.DapView, url: str) -> str:
    """A short HTML description of the file: variables, shapes, the three DAP2 URLs and how to open it."""
    rows = "".join(
        f"<tr><td>{escape(v.name)}</td><td>{escape(v.type.__name__)}</td>"
        f"<td>{escape(' × '.join(f'{d} {n}' for d, n in zip(v.dims, v.shape, strict=True)) or 'scalar')}</td>"
        f"<td>{escape(str(v.attrs.get('units', '')))}</td></tr>"
        for v in view.variables.values()
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>OPeNDAP: {escape(view.name)}</title></head>"
        f"<body><h1>OPeNDAP (DAP2): {escape(view.name)}</h1>"
        f'<p>Open with <code>xarray.open_dataset("{escape(url)}")</code> (netCDF4 engine); '
        f"<a href='{escape(url)}.dds'>DDS</a>, <a href='{escape(url)}.das'>DAS</a>; data: "
        f"<code>{escape(url)}.dods?var[start:stride:stop]...</code>.</p>"
        f"<table><tr><th>variable</th><th>type</th><th>dimensions</th><th>units</th></tr>{rows}</table>"
        "</body></html>"
    )
