"""Middleware of the portal."""

from __future__ import annotations

from django.middleware.gzip import GZipMiddleware as DjangoGZipMiddleware

from .files import compressible


class GZipMiddleware(DjangoGZipMiddleware):
    """Django's gzip for text, JSON (CoverageJSON, GeoJSON), XML and CSV answers only.

    Never for a partial answer (206, or anything with ``Content-Range``: a gzipped range breaks
    GDAL's ``/vsicurl/`` and every client that reassembles a file from ranges), nor for media types
    that are compressed already or binary (NetCDF, zip, GeoTIFF: :func:`portal.files.compressible`).
    A whole file that is gzipped loses ``Accept-Ranges`` (its ranges would be of the compressed
    bytes; nginx does the same); the identity file keeps its ranges and strong ETag.
    """

    def process_response(self, request, response):
        if (
            response.status_code == 206
            or response.has_header("Content-Range")
            or not compressible(response.get("Content-Type"))
        ):
            return response
        response = super().process_response(request, response)
        if response.get("Content-Encoding") == "gzip" and response.has_header("Accept-Ranges"):
            del response.headers["Accept-Ranges"]
        return response
