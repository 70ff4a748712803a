"""The one parser of the subset front doors (pure: no database)."""

import pandas as pd
import pytest

from portal import extents
from portal.subsets import core, params


@pytest.mark.parametrize(
    ("kind", "sent", "hint"),
    [
        ("subset", "format", "f"),
        ("subset", "datetime", "time"),
        ("subset", "bbx", "bbox"),
        ("point", "longitude", "lon"),
        ("area", "vars", "variables"),
        ("subset", "time-stride", "time_stride"),
        ("subset", "fromat", "f"),
        ("point", "latitdue", "lat"),
    ],
)
def test_the_api_refuses_an_unknown_parameter_naming_it_and_the_right_one(kind, sent, hint):
    with pytest.raises(params.UnknownParameter) as err:
        params.parse_api(
            kind, {sent: "x", "lon": "1", "lat": "2", "bbox": "0,0,1,1"} if kind != "subset" else {sent: "x"}
        )
    assert err.value.field == sent
    assert f"did you mean {hint!r}" in str(err.value)


@pytest.mark.parametrize(
    ("sent", "hint"),
    [("parameter_names", "parameter-name"), ("time", "datetime"), ("format", "f"), ("parameter-nam", "parameter-name")],
)
def test_edr_refuses_an_unknown_parameter_naming_the_edr_one(sent, hint):
    with pytest.raises(params.UnknownParameter) as err:
        params.parse_edr("position", {"coords": "POINT(1 2)", sent: "et"})
    assert err.value.field == sent
    assert f"did you mean {hint!r}" in str(err.value)


def test_an_unknown_parameter_without_a_near_name_lists_the_accepted_ones():
    with pytest.raises(params.UnknownParameter, match="accepted: version, file, variables"):
        params.parse_api("subset", {"zzzzzz": "1"})


@pytest.mark.parametrize(
    "text",
    [
        "2001-02-03T04:05:06Z",
        "2001-02-03T12:05:06+08:00",
        "2001-02-03T12:05:06+0800",
        "2001-02-03 04:05:06Z",
        "2001-02-03T04:05:06.000Z",
    ],
)
def test_times_with_z_or_an_offset_mean_the_same_instant(text):
    start, end = extents.parse_period(f"{text}/..", "time")
    assert start == pd.Timestamp("2001-02-03T04:05:06") and end is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2001-02", ("2001-02", "2001-02")),
        ("2001/2002-06", ("2001", "2002-06")),
        ("../2001-02-03", (None, "2001-02-03")),
        ("2001-02-03/", ("2001-02-03", None)),
        ("/2001", (None, "2001")),
        ("../..", None),
        ("", None),
    ],
)
def test_periods_are_instants_or_intervals_with_open_ends(text, expected):
    assert extents.parse_period(text, "time") == expected


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "2001-13-01",
        "2001-02-03T25:00Z",
        "03/02/2001/x",
        "..",
        "20010203T",
        "2001-02-03T04:05:06 UTC",
        "1e10",
    ],
)
def test_a_bad_time_is_refused_naming_the_parameter(text):
    with pytest.raises(core.SubsetError) as err:
        extents.parse_period(text, "datetime", error=core.SubsetError)
    assert err.value.field == "datetime"


def test_api_and_edr_read_the_same_time_the_same_way():
    api = params.parse_api("subset", {"time": "2001-01-01T00:00:00Z/2001-01-31"})
    edr = params.parse_edr("cube", {"bbox": "0,0,1,1", "datetime": "2001-01-01T00:00:00Z/2001-01-31"})
    assert api.request.time == edr.request.time


def test_edr_queries_carry_the_equivalent_api_parameters():
    query = params.parse_edr(
        "area",
        {"coords": "POLYGON((0 0,1 0,1 1,0 0))", "parameter-name": "et,sm", "datetime": "2001/2002", "f": "NetCDF"},
        file="grid.nc",
    )
    again = params.parse_api(query.kind, query.params)
    assert again.request.geometry.equals(query.request.geometry)
    assert (again.request.variables, again.request.time, again.request.format) == (
        query.request.variables,
        query.request.time,
        query.request.format,
    )
    assert query.params["file"] == "grid.nc" and query.params["variables"] == "et,sm"


@pytest.mark.parametrize(
    ("field", "door", "query_type", "public"),
    [
        ("format", "api", "subset", "f"),
        ("time", "edr", "cube", "datetime"),
        ("variables", "edr", "cube", "parameter-name"),
        ("bbox", "edr", "area", "coords"),
        ("bbox", "edr", "cube", "bbox"),
        ("lat", "edr", "position", "coords"),
        ("bbox", "api", "subset", "bbox"),
    ],
)
def test_errors_name_the_parameter_as_the_front_door_spells_it(field, door, query_type, public):
    assert params.public_name(field, door, query_type) == public


def test_a_series_format_error_names_f():
    with pytest.raises(core.SubsetError) as err:
        params.parse_api("point", {"lon": "1", "lat": "2", "f": "geotiff"})
    assert err.value.field == "f"


@pytest.mark.parametrize("bbox", ["1,2,3", "a,b,c,d", "nan,0,1,1", "0,0,inf,1"])
def test_a_malformed_bbox_is_refused(bbox):
    with pytest.raises(core.SubsetError) as err:
        params.parse_api("subset", {"bbox": bbox})
    assert err.value.field == "bbox"


def test_estimate_is_a_flag_not_a_kept_parameter():
    query = params.parse_api("subset", {"bbox": "0,0,1,1", "estimate": "1"})
    assert query.estimate and "estimate" not in query.params and query.params["f"] == "netcdf"
