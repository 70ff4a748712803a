"""Files over HTTP as clients expect them: media types, byte ranges, validators, caching.

:func:`file_response` answers published version files and job results: ``Accept-Ranges: bytes``,
single byte ranges (206; ``bytes=N-M``, open ``bytes=N-`` and suffix ``bytes=-N``), 416 for
unsatisfiable ranges, a strong ``ETag`` (the file's sha256 when known), ``Last-Modified``,
conditional requests (``If-None-Match`` / ``If-Modified-Since`` → 304, ``If-Match`` /
``If-Unmodified-Since`` → 412, ``If-Range``), ``Cache-Control``, HEAD, and ``Content-Disposition:
attachment`` with the file name (RFC 6266, ``filename*`` for non-ASCII names). A range response
streams only its bytes (through ``sendfile`` under gunicorn). Multi-range requests get the whole
file (200), which RFC 9110 allows; GDAL's ``/vsicurl/`` only sends single ranges.

:data:`MEDIA_TYPES` is the one mapping from file suffix to media type (:func:`media_type_for`);
:func:`compressible` says which media types ``portal.middleware.GZipMiddleware`` may compress.

References
----------
RFC 9110 (HTTP semantics: ranges, conditional requests, validators), RFC 9111 (caching),
RFC 8246 (``immutable``), RFC 6266 (Content-Disposition); Cloud Optimized GeoTIFF media type,
https://www.ogc.org/standards/ogcapi-coverages (``profile=cloud-optimized``); CoverageJSON,
https://www.iana.org/assignments/media-types/application/prs.coverage+json.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.http import content_disposition_header, http_date, parse_http_date_safe, quote_etag

from portal import storage

ONE_YEAR = 365 * 24 * 3600

# suffix (lower case) -> media type; the longest matching suffix wins (".zarr.zip" before ".zip")
MEDIA_TYPES = {
    ".nc": "application/x-netcdf",
    ".tif": "image/tiff; application=geotiff; profile=cloud-optimized",
    ".tiff": "image/tiff; application=geotiff; profile=cloud-optimized",
    ".csv": "text/csv; charset=utf-8",
    ".covjson": "application/prs.coverage+json",
    ".json": "application/json",
    ".geojson": "application/geo+json",
    ".zip": "application/zip",
    ".zarr.zip": "application/zip",
    ".txt": "text/plain; charset=utf-8",
}
OCTET_STREAM = "application/octet-stream"

# Media types worth gzipping: text, JSON (incl. CoverageJSON, GeoJSON, OpenAPI), XML, JavaScript, SVG.
# NetCDF (compressed chunks), zip, TIFF (deflate tiles) and other binaries are left as they are.
_COMPRESSIBLE = re.compile(
    r"^(text/[\w.+-]+|application/(json|[\w.+-]+\+json|javascript|ecmascript|xml|[\w.+-]+\+xml|x-ndjson"
    r"|vnd\.oai\.openapi)|image/svg\+xml)$"
)


def media_type_for(name: str, default: str = OCTET_STREAM) -> str:
    """The media type of a file from its name's suffix (:data:`MEDIA_TYPES`), else ``default``."""
    lower = name.lower()
    for suffix in sorted(MEDIA_TYPES, key=len, reverse=True):
        if lower.endswith(suffix):
            return MEDIA_TYPES[suffix]
    return default


def compressible(content_type: str | None) -> bool:
    """True for media types that gzip shrinks (text, JSON, XML, JavaScript, SVG); parameters are ignored."""
    main = (content_type or "").split(";", 1)[0].strip().lower()
    return bool(_COMPRESSIBLE.match(main))


class RangeNotSatisfiable(Exception):
    """A syntactically valid ``Range`` none of whose bytes exist (answered 416)."""


