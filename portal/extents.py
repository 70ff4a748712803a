"""Boxes and periods in query parameters: the one parser of every front door.

The dataset API, ``POST /api/jobs/``, OGC API-EDR and the observation subsets
(:mod:`portal.subsets.params`, :mod:`portal.subsets.stations`), the catalogue search
(:mod:`portal.catalog.search`, and OGC API-Records through it) and the STAC Item Search
(:mod:`portal.stac.params`) read a ``bbox`` and a ``time``/``datetime`` here. A front door's own
rules are options of the same functions, not a second implementation:

* numbers: ASCII digits only (Python's ``float`` also reads other scripts' digits), finite; a
  JSON array of numbers (a POST body) with ``arrays=True``;
* boxes: ``min_lon,min_lat,max_lon,max_lat`` (west, south, east, north; ``min_lon > max_lon``
  crosses the antimeridian); 6 numbers with heights dropped or refused (``heights=``); longitudes
  in [-180, 180], latitudes in [-90, 90] and south below north with ``wgs84=True`` (the grids'
  own check, which also takes 0..360 longitudes, is :func:`portal.subsets.core.check_bbox`);
* periods: an instant, or ``start/end`` with ``..`` or nothing for an open end, as OGC APIs write
  them. ISO 8601 by default: a date ``2001``, ``2001-02`` or ``2001-02-03`` (at either end it
  covers the whole year, month or day) or a date-time with ``Z`` or an offset (without one it is
  read as UTC); strict RFC 3339 with ``rfc3339=True``: a full date, or a date-time with seconds
  and a ``Z`` or an offset. :func:`period_bounds` turns a period into aware UTC datetimes.

Every problem is raised as ``error(field, message)``: each front door passes its own error class
(:class:`portal.subsets.core.SubsetError`, :class:`portal.catalog.search.SearchError`,
:class:`portal.stac.params.BadParameter`), whose answer (status, body) it already knows; the
default is :class:`ExtentError`. Pure Python (no Django).

References
----------
* OGC API - Environmental Data Retrieval 1.1 (OGC 19-086r6) and OGC API - Features - Part 1
  (OGC 17-069r4): ``bbox`` and ``datetime``.
* RFC 3339, https://www.rfc-editor.org/rfc/rfc3339; GeoJSON, RFC 7946 section 5.2 (the antimeridian).
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import pandas as pd

Bound: TypeAlias = str | pd.Timestamp | None
"""One end of a parsed period: a date as text (a year, month or day: it covers all of it), a naive
UTC :class:`pandas.Timestamp`, or None for an open end."""
ErrorFactory = Callable[[str, str], Exception]


class ExtentError(ValueError):
    """A box or period that cannot be read: ``field`` names the parameter, ``message`` what was expected."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


BBOX = "4 comma-separated numbers min_lon,min_lat,max_lon,max_lat"
"""What a box is, in the messages of the dataset API."""

_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*", re.ASCII)


def parse_numbers(
    value: Any,
    n: int | Sequence[int],
    what: str,
    field: str,
    *,
    arrays: bool = False,
    error: ErrorFactory = ExtentError,
) -> list[float]:
    """``n`` finite numbers: comma-separated text in ASCII digits, or a JSON array of numbers.

    Parameters
    ----------
    value : str or sequence
        Text such as ``"70,25,105,45"``; with ``arrays=True`` also a list or tuple of numbers or
        number texts (a JSON body; booleans are not numbers).
    n : int or sequence of int
        How many numbers are expected (any of several counts).
    what : str
        What was expected, for the messages (``"4 comma-separated numbers ..."``).
    field : str
        The parameter, as the user wrote it.
    arrays : bool
        Accept a list or tuple (a POST body).
    error : callable
        ``error(field, message)`` is raised; :class:`ExtentError` by default.

    Returns
    -------
    list of float
    """
    counts = (n,) if isinstance(n, int) else tuple(n)
    if arrays and isinstance(value, list | tuple):
        parts = list(value)
        readable = all(
            isinstance(p, int | float) and not isinstance(p, bool) or isinstance(p, str) and _NUMBER.fullmatch(p)
            for p in parts
        )
    else:
        parts = str(value).split(",")
        readable = all(_NUMBER.fullmatch(p) for p in parts)
    if not readable:
        raise error(field, f"expected {what} (ASCII digits), got {str(value)[:80]!r}")
    values = [float(p) for p in parts]
    if len(values) not in counts:
        raise error(field, f"expected {what}, got {len(values)} numbers")
    if not all(math.isfinite(v) for v in values):
        raise error(field, f"expected finite numbers, got {str(value)[:80]!r}")
    return values


