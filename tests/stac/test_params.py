"""Item Search parameters, the antimeridian and the offline validator, without a server or database."""

from __future__ import annotations

import datetime as dt

import pystac
import pytest
from pystac.errors import STACValidationError

from portal.stac import params
from portal.stac.services import boxes_intersect, describe_dataset, intervals_intersect
from portal.stac.validation import validate

from .conftest import Grid, grid_dataset

UTC = dt.UTC


def test_datetime_instants_intervals_and_open_ends():
    assert params.parse_datetime("2015-01-02T08:00:00+08:00") == (dt.datetime(2015, 1, 2, tzinfo=UTC),) * 2
    start, end = params.parse_datetime("2015-01-02")  # a date covers its day
    assert (start, end) == (
        dt.datetime(2015, 1, 2, tzinfo=UTC),
        dt.datetime(2015, 1, 2, 23, 59, 59, 999999, tzinfo=UTC),
    )
    assert params.parse_datetime("../2016-01-01T00:00:00.5Z") == (
        None,
        dt.datetime(2016, 1, 1, 0, 0, 0, 500000, tzinfo=UTC),
    )
    assert params.parse_datetime("2016-01-01T00:00:00Z/")[1] is None
    for bad in (
        "2016-02-30T00:00:00Z",
        "2016-01-01T00:00Z",
        "1/2/3",
        "../..",
        "2017-01-01/2016-01-01",
        "２０１６-01-01",
    ):
        with pytest.raises(params.BadParameter) as caught:
            params.parse_datetime(bad)
        assert caught.value.parameter == "datetime"


def test_bbox_limit_token_and_names():
    assert params.parse_bbox("170,-20,-170,-10") == (170, -20, -170, -10)  # across the antimeridian
    assert params.parse_bbox([0, 1, -5, 2, 3, 5]) == (0, 1, 2, 3)  # heights ignored
    for bad in ("1,2,3", "0,0,1,nan", "0,0,1,1e999", "0,0,1,١", [0, 0, True, 1], "-181,0,0,1"):
        with pytest.raises(params.BadParameter, match="^bbox: "):
            params.parse_bbox(bad)
    assert params.parse_limit("1000") == 1000
    for bad in ("0", "1001", "-1", "1.5", True, 2.0):
        with pytest.raises(params.BadParameter, match="^limit: "):
            params.parse_limit(bad)
    assert params.parse_token(params.encode_token("a-b", 3, "a-b-v3")) == ("a-b", 3, "a-b-v3")
    with pytest.raises(params.BadParameter, match="^token: "):
        params.parse_token(params.encode_token("a", 3, "x")[:-2] + "!!")
    search, _ = params.parse_search({"collections": "a, b,a", "ids": ["x"], "limit": 5})
    assert (search.collections, search.ids, search.limit) == (("a", "b"), ("x",), 5)
    with pytest.raises(params.BadParameter, match="^ids: "):
        params.parse_search({"ids": [1, 2]})


def test_boxes_and_periods_meet_across_the_antimeridian():
    pacific = (170.0, -20.0, -170.0, -10.0)
    assert boxes_intersect(pacific, (175, -15, 179, -12)) and boxes_intersect(pacific, (-179, -15, -175, -12))
    assert boxes_intersect(pacific, (179, -15, -179, -12))
    assert not boxes_intersect(pacific, (150, -15, 160, -12)) and not boxes_intersect(pacific, (-160, -15, 0, -12))
    assert not boxes_intersect(pacific, (175, 0, 179, 5))
    day = dt.datetime(2016, 1, 1, tzinfo=UTC)
    assert intervals_intersect((day, day), (None, day)) and not intervals_intersect(
        (day, day), (None, day - dt.timedelta(1))
    )
    assert intervals_intersect((None, None), (day, day))


def test_cube_description_and_offline_validation():
    cube = describe_dataset(grid_dataset(Grid((170, 190), (-20, -10), "2017-01-01", days=4)))
    assert cube.dimensions["time"] == {
        "type": "temporal",
        "extent": ["2017-01-01T00:00:00Z", "2017-01-04T00:00:00Z"],
        "step": "P1D",
    }
    assert cube.dimensions["lon"]["extent"] == [170.5, 189.5] and cube.variables["sm"]["unit"] == "m3 m-3"

    item = pystac.Item("x", {"type": "Point", "coordinates": [0, 0]}, [0, 0, 0, 0], dt.datetime(2017, 1, 1), {})
    item.stac_extensions.append("https://stac-extensions.github.io/datacube/v2.2.0/schema.json")
    item.properties["cube:dimensions"] = cube.dimensions
    assert len(validate(item.to_dict())) == 2
    item.properties["cube:dimensions"] = {"lon": {"type": "spatial", "axis": "x"}}  # no extent: invalid
    with pytest.raises(STACValidationError):
        validate(item.to_dict())
    item.stac_extensions = ["https://stac-extensions.github.io/eo/v1.1.0/schema.json"]  # not vendored: no download
    with pytest.raises(Exception, match="eo/v1.1.0.*not vendored"):
        validate(item.to_dict())
