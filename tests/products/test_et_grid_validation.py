"""The gridded ET checked at the towers' held-out months, and what its file says (no database).

The grid comes from SYNTHETIC forcing (tests.products.test_chunked) and a SYNTHETIC model; the
tower rows are made here. What is checked is the sampling (the cell holding each tower), the
monthly matching (only the months the final model never saw) and the file's labels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from products.generators import et_grid
from tests.products.test_chunked import small_land, synthetic_forcing, synthetic_model


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """SYNTHETIC: three days of 3-hourly forcing in two months (2016-01-31, 2016-02-01, 2016-02-02)."""
    lat, lon = np.arange(-44.5, -14.5, 1.0), np.arange(100.5, 150.5, 1.0)
    times = pd.date_range("2016-01-31", periods=24, freq="3h")
    land = small_land((lat.size, lon.size))
    path = tmp_path_factory.mktemp("grid") / "et.nc"
    et_grid.predict_et_grid(
        synthetic_model(), synthetic_forcing(lat, lon, times, land), path, attrs={"data_kind": "synthetic"}
    )
    return path, land, lat, lon


def land_point(land, lat, lon, k: int) -> tuple[float, float, int, int]:
    """The k-th land cell, and a point inside it off its centre (0.3 degrees north-east)."""
    i, j = np.argwhere(land)[k]
    return lat[i] + 0.3, lon[j] + 0.3, i, j


def test_the_file_says_which_model_made_it_and_that_days_are_utc(grid):
    path = grid[0]
    with xr.open_dataset(path) as ds:
        assert ds.attrs["data_kind"] == "synthetic"
        assert "five-driver LightGBM tower model" in ds.attrs["model"] and "not the stage-2 fusion" in ds.attrs["model"]
        assert (
            ds.attrs["day_definition"] == et_grid.DAY_DEFINITION and "UTC calendar days" in ds.attrs["day_definition"]
        )
        assert "not local solar days" in ds.attrs["comment"] and "UTC calendar day" in ds["et"].attrs["comment"]


def test_each_tower_reads_the_cell_that_holds_it(grid):
    path, land, lat, lon = grid
    a_lat, a_lon, i, j = land_point(land, lat, lon, 0)
    b_lat, b_lon, k, m = land_point(land, lat, lon, 40)
    points = pd.DataFrame({"station": ["A", "B", "outside"], "lat": [a_lat, b_lat, 10.0], "lon": [a_lon, b_lon, 120.0]})
    daily = et_grid.sample_at_points(path, points)
    with xr.open_dataset(path) as ds:
        expected_a = ds["et"].values[:, i, j].astype("float64")
        expected_b = ds["et"].values[:, k, m].astype("float64")
        days = ds["time"].values
    assert set(daily["station"]) == {"A", "B"}  # the point north of the grid has no cell
    got = daily[daily["station"] == "A"].set_index("time")["et_grid"]
    np.testing.assert_allclose(got.to_numpy(), expected_a[np.isfinite(expected_a)])
    np.testing.assert_array_equal(got.index.to_numpy(), days[np.isfinite(expected_a)])
    np.testing.assert_allclose(daily.loc[daily["station"] == "B", "et_grid"], expected_b[np.isfinite(expected_b)])


def test_only_held_out_months_are_scored_with_the_mean_of_the_grid_days(grid):
    path, land, lat, lon = grid
    a_lat, a_lon, _, _ = land_point(land, lat, lon, 0)
    daily = et_grid.sample_at_points(path, pd.DataFrame({"station": ["A"], "lat": [a_lat], "lon": [a_lon]}))
    predictions = pd.DataFrame(
        {
            "station": "A",
            "time": pd.to_datetime(["2015-12-01", "2016-01-01", "2016-02-01"]),
            "et_obs": [1.0, 2.0, 3.0],
            "is_validation": [True, False, True],  # January was a training month of the final model
            "land_cover": "ENF",
        }
    )
    frame = et_grid.grid_at_held_out_towers(daily, predictions)
    february = daily[daily["time"] >= "2016-02-01"]["et_grid"]
    assert frame["time"].tolist() == [pd.Timestamp("2016-02-01")]
    assert frame["n_days"].tolist() == [len(february)] and len(february) == 2
    assert frame["et_grid"].iloc[0] == pytest.approx(february.mean()) and frame["et_obs"].iloc[0] == 3.0
    assert frame["land_cover"].tolist() == ["ENF"]


def test_no_overlap_gives_no_rows(grid):
    path, land, lat, lon = grid
    a_lat, a_lon, _, _ = land_point(land, lat, lon, 0)
    daily = et_grid.sample_at_points(path, pd.DataFrame({"station": ["A"], "lat": [a_lat], "lon": [a_lon]}))
    predictions = pd.DataFrame(
        {"station": "A", "time": pd.to_datetime(["2014-01-01"]), "et_obs": [1.0], "is_validation": [True]}
    )
    assert et_grid.grid_at_held_out_towers(daily, predictions).empty


def test_the_pipeline_stores_the_grid_rows_and_says_when_there_is_no_overlap(grid):
    from types import SimpleNamespace

    from products.pipelines.et_fusion import GRID_SPLIT, _grid_validation

    path, land, lat, lon = grid
    points = [land_point(land, lat, lon, k) for k in (0, 40)]
    stations = pd.DataFrame({"code": ["A", "B"], "lat": [p[0] for p in points], "lon": [p[1] for p in points]})
    months = pd.to_datetime(["2016-01-01", "2016-02-01"])
    predictions = pd.DataFrame(
        {
            "station": ["A", "A", "B", "B"],
            "time": [*months, *months],
            "et_obs": [1.0, 2.0, 1.5, 2.5],
            "is_validation": True,
            "land_cover": ["ENF", "ENF", "GRA", "GRA"],
        }
    )
    rows, info = _grid_validation(path, stations, SimpleNamespace(predictions=predictions), "synthetic")
    assert info["status"] == "validated" and info["towers"] == 2 and info["months"] == 4
    pooled = next(r for r in rows if r.scope == "pooled")
    assert pooled.split == GRID_SPLIT and pooled.variable == "et_grid" and pooled.units == "mm d-1"
    assert pooled.label == "synthetic: all" and pooled.metrics["n"] == 4 == info["n"]
    assert {r.label for r in rows if r.scope == "site"} == {"A", "B"}

    earlier = predictions.assign(time=predictions["time"] - pd.DateOffset(years=3))
    rows, info = _grid_validation(path, stations, SimpleNamespace(predictions=earlier), "real")
    assert rows == [] and info["status"] == "no_overlap" and info["forcing_days"] == ["2016-01-31", "2016-02-02"]
    assert info["held_out_tower_months"] == ["2013-01", "2013-02"] and "not validated" in info["reason"]