def parse_bbox(
    value: Any,
    field: str = "bbox",
    *,
    what: str = BBOX,
    heights: str = "no",
    arrays: bool = False,
    wgs84: bool = False,
    error: ErrorFactory = ExtentError,
) -> tuple[float, float, float, float]:
    """A box ``min_lon,min_lat,max_lon,max_lat`` in degrees.

    Parameters
    ----------
    value : str or sequence
        Comma-separated text; a JSON array too with ``arrays=True``.
    field : str
        The parameter, as the user wrote it.
    what : str
        What a box is, for the messages.
    heights : {"no", "drop", "refuse"}
        Six numbers ``min_lon,min_lat,min_z,max_lon,max_lat,max_z``: not expected (``"no"``: the
        count is wrong), read with the heights dropped (``"drop"``: OGC API-Features, STAC), or
        refused because there is no vertical axis (``"refuse"``: EDR).
    arrays : bool
        Accept a list or tuple (a POST body).
    wgs84 : bool
        Check longitudes in [-180, 180], latitudes in [-90, 90] and ``min_lat <= max_lat``.
    error : callable
        ``error(field, message)`` is raised; :class:`ExtentError` by default.

    Returns
    -------
    tuple of 4 float
        ``(min_lon, min_lat, max_lon, max_lat)``; ``min_lon > max_lon`` crosses the antimeridian.
    """
    if heights == "refuse" and _count(value, arrays) == 6:
        raise error(field, "the collection has no vertical axis: give 4 numbers minx,miny,maxx,maxy")
    numbers = parse_numbers(value, (4, 6) if heights == "drop" else 4, what, field, arrays=arrays, error=error)
    west, south, east, north = numbers if len(numbers) == 4 else (numbers[0], numbers[1], numbers[3], numbers[4])
    if wgs84:
        if not (-180 <= west <= 180 and -180 <= east <= 180):
            raise error(
                field,
                "expected longitudes in [-180, 180] (min_lon > max_lon crosses the antimeridian), "
                f"got {str(value)[:80]!r}",
            )
        if not (-90 <= south <= 90 and -90 <= north <= 90):
            raise error(field, f"expected latitudes in [-90, 90], got {str(value)[:80]!r}")
        if south > north:
            raise error(field, f"expected min_lat <= max_lat, got min_lat {south:g} > max_lat {north:g}")
    return (west, south, east, north)


def _count(value: Any, arrays: bool) -> int:
    return len(value) if arrays and isinstance(value, list | tuple) else len(str(value).split(","))


# --------------------------------------------------------------------------- periods

_DATE = r"\d{4}(?:-\d{2}(?:-\d{2})?)?"
_TIME = r"[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|z|[+-]\d{2}(?::?\d{2})?)?"
_ISO8601 = re.compile(rf"^{_DATE}(?:{_TIME})?$", re.ASCII)
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2}))?$", re.ASCII)
_LEAP_SECOND = re.compile(r"(?<=:)60(?=(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$)")


