"""The one parser of boxes and periods (portal.extents; no database): each front door's rules are options."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from portal import extents
from portal.catalog.search import SearchError
from portal.stac.params import BadParameter
from portal.subsets.core import SubsetError

UTC = dt.UTC


def test_numbers_are_ascii_finite_and_counted():
    assert extents.parse_numbers(" 1, -2.5,3e1 ", 3, "3 numbers", "x") == [1.0, -2.5, 30.0]
    for bad, expected in (
        ("1,٢,3", "ASCII digits"),
        ("1,2", "got 2 numbers"),
        ("1,2,1e999", "finite"),
        ("1,2,nan", "ASCII digits"),
    ):
        with pytest.raises(extents.ExtentError, match=expected) as caught:
            extents.parse_numbers(bad, 3, "3 numbers", "x")
        assert caught.value.field == "x"
    assert extents.parse_numbers([1, "2", 3.5], 3, "3 numbers", "x", arrays=True) == [1.0, 2.0, 3.5]
    with pytest.raises(extents.ExtentError):
        extents.parse_numbers([1, True, 3], 3, "3 numbers", "x", arrays=True)
    with pytest.raises(extents.ExtentError):
        extents.parse_numbers([1, 2, 3], 3, "3 numbers", "x")  # no arrays: the text of a list is not numbers


def test_boxes_with_heights_ranges_and_the_antimeridian():
    assert extents.parse_bbox("170,-20,-170,-10") == (170, -20, -170, -10)
    assert extents.parse_bbox("0,1,-5,2,3,5", heights="drop") == (0, 1, 2, 3)
    with pytest.raises(extents.ExtentError, match="got 6 numbers"):
        extents.parse_bbox("0,1,-5,2,3,5")
    with pytest.raises(extents.ExtentError, match="no vertical axis"):
        extents.parse_bbox("0,1,-5,2,3,5", heights="refuse")
    assert extents.parse_bbox("200,0,210,10") == (200, 0, 210, 10)  # a grid's 0..360 longitudes: checked later
    for bad, expected in (
        ("200,0,210,10", "longitudes"),
        ("0,-91,1,0", "latitudes"),
        ("0,50,10,40", "min_lat <= max_lat"),
    ):
        with pytest.raises(extents.ExtentError, match=expected):
            extents.parse_bbox(bad, wgs84=True)


def test_each_front_door_gets_its_own_error_with_the_field():
    for error in (SubsetError, SearchError, BadParameter):
        with pytest.raises(error) as caught:
            extents.parse_bbox("0,0,1", "coords", error=error)
        assert getattr(caught.value, "field", getattr(caught.value, "parameter", None)) == "coords"
        with pytest.raises(error):
            extents.parse_period("yesterday", "datetime", error=error)


def test_iso8601_periods_keep_dates_as_text_and_date_times_in_utc():
    assert extents.parse_period("2001-02", "time") == ("2001-02", "2001-02")
    assert extents.parse_period("2001-02-03T12:00:00+08:00/..", "time") == (pd.Timestamp("2001-02-03T04:00"), None)
    assert extents.parse_period("../..", "time") is None and extents.parse_period(" ", "time") is None
    with pytest.raises(extents.ExtentError, match="'../..' is not allowed"):
        extents.parse_period("../..", "datetime", unbounded=False)
    with pytest.raises(extents.ExtentError, match="only allowed as an open end"):
        extents.parse_period("..", "time")
    with pytest.raises(extents.ExtentError, match="not an ISO 8601 date"):
        extents.parse_period("２００１-01-01", "time")


def test_rfc3339_is_strict():
    assert (
        extents.parse_period("2016-12-31T23:59:60Z", "datetime", rfc3339=True)
        == (pd.Timestamp("2016-12-31T23:59:59"),) * 2
    )  # a leap second
    for bad in (
        "2016",
        "2016-01",
        "2016-01-01T00:00Z",
        "2016-01-01T00:00:00",
        "2016-02-30",
        "2016-01-01T00:00:00+0800",
    ):
        with pytest.raises(extents.ExtentError, match="not an RFC 3339 date"):
            extents.parse_period(bad, "datetime", rfc3339=True)


def test_bounds_cover_whole_years_months_and_days_and_must_be_in_order():
    assert extents.period_bounds(("2001", "2001-02"), "time") == (
        dt.datetime(2001, 1, 1, tzinfo=UTC),
        dt.datetime(2001, 2, 28, 23, 59, 59, 999999, tzinfo=UTC),
    )
    assert extents.period_bounds(("2000-02-03", None), "time") == (dt.datetime(2000, 2, 3, tzinfo=UTC), None)
    assert extents.period_bounds((None, "2000-02"), "time")[1].day == 29  # a leap year
    assert extents.period_bounds(("9999-12-31", "9999-12-31"), "time")[1].year == 9999  # no overflow
    assert extents.period_bounds((pd.Timestamp("2001-01-01T00:00:00.0000004"), None), "time")[0] == dt.datetime(
        2001, 1, 1, tzinfo=UTC
    )
    assert extents.period_bounds(None, "time") is None
    with pytest.raises(extents.ExtentError, match=r"the start \(2002\) is after the end \(2001-06\)"):
        extents.period_bounds(("2002", "2001-06"), "time")
