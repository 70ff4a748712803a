"""The edge of the portal: what every request passes before a view, and what a fault turns into.

Three middleware, in ``settings.MIDDLEWARE``:

- :class:`DatabaseUnavailableMiddleware` (outermost but security): a database that cannot be
  reached, wherever it is noticed (a view, the session, the user), is a 503 with ``Retry-After``:
  JSON under ``/api/`` and ``/opendap/``, a small static HTML page elsewhere (no template, no session).
- :class:`RequestCapsMiddleware` (before anything reads the request): a body over
  ``REQUEST_MAX_BODY_BYTES`` is a 413 (by ``Content-Length``, or while reading a chunked body);
  a NUL byte in the path or the query string (raw or ``%00``) is a 400 naming where.
- :class:`RateLimitMiddleware` (after authentication, so a token's user counts as that user):
  :func:`portal.limits.hit_rate` per front door and user or client; over the rate a 429 with
  ``Retry-After``; every limited answer carries ``X-RateLimit-Limit`` and ``X-RateLimit-Remaining``.

Answers of the edge are JSON ``{"detail": ...}`` (plus named fields) where clients are programs
(:func:`wants_json`), a short HTML page elsewhere (:func:`error_response`).
"""

from __future__ import annotations

import io
import logging
import sys
from html import escape
from urllib.parse import unquote_plus

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.core.signals import got_request_exception
from django.db.utils import InterfaceError, OperationalError
from django.dispatch import receiver
from django.http import HttpResponse, JsonResponse

from . import limits

log = logging.getLogger(__name__)
DATABASE_ERRORS = (OperationalError, InterfaceError)
_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1><p>{detail}</p><p><a href="/">Land-surface hydrology data portal</a></p></body></html>
"""


def wants_json(path: str) -> bool:
    """Whether answers at ``path`` are JSON (the API, EDR and OPeNDAP: programs read them)."""
    return path.startswith(("/api/", "/opendap/")) or path in ("/api", "/opendap")


def error_response(
    request, status: int, title: str, detail: str, *, headers: dict | None = None, **fields
) -> HttpResponse:
    """An answer of the edge: JSON ``{"detail": detail, **fields}`` for programs, a short HTML page otherwise.

    Parameters
    ----------
    request : HttpRequest
        Its path decides the form (:func:`wants_json`).
    status : int
        The HTTP status.
    title : str
        The HTML page's title (unused in JSON).
    detail : str
        What went wrong and what to do, for a person.
    headers : dict, optional
        Extra response headers (``Retry-After``).
    **fields
        More JSON members (``field``, ``limit``, ``retry_after``).
    """
    if wants_json(request.path_info):
        return JsonResponse(
            {"detail": detail, **fields}, status=status, headers=headers, json_dumps_params={"ensure_ascii": False}
        )
    return HttpResponse(
        _PAGE.format(title=escape(title), detail=escape(detail)),
        status=status,
        headers=headers,
        content_type="text/html; charset=utf-8",
    )


# --- database down -------------------------------------------------------------------------------


def _database_unavailable(request) -> HttpResponse:
    seconds = settings.DATABASE_UNAVAILABLE_RETRY_AFTER
    return error_response(
        request,
        503,
        "Service unavailable",
        "the portal's database is unavailable; please try again in a minute",
        headers={"Retry-After": str(seconds)},
        retry_after=seconds,
    )


@receiver(got_request_exception, dispatch_uid="portal.edge.database_errors")
def _mark_database_errors(sender, request=None, **kwargs):
    """Mark a request whose uncaught exception is the database's (sent while it is being handled)."""
    exc = sys.exc_info()[1]
    if request is not None and isinstance(exc, DATABASE_ERRORS):
        request._portal_database_error = exc