def parse_instant(
    text: str, name: str, field: str, *, rfc3339: bool = False, error: ErrorFactory = ExtentError
) -> str | pd.Timestamp:
    """One end of a period: a date stays text (it covers its year, month or day), a date-time
    becomes a naive UTC :class:`pandas.Timestamp`.

    Parameters
    ----------
    text : str
    name : str
        ``"instant"``, ``"start"`` or ``"end"``, for the message.
    field : str
        The parameter, as the user wrote it.
    rfc3339 : bool
        Strict RFC 3339: a full date, or a date-time with seconds and ``Z`` or an offset (a leap
        second ``:60`` is read as ``:59``).
    error : callable
        ``error(field, message)`` is raised; :class:`ExtentError` by default.
    """
    text = text.strip()
    stamp = pd.NaT
    if (_RFC3339 if rfc3339 else _ISO8601).match(text):
        try:
            stamp = pd.Timestamp(_LEAP_SECOND.sub("59", text) if rfc3339 else text)
        except (TypeError, ValueError, OverflowError):
            stamp = pd.NaT
    if stamp is pd.NaT:
        standard = "RFC 3339" if rfc3339 else "ISO 8601"
        raise error(
            field,
            f"{name} {text[:60]!r} is not an {standard} date (2001-02-03) or date-time "
            "(2001-02-03T12:00:00Z, with Z or an offset such as +08:00)",
        )
    if len(text) <= 10:
        return text  # a year, month or day: covers all of it at either end
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp


def parse_period(
    text: str | None, field: str, *, rfc3339: bool = False, unbounded: bool = True, error: ErrorFactory = ExtentError
) -> tuple[Bound, Bound] | None:
    """An instant, ``start/end``, ``../end``, ``start/..`` (an empty end is open too), or nothing.

    Parameters
    ----------
    text : str or None
    field : str
        The parameter, as the user wrote it.
    rfc3339 : bool
        Strict RFC 3339 instants (see :func:`parse_instant`).
    unbounded : bool
        Whether ``../..`` (open at both ends) is allowed; it means no period (None).
    error : callable
        ``error(field, message)`` is raised; :class:`ExtentError` by default.

    Returns
    -------
    tuple (start, end) or None
        :data:`Bound` ends (an instant is ``(t, t)``); None when absent or open at both ends.
    """
    if text is None or not str(text).strip():
        return None
    parts = str(text).strip().split("/")
    if len(parts) == 1:
        if parts[0] == "..":
            raise error(field, "'..' is only allowed as an open end of an interval (start/..)")
        instant = parse_instant(parts[0], "instant", field, rfc3339=rfc3339, error=error)
        return (instant, instant)
    if len(parts) != 2:
        raise error(field, f"expected an instant or an interval start/end, got {str(text)[:80]!r}")
    start, end = (
        None if p.strip() in ("", "..") else parse_instant(p, n, field, rfc3339=rfc3339, error=error)
        for p, n in zip(parts, ("start", "end"), strict=True)
    )
    if start is None and end is None:
        if not unbounded:
            raise error(field, "at least one end of the interval must be a date or date-time ('../..' is not allowed)")
        return None
    return (start, end)


def bound_datetime(bound: Bound, *, end: bool) -> dt.datetime | None:
    """A :data:`Bound` as an aware UTC datetime: a date (a year, month or day in text) covers all of
    it, so as an ``end`` it is its last microsecond."""
    if bound is None:
        return None
    if isinstance(bound, str):
        year, month, day = (int(p) for p in (bound.split("-") + ["0", "0"])[:3])
        if not end:
            return dt.datetime(year, month or 1, day or 1, tzinfo=dt.UTC)
        month = month or 12
        day = day or calendar.monthrange(year, month)[1]
        return dt.datetime(year, month, day, 23, 59, 59, 999_999, tzinfo=dt.UTC)
    return bound.round("us").to_pydatetime().replace(tzinfo=dt.UTC)


def period_bounds(
    period: tuple[Bound, Bound] | None, field: str, error: ErrorFactory = ExtentError
) -> tuple[dt.datetime | None, dt.datetime | None] | None:
    """The period of :func:`parse_period` as aware UTC datetimes ``(start, end)`` (None: an open end).

    Raises
    ------
    ``error(field, ...)``
        The start is after the end.
    """
    if period is None:
        return None
    start, end = bound_datetime(period[0], end=False), bound_datetime(period[1], end=True)
    if start is not None and end is not None and start > end:
        raise error(field, f"the start ({_shown(period[0])}) is after the end ({_shown(period[1])})")
    return (start, end)


def _shown(bound: Bound) -> str:
    return bound if isinstance(bound, str) else pd.Timestamp(bound).isoformat() + "Z"
