"""Item Search parameters of the STAC API: parsed and checked, GET query or POST body alike.

Pure Python (no Django). Every problem is a :class:`BadParameter` naming the parameter and what
was expected; the views answer it as a 400 ``{"code": "InvalidParameterValue", "description"}``.

References
----------
* STAC API - Item Search 1.0.0, https://github.com/radiantearth/stac-api-spec/tree/v1.0.0/item-search
* OGC API - Features - Part 1: Core 1.0 (OGC 17-069r4), parameters ``bbox``, ``datetime``, ``limit``
* RFC 3339 (date and time on the Internet); GeoJSON, RFC 7946 (``intersects``; section 5.2, the
  antimeridian: a box whose west edge is east of its east edge crosses it)
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_LIMIT = 10
MAX_LIMIT = 1000
MAX_LIST = 1000  # ids or collections in one request
PARAMETERS = ("bbox", "datetime", "intersects", "collections", "ids", "limit", "token")
"""Parameters of ``/search`` and ``/collections/{id}/items``."""


class BadParameter(ValueError):
    """A parameter that cannot be used: ``parameter`` names it, the message says what was expected."""

    def __init__(self, parameter: str, message: str):
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


Interval = tuple[dt.datetime | None, dt.datetime | None]


@dataclass(frozen=True)
class Search:
    """A parsed Item Search.

    Attributes
    ----------
    bbox : tuple of 4 float or None
        ``(west, south, east, north)`` in degrees (CRS84); ``west > east`` crosses the antimeridian.
    interval : tuple or None
        ``(start, end)``, aware UTC datetimes, either None for an open end; an instant is
        ``(t, t)``.
    intersects : dict or None
        A GeoJSON geometry object (checked for its shape only; the service builds the geometry).
    collections, ids : tuple of str or None
    limit : int
        Items per page, 1 to :data:`MAX_LIMIT`.
    token : tuple or None
        The position after which the page starts: ``(collection id, version number, item id)``.
    """

    bbox: tuple[float, float, float, float] | None = None
    interval: Interval | None = None
    intersects: dict | None = None
    collections: tuple[str, ...] | None = None
    ids: tuple[str, ...] | None = None
    limit: int = DEFAULT_LIMIT
    token: tuple[str, int, str] | None = None

    def query(self, datetime_text: str | None = None) -> dict[str, Any]:
        """The parameters as a POST body (JSON), without ``token``: for the links of a page."""
        body: dict[str, Any] = {"limit": self.limit}
        if self.bbox is not None:
            body["bbox"] = list(self.bbox)
        if datetime_text:
            body["datetime"] = datetime_text
        if self.intersects is not None:
            body["intersects"] = self.intersects
        if self.collections is not None:
            body["collections"] = list(self.collections)
        if self.ids is not None:
            body["ids"] = list(self.ids)
        return body


# --------------------------------------------------------------------------- values

_NUMBER = re.compile(r"^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$", re.ASCII)


def _number(value: Any, parameter: str) -> float:
    if isinstance(value, bool):
        raise BadParameter(parameter, f"{value!r} is not a number")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and _NUMBER.match(value):
        number = float(value)
    else:
        raise BadParameter(parameter, f"{str(value)[:40]!r} is not a number (ASCII digits, e.g. 88.5)")
    if not math.isfinite(number):
        raise BadParameter(parameter, "numbers must be finite")
    return number


def parse_bbox(value: Any) -> tuple[float, float, float, float]:
    """``bbox``: 4 numbers ``west,south,east,north`` (or 6 with heights, which are ignored).

    Parameters
    ----------
    value : str or sequence of numbers
        Comma-separated text (GET) or a JSON array (POST).

    Returns
    -------
    tuple of 4 float
        Degrees in CRS84; ``west > east`` crosses the antimeridian.

    Raises
    ------
    BadParameter
        Not 4 or 6 finite numbers, longitudes outside [-180, 180], latitudes outside [-90, 90],
        or south above north.
    """
    parts = value.split(",") if isinstance(value, str) else value
    if not isinstance(parts, list | tuple) or len(parts) not in (4, 6):
        raise BadParameter("bbox", "expected 4 numbers west,south,east,north (or 6 with minimum and maximum "
                                   "height) in degrees, e.g. bbox=70,25,105,45")
    numbers = [_number(p, "bbox") for p in parts]
    west, south, east, north = numbers if len(numbers) == 4 else (numbers[0], numbers[1], numbers[3], numbers[4])
    if not (-180 <= west <= 180 and -180 <= east <= 180):
        raise BadParameter("bbox", "longitudes must lie in [-180, 180] (west > east crosses the antimeridian)")
    if not (-90 <= south <= 90 and -90 <= north <= 90):
        raise BadParameter("bbox", "latitudes must lie in [-90, 90]")
    if south > north:
        raise BadParameter("bbox", f"the south edge ({south:g}) is north of the north edge ({north:g})")
    return (west, south, east, north)


_INSTANT = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2}))?$", re.ASCII)


def _instant(text: str, end: bool) -> dt.datetime:
    match = _INSTANT.match(text)
    if not match:
        raise BadParameter("datetime", f"{text[:40]!r} is not an RFC 3339 date-time (e.g. 2015-01-01T00:00:00Z)")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        if hour is None:  # a full date alone covers its day
            day_start = dt.datetime(int(year), int(month), int(day), tzinfo=dt.UTC)
            return day_start + dt.timedelta(days=1, microseconds=-1) if end else day_start
        offset = dt.timedelta(0) if zone in "Zz" else (
            (1 if zone[0] == "+" else -1) * dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        micro = int(round(float(fraction) * 1_000_000)) if fraction else 0
        value = dt.datetime(int(year), int(month), int(day), int(hour), int(minute), min(int(second), 59),
                            min(micro, 999_999), tzinfo=dt.timezone(offset))
    except ValueError as exc:
        raise BadParameter("datetime", f"{text[:40]!r}: {exc}") from None
    return value.astimezone(dt.UTC)


def parse_datetime(text: Any) -> Interval:
    """``datetime``: an instant, or an interval ``start/end`` with ``..`` (or nothing) for an open end.

    Parameters
    ----------
    text : str
        RFC 3339 date-times (``2015-01-01T00:00:00Z``, offsets and fractions allowed); a full date
        alone (``2015-01-01``) covers its day.

    Returns
    -------
    tuple
        ``(start, end)`` as aware UTC datetimes, None for an open end; an instant is ``(t, t)``.

    Raises
    ------
    BadParameter
        Not text, not RFC 3339, both ends open, or the start after the end.
    """
    if not isinstance(text, str) or not text.strip():
        raise BadParameter("datetime", "expected an RFC 3339 instant or an interval start/end (.. for an open end)")
    text = text.strip()
    if "/" not in text:
        return (_instant(text, end=False), _instant(text, end=True))
    parts = text.split("/")
    if len(parts) != 2:
        raise BadParameter("datetime", "an interval has exactly one '/': start/end")
    start_text, end_text = (p.strip() for p in parts)
    start = None if start_text in ("", "..") else _instant(start_text, end=False)
    end = None if end_text in ("", "..") else _instant(end_text, end=True)
    if start is None and end is None:
        raise BadParameter("datetime", "at least one end of the interval must be a date-time ('../..' is not allowed)")
    if start is not None and end is not None and start > end:
        raise BadParameter("datetime", f"the start ({start_text}) is after the end ({end_text})")
    return (start, end)


def parse_limit(value: Any) -> int:
    """``limit``: an integer from 1 to :data:`MAX_LIMIT` (default :data:`DEFAULT_LIMIT`)."""
    if isinstance(value, bool):
        raise BadParameter("limit", "expected an integer")
    if isinstance(value, str) and re.fullmatch(r"\s*\+?\d{1,9}\s*", value, re.ASCII):
        value = int(value)
    if not isinstance(value, int):
        raise BadParameter("limit", f"expected an integer from 1 to {MAX_LIMIT}, got {str(value)[:40]!r}")
    if not 1 <= value <= MAX_LIMIT:
        raise BadParameter("limit", f"expected an integer from 1 to {MAX_LIMIT}, got {value}")
    return value


def parse_names(value: Any, parameter: str) -> tuple[str, ...]:
    """``collections`` or ``ids``: comma-separated text (GET) or a JSON array of strings (POST)."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise BadParameter(parameter, "expected a list of strings (comma-separated in a query)")
    names = tuple(dict.fromkeys(i.strip() for i in items if i.strip()))
    if not names:
        raise BadParameter(parameter, "expected at least one name")
    if len(names) > MAX_LIST:
        raise BadParameter(parameter, f"at most {MAX_LIST} names")
    return names


