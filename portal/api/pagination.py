"""Paging of the API's lists: ``limit`` and ``offset`` read strictly and capped, a 400 naming the bad one."""

from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import APIException
from rest_framework.pagination import LimitOffsetPagination


class BadPageParameter(APIException):
    """A ``limit`` or ``offset`` that is not a plain number in range (400, ``{"detail", "field"}``)."""

    status_code = 400
    default_code = "bad_page_parameter"

    def __init__(self, field: str, message: str):
        super().__init__({"detail": message, "field": field})


def _count(request, name: str, *, lowest: int, highest: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
        raise BadPageParameter(
            name, f"{name}={raw[:40]!r}: expected a whole number from {lowest} to {highest} in ASCII digits"
        )
    value = int(raw)
    if not lowest <= value <= highest:
        raise BadPageParameter(name, f"{name}={value}: expected a whole number from {lowest} to {highest}")
    return value


class CappedLimitOffsetPagination(LimitOffsetPagination):
    """DRF's limit/offset paging; ``limit`` 1 to ``API_MAX_PAGE_SIZE``, ``offset`` 0 to ``API_MAX_OFFSET``.

    DRF's own silently ignores a bad value and lets any offset reach the database (a bigint
    overflow there is a 500): here a value that is not ASCII digits or is out of range is a 400.
    """

    def get_limit(self, request):
        self.max_limit = settings.API_MAX_PAGE_SIZE
        value = _count(request, self.limit_query_param, lowest=1, highest=self.max_limit)
        return self.default_limit if value is None else value

    def get_offset(self, request):
        value = _count(request, self.offset_query_param, lowest=0, highest=settings.API_MAX_OFFSET)
        return 0 if value is None else value

    def get_schema_operation_parameters(self, view):
        """``limit`` and ``offset`` in OpenAPI with the bounds the server enforces (a 400 outside them)."""
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.limit_query_param: (1, settings.API_MAX_PAGE_SIZE),
            self.offset_query_param: (0, settings.API_MAX_OFFSET),
        }
        for parameter in parameters:
            lowest, highest = bounds[parameter["name"]]
            parameter["schema"] = {**parameter["schema"], "minimum": lowest, "maximum": highest}
        return parameters