class DatabaseUnavailableMiddleware:
    """A database error raised anywhere while handling a request becomes a 503 with ``Retry-After``.

    In a view it is caught by :meth:`process_exception`; in another middleware (the session or the
    user read lazily) Django has already made it a 500, which is replaced here, recognised by the
    exception :func:`_mark_database_errors` saw. ``DATABASES``' ``connect_timeout`` keeps a database
    that does not answer from holding the request.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        exc = getattr(request, "_portal_database_error", None)
        if exc is not None:
            log.warning(
                "database unavailable while handling %s: %s: %s",
                request.path_info,
                type(exc).__name__,
                str(exc).strip()[:200],
            )
            return _database_unavailable(request)
        return response

    def process_exception(self, request, exception):
        if isinstance(exception, DATABASE_ERRORS):
            log.warning(
                "database unavailable while handling %s: %s: %s",
                request.path_info,
                type(exception).__name__,
                str(exception).strip()[:200],
            )
            return _database_unavailable(request)
        return None


# --- request caps --------------------------------------------------------------------------------


def _nul_in_query(query_string: str) -> str | None:
    """The name of the first query parameter whose name or value holds a NUL byte; None if none does."""
    for pair in query_string.split("&"):
        name, _, value = pair.partition("=")
        name, value = unquote_plus(name, encoding="latin-1"), unquote_plus(value, encoding="latin-1")
        if "\x00" in name or "\x00" in value:
            return name
    return None


class RequestCapsMiddleware:
    """Requests refused before anything reads them: too large a body (413), NUL bytes (400).

    A body's size is known from ``Content-Length``; a chunked body (no ``Content-Length``, which
    Django would otherwise read as empty) is read here up to the cap and handed on as if it had one.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        refused = self.check_nul(request) or self.check_body(request)
        return refused or self.get_response(request)

    @staticmethod
    def check_nul(request) -> HttpResponse | None:
        if "\x00" in request.path_info:
            return error_response(
                request, 400, "Bad request", "a NUL byte (%00) in the path is not allowed", field="path"
            )
        name = _nul_in_query(request.META.get("QUERY_STRING", ""))
        if name is not None:
            return error_response(
                request,
                400,
                "Bad request",
                f"a NUL byte (%00) in the query string (parameter {name!r}) is not allowed",
                field=name,
            )
        return None

    @staticmethod
    def check_body(request) -> HttpResponse | None:
        cap = settings.REQUEST_MAX_BODY_BYTES
        length = request.META.get("CONTENT_LENGTH") or ""
        if length:
            if not (length.isascii() and length.isdigit()):
                return error_response(
                    request,
                    400,
                    "Bad request",
                    f"Content-Length {length[:40]!r}: expected a number of bytes",
                    field="Content-Length",
                )
            if int(length) > cap:
                return _too_large(request, cap)
            return None
        if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            try:
                data = request.META["wsgi.input"].read(cap + 1)
            except Exception as exc:  # bad chunk framing or the client went away (the server's own errors)
                return error_response(
                    request,
                    400,
                    "Bad request",
                    f"the chunked request body could not be read ({type(exc).__name__})",
                    field="body",
                )
            if len(data) > cap:
                return _too_large(request, cap)
            request.META["CONTENT_LENGTH"] = str(len(data))
            request._stream = LimitedStream(io.BytesIO(data), len(data))
        return None


def _too_large(request, cap: int) -> HttpResponse:
    return error_response(
        request,
        413,
        "Request too large",
        f"the request body is larger than {cap} bytes ({cap / 2**20:g} MiB), the most the portal "
        "accepts; for a long polygon submit a job with a simplified one",
        limit=cap,
    )


# --- rate limits ---------------------------------------------------------------------------------


class RateLimitMiddleware:
    """Rate limits per front door and per user or anonymous client (:func:`portal.limits.hit_rate`).

    After authentication in ``MIDDLEWARE``: session and token users count as themselves, anyone
    else as their IP address. Over the rate: 429 with ``Retry-After`` (seconds left in the window)
    and ``{"detail", "limit", "retry_after"}`` (JSON under /api/ and /opendap/, HTML elsewhere).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        usage = limits.hit_rate(request)
        if usage is not None and usage.exceeded:
            body = usage.as_dict()
            response = error_response(
                request,
                429,
                "Too many requests",
                body.pop("detail"),
                headers={"Retry-After": str(usage.retry_after)},
                **body,
            )
        else:
            response = self.get_response(request)
        if usage is not None:
            response["X-RateLimit-Limit"] = str(usage.limit)
            response["X-RateLimit-Remaining"] = str(usage.remaining)
        return response


# --- login protection ----------------------------------------------------------------------------


def axes_username(request, credentials: dict | None) -> str | None:
    """The user name django-axes counts failures for, whatever the entry.

    allauth's login form posts ``login`` and authenticates with ``email=`` (or ``username=``), the
    admin and HTTP Basic authenticate with ``username=``: the first of these, lower-cased (e-mail
    addresses are matched case-insensitively at login).
    """
    sources = [credentials or {}]
    if request is not None and request.method == "POST":
        sources.append(request.POST)
    for source in sources:
        for field in ("login", "username", "email"):
            value = source.get(field)
            if value:
                return str(value).strip().lower()
    return None