_GEOMETRY_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")


def parse_intersects(value: Any) -> dict:
    """``intersects``: a GeoJSON geometry (a JSON object; text in a query).

    Raises
    ------
    BadParameter
        Not JSON, not an object with a known ``type`` and ``coordinates``.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise BadParameter("intersects", "expected a GeoJSON geometry object (JSON)") from None
    if not isinstance(value, dict) or value.get("type") not in _GEOMETRY_TYPES or "coordinates" not in value:
        raise BadParameter("intersects", f"expected a GeoJSON geometry: one of {', '.join(_GEOMETRY_TYPES)} with "
                                         "coordinates")
    return value


def encode_token(collection_id: str, number: int, item_id: str) -> str:
    """The ``token`` of the page that starts after this item (opaque to clients)."""
    raw = json.dumps([collection_id, number, item_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_token(value: Any) -> tuple[str, int, str]:
    """Decode a ``token`` of :func:`encode_token`.

    Raises
    ------
    BadParameter
        Anything a ``next`` link of this server did not hand out.
    """
    if not isinstance(value, str) or not value or len(value) > 2000:
        raise BadParameter("token", "expected the token of a 'next' link")
    try:
        data = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (ValueError, binascii.Error):
        raise BadParameter("token", "not a token this server handed out: follow the 'next' link") from None
    if (not isinstance(data, list) or len(data) != 3 or not isinstance(data[0], str)
            or not isinstance(data[1], int) or isinstance(data[1], bool) or not isinstance(data[2], str)):
        raise BadParameter("token", "not a token this server handed out: follow the 'next' link")
    return (data[0], data[1], data[2])


def parse_search(params: Mapping[str, Any], *, allowed: tuple[str, ...] = PARAMETERS) -> tuple[Search, str | None]:
    """Parse a search from a GET query (text values) or a POST body (JSON values).

    Parameters
    ----------
    params : mapping
        Parameter name -> value; empty values count as absent.
    allowed : tuple of str
        The parameters this endpoint takes; any other is a :class:`BadParameter`.

    Returns
    -------
    (Search, str or None)
        The search and its ``datetime`` text as given (for the page links).

    Raises
    ------
    BadParameter
        Unknown parameters, ``bbox`` together with ``intersects``, or a bad value.
    """
    unknown = sorted(k for k in params if k not in allowed)
    if unknown:
        raise BadParameter(unknown[0], f"unknown parameter; this endpoint takes {', '.join(allowed)}")
    given = {k: v for k, v in params.items() if v not in (None, "")}
    if "bbox" in given and "intersects" in given:
        raise BadParameter("intersects", "give bbox or intersects, not both")
    datetime_text = given.get("datetime")
    search = Search(
        bbox=parse_bbox(given["bbox"]) if "bbox" in given else None,
        interval=parse_datetime(datetime_text) if "datetime" in given else None,
        intersects=parse_intersects(given["intersects"]) if "intersects" in given else None,
        collections=parse_names(given["collections"], "collections") if "collections" in given else None,
        ids=parse_names(given["ids"], "ids") if "ids" in given else None,
        limit=parse_limit(given["limit"]) if "limit" in given else DEFAULT_LIMIT,
        token=parse_token(given["token"]) if "token" in given else None,
    )
    return search, datetime_text if isinstance(datetime_text, str) else None
