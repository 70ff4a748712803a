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
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from portal import extents

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

BBOX = "4 numbers west,south,east,north (or 6 with minimum and maximum height) in degrees, e.g. bbox=70,25,105,45"


def parse_bbox(value: Any) -> tuple[float, float, float, float]:
    """``bbox``: 4 numbers ``west,south,east,north`` (or 6 with heights, which are ignored).

    Read by :func:`portal.extents.parse_bbox` with the Item Search's rules: a JSON array too (POST),
    6 numbers with the heights dropped, longitudes and latitudes within the WGS 84 ranges.

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
    return extents.parse_bbox(value, what=BBOX, heights="drop", arrays=True, wgs84=True, error=BadParameter)


def parse_datetime(text: Any) -> Interval:
    """``datetime``: an instant, or an interval ``start/end`` with ``..`` (or nothing) for an open end.

    Read by :func:`portal.extents.parse_period` with the Item Search's rules: strict RFC 3339,
    ``../..`` refused.

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
    period = extents.parse_period(text, "datetime", rfc3339=True, unbounded=False, error=BadParameter)
    bounds = extents.period_bounds(period, "datetime", error=BadParameter)
    if bounds is None:  # not reached: the text is not empty and '../..' is refused
        raise BadParameter("datetime", "expected an RFC 3339 instant or an interval start/end (.. for an open end)")
    return bounds


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
        raise BadParameter(
            "intersects", f"expected a GeoJSON geometry: one of {', '.join(_GEOMETRY_TYPES)} with coordinates"
        )
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
    if (
        not isinstance(data, list)
        or len(data) != 3
        or not isinstance(data[0], str)
        or not isinstance(data[1], int)
        or isinstance(data[1], bool)
        or not isinstance(data[2], str)
    ):
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