_RANGE = re.compile(r"^\s*bytes\s*=\s*([0-9]*)\s*-\s*([0-9]*)\s*$", re.ASCII | re.IGNORECASE)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The byte range ``[start, stop)`` a ``Range`` header asks of a file of ``size`` bytes.

    Parameters
    ----------
    header : str or None
        ``bytes=N-M``, ``bytes=N-`` (to the end) or ``bytes=-N`` (the last N bytes).
    size : int
        File size in bytes.

    Returns
    -------
    (int, int) or None
        ``(start, stop)``, ``stop`` exclusive and at most ``size``; None when the header is absent
        or is to be ignored (another unit, several ranges, last < first, not a range at all): the
        whole file is answered.

    Raises
    ------
    RangeNotSatisfiable
        ``first >= size``, or a suffix range of 0 bytes or on an empty file (RFC 9110 §14.1.1).
    """
    if not header:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(size - length, 0), size
    start = int(first)
    end = size - 1 if not last else int(last)
    if last and end < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable
    return start, min(end, size - 1) + 1


def _if_range_allows(value: str | None, etag: str, last_modified: int) -> bool:
    """``If-Range`` (RFC 9110 §13.1.5): the range applies only if the validator still matches.

    An entity tag must match strongly (a weak one never does); a date must equal Last-Modified.
    """
    if value is None:
        return True
    value = value.strip()
    if value.startswith(('"', "W/")):
        return value == etag
    return parse_http_date_safe(value) == last_modified


class _FileRange:
    """A read-only window ``[start, start + length)`` of an open file, for :class:`FileResponse`.

    ``read`` never goes past the window; ``fileno`` lets gunicorn ``sendfile`` from the file's
    current offset (``start``) exactly ``Content-Length`` bytes.
    """

    def __init__(self, handle, start: int, length: int):
        self._handle = handle
        self._left = length
        handle.seek(start)

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        size = self._left if size is None or size < 0 else min(size, self._left)
        data = self._handle.read(size)
        self._left -= len(data)
        return data

    def fileno(self) -> int:
        return self._handle.fileno()

    def close(self) -> None:
        self._handle.close()


def file_response(
    request: HttpRequest,
    path: str | os.PathLike,
    *,
    filename: str,
    content_type: str | None = None,
    immutable: bool,
    private: bool = False,
    max_age: int | None = None,
    sha256: str | None = None,
) -> HttpResponseBase:
    """Answer a GET or HEAD of the file at ``path`` as an attachment, with ranges and validators.

    Parameters
    ----------
    request : HttpRequest
        Its ``Range``, ``If-Range``, ``If-None-Match``, ``If-Modified-Since``, ``If-Match`` and
        ``If-Unmodified-Since`` headers are honoured.
    path : path-like
        The file on disk.
    filename : str
        Name given to the client (``Content-Disposition: attachment``; RFC 5987 ``filename*`` for
        non-ASCII names).
    content_type : str, optional
        Default: :func:`media_type_for` ``filename``.
    immutable : bool
        The bytes at this URL never change (a published version's file): ``Cache-Control:
        public, max-age=31536000, immutable``. Otherwise ``max-age=max_age`` (default 0).
    private : bool
        Only the user's own cache may keep it (``private`` instead of ``public``): job results,
        login-access datasets.
    max_age : int, optional
        Seconds a cache may reuse it; default one year when ``immutable``, else 0.
    sha256 : str, optional
        The file's hex sha256 (recorded at publication), used as the strong ETag; without it the
        ETag is made of size and modification time.

    Returns
    -------
    HttpResponseBase
        200 (the file, streamed), 206 (one range, only its bytes streamed, ``Content-Range``),
        304 (not modified), 412 (a failed ``If-Match`` / ``If-Unmodified-Since``) or 416
        (``Content-Range: bytes */size``); HEAD gets the headers of the 200 without a body.

    Raises
    ------
    Http404
        No file at ``path``.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        raise Http404("the file is missing on the server") from None
    if not path.is_file():
        raise Http404("the file is missing on the server")
    size = stat.st_size
    last_modified = int(stat.st_mtime)
    etag = quote_etag(sha256.lower()) if sha256 else f'"{size:x}-{stat.st_mtime_ns:x}"'
    content_type = content_type or media_type_for(filename)
    if max_age is None:
        max_age = ONE_YEAR if immutable else 0

    def finish(response: HttpResponseBase) -> HttpResponseBase:
        response.headers["ETag"] = etag
        response.headers["Last-Modified"] = http_date(last_modified)
        if response.status_code != 304:
            response.headers["Accept-Ranges"] = "bytes"
        directives = {"private" if private else "public": True, "max_age": max_age}
        if immutable:
            directives["immutable"] = True
        patch_cache_control(response, **directives)
        return response

    conditional = get_conditional_response(request, etag=etag, last_modified=last_modified)
    if conditional is not None:
        return finish(conditional)

    byte_range = None
    if request.method == "GET" and _if_range_allows(request.headers.get("If-Range"), etag, last_modified):
        try:
            byte_range = parse_range(request.headers.get("Range"), size)
        except RangeNotSatisfiable:
            response = HttpResponse(
                f"range not satisfiable: the file has {size} bytes\n",
                status=416,
                content_type="text/plain; charset=utf-8",
            )
            response.headers["Content-Range"] = f"bytes */{size}"
            return finish(response)

    disposition = content_disposition_header(True, filename)
    if request.method == "HEAD":
        response = HttpResponse(content_type=content_type)
        response.headers["Content-Length"] = str(size)
        response.headers["Content-Disposition"] = disposition
        return finish(response)
    handle = path.open("rb")
    if byte_range is None:
        response = FileResponse(handle, as_attachment=True, filename=filename, content_type=content_type)
        response.headers["Content-Length"] = str(size)
    else:
        start, stop = byte_range
        response = FileResponse(
            _FileRange(handle, start, stop - start),
            status=206,
            as_attachment=True,
            filename=filename,
            content_type=content_type,
        )
        response.headers["Content-Length"] = str(stop - start)
        response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    response.headers["Content-Disposition"] = disposition
    return finish(response)


def stream_temporary(path: Path, *, filename: str, content_type: str, as_attachment: bool = True) -> FileResponse:
    """Stream a freshly written temporary file (a direct subset answer) as an attachment and delete it.

    The file is unlinked at once: the open handle keeps its bytes until the response is sent, so
    nothing is left behind whether the client reads it all, disconnects, or the worker dies.
    """
    handle = Path(path).open("rb")
    Path(path).unlink()
    return FileResponse(handle, as_attachment=as_attachment, filename=filename, content_type=content_type)


T = TypeVar("T")
_log = logging.getLogger(__name__)


def per_file_version(
    relative: str,
    cache: dict,
    compute: Callable[[str], T],
    errors: tuple[type[Exception], ...],
    what: str,
    limit: int = 1024,
) -> T | None:
    """``compute(relative)`` remembered per version of the file at ``relative`` under the data root
    (its path and :func:`portal.storage.version_token`: mtime and size on disk, ETag and size on S3)
    in ``cache``.

    Returns None, logged, for a missing file or one ``compute`` fails on with one of ``errors``;
    the cache is emptied when it holds ``limit`` entries (published files are immutable: a stale
    entry is only ever one of a replaced file).
    """
    try:
        token = storage.version_token(relative)
    except OSError:
        _log.warning("published file %s is missing", relative)
        return None
    key = (storage.root(), str(relative), *token)
    if key not in cache:
        try:
            value = compute(relative)
        except errors as exc:
            _log.warning("cannot %s %s: %s", what, relative, exc)
            value = None
        if len(cache) >= limit:
            cache.clear()
        cache[key] = value
    return cache[key]


def stored_file_response(
    request: HttpRequest,
    relative: str,
    *,
    filename: str,
    content_type: str | None = None,
    immutable: bool,
    private: bool = False,
    max_age: int | None = None,
    sha256: str | None = None,
) -> HttpResponseBase:
    """:func:`file_response` of the file at ``relative`` under the data root (:mod:`portal.storage`).

    On local disk: the file itself. On S3: a file of at least ``settings.DOWNLOAD_REDIRECT_MIN_BYTES``
    is answered with a 302 redirect to a pre-signed GET URL (valid ``settings.DOWNLOAD_PRESIGNED_SECONDS``,
    naming the file and its media type for the client; the object store then serves ranges itself); a
    smaller one is streamed from the read-through local copy, with ranges and validators. The redirect's
    ``bytes_sent`` attribute is the file's size (:func:`bytes_sent`).

    Raises
    ------
    Http404
        No file at ``relative`` (or a path outside the data root).
    """
    try:
        size = storage.size(relative)
    except (OSError, storage.StorageError):
        raise Http404("the file is missing on the server") from None
    content_type = content_type or media_type_for(filename)
    if storage.is_remote() and size >= settings.DOWNLOAD_REDIRECT_MIN_BYTES:
        target = storage.presigned_url(
            relative,
            settings.DOWNLOAD_PRESIGNED_SECONDS,
            disposition=content_disposition_header(True, filename),
            content_type=content_type,
        )
        response = HttpResponseRedirect(target)
        patch_cache_control(response, private=True, no_store=True)
        response.bytes_sent = size  # type: ignore[attr-defined]
        return response
    try:
        path = storage.local_path(relative)
    except OSError:
        raise Http404("the file is missing on the server") from None
    return file_response(
        request,
        path,
        filename=filename,
        content_type=content_type,
        immutable=immutable,
        private=private,
        max_age=max_age,
        sha256=sha256,
    )


def bytes_sent(response: HttpResponseBase) -> int:
    """The bytes a download response hands the client: its ``Content-Length``, or the file's size for a
    redirect to a pre-signed URL (:func:`stored_file_response`)."""
    redirected = getattr(response, "bytes_sent", None)
    return int(redirected) if redirected is not None else int(response["Content-Length"])
