"""Nudging, cross-validation splitters and metric aggregation (no database)."""

import numpy as np
import pandas as pd
import pytest

from products.methods import aggregate, cv, nudging

MODEL = np.array([0.10, 0.20, 0.30, 0.40])
OBS = np.array([0.20, np.nan, 0.10, 0.40])


def test_nudge_with_gain_zero_returns_the_model():
    np.testing.assert_array_equal(nudging.nudge(MODEL, OBS, 0.0), MODEL)


def test_nudge_with_gain_one_returns_obs_only_where_valid():
    np.testing.assert_allclose(nudging.nudge(MODEL, OBS, 1.0), [0.20, 0.20, 0.10, 0.40])


def test_nudge_moves_part_way_and_leaves_missing_obs_untouched():
    out = nudging.nudge(MODEL, OBS, [0.5, 0.5, 0.25, 0.9])
    np.testing.assert_allclose(out, [0.15, 0.20, 0.30 - 0.25 * 0.20, 0.40])
    grid = nudging.nudge(
        np.zeros((2, 3)), np.array([[1.0, np.nan, 1.0], [np.nan, 1.0, 1.0]]), np.array([0.2, 0.4, 0.6])
    )
    np.testing.assert_allclose(grid, [[0.2, 0.0, 0.6], [0.0, 0.4, 0.6]])


def test_repeated_nudging_shrinks_the_error_geometrically():
    x, g = np.array([1.0]), 0.3
    for _ in range(5):
        x = nudging.nudge(x, 0.0, g)
    np.testing.assert_allclose(x, (1 - g) ** 5)


@pytest.mark.parametrize("gain", [-0.01, 1.01, np.nan, [0.5, 2.0, 0.1, 0.1]])
def test_nudge_rejects_gain_outside_unit_interval(gain):
    with pytest.raises(ValueError, match="gain"):
        nudging.nudge(MODEL, OBS, gain)


def test_tc_gain_is_the_optimal_interpolation_weight():
    assert nudging.tc_gain(0.01, 0.03) == pytest.approx(0.25)
    np.testing.assert_allclose(nudging.tc_gain(np.array([1.0, 0.0, 2.0]), np.array([1.0, 1.0, 0.0])), [0.5, 0.0, 1.0])
    with pytest.raises(ValueError):
        nudging.tc_gain(-0.01, 0.03)


def _station_frame(n_stations=12, years=(2016, 2017, 2018), per_year=4):
    rng = np.random.default_rng(0)
    # stations come in neighbouring pairs 0.1 deg apart; pairs are 10 deg apart
    lat = np.repeat(np.arange(n_stations // 2) * 10.0 - 25.0, 2) + np.tile([0.1, 0.2], n_stations // 2)
    lon = np.repeat(np.arange(n_stations // 2) * 10.0 + 3.0, 2) + np.tile([0.1, 0.2], n_stations // 2)
    times = pd.to_datetime([f"{y}-{m:02d}-15" for y in years for m in range(1, per_year + 1)])
    rows = [(f"S{s:02d}", t, lat[s], lon[s]) for s in range(n_stations) for t in times]
    frame = pd.DataFrame(rows, columns=["station", "time", "lat", "lon"])
    return frame.sample(frac=1.0, random_state=1).reset_index(drop=True).assign(v=rng.normal(size=len(rows)))


def _check_station_folds(frame, folds):
    seen = []
    for tr, te in folds:
        assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == len(frame)
        cv.assert_disjoint(frame.station.iloc[tr], frame.station.iloc[te])
        seen.extend(frame.station.iloc[te].unique())
    assert sorted(seen) == sorted(frame.station.unique())  # each station tested exactly once


@pytest.mark.parametrize("n_splits", [4, None])
def test_leave_station_out_tests_each_station_exactly_once(n_splits):
    frame = _station_frame()
    folds = list(cv.leave_station_out(frame.station, n_splits=n_splits))
    assert len(folds) == (4 if n_splits else 12)
    _check_station_folds(frame, folds)


def test_year_held_out_covers_each_year_once():
    frame = _station_frame()
    folds = list(cv.year_held_out(frame.time))
    assert [sorted(frame.time.iloc[te].dt.year.unique()) for _, te in folds] == [[2016], [2017], [2018]]
    for tr, _ in folds:
        assert len(frame.time.iloc[tr].dt.year.unique()) == 2


def test_spatial_blocks_keep_neighbouring_stations_together():
    frame = _station_frame()
    folds = list(cv.spatial_blocks(frame.lat, frame.lon, block_deg=5.0, n_splits=3, seed=0))
    assert len(folds) == 3
    _check_station_folds(frame, folds)
    pair = frame.station.str[1:].astype(int) // 2
    for _, te in folds:
        tested = set(pair.iloc[te])
        # a pair is wholly in the test set when any of its stations is
        assert frame.index[pair.isin(tested)].isin(te).all()
    assert len(np.unique(cv.block_ids(frame.lat, frame.lon, 5.0))) == 6


def test_spatial_blocks_rejects_a_bad_block_size():
    with pytest.raises(ValueError):
        list(cv.spatial_blocks([0.0], [0.0], block_deg=0.0))


def test_assert_disjoint_raises_when_a_station_is_in_train_and_test():
    cv.assert_disjoint(["A", "B"], ["C"])
    with pytest.raises(ValueError, match="B"):
        cv.assert_disjoint(["A", "B", "B"], ["B", "C"])


def _tiny_frame():
    return pd.DataFrame(
        {
            "station": ["A", "A", "A", "B", "B", "B", "C", "C", "D", "D"],
            "cls": ["forest"] * 6 + ["grass"] * 4,
            "sim": [1.0, 2.0, 3.0, 2.0, 2.0, 5.0, 1.0, 4.0, 1.0, np.nan],
            "obs": [1.0, 2.0, 4.0, 1.0, 3.0, 5.0, 2.0, 2.0, 3.0, 3.0],
        }
    )


def test_per_group_matches_a_hand_computation():
    table = aggregate.per_group(_tiny_frame(), "sim", "obs", "station")
    assert list(table.index) == ["A", "B", "C"]  # D has one valid pair < min_n
    assert table.loc["A", "n"] == 3 and table.loc["A", "rmse"] == pytest.approx(np.sqrt(1 / 3))
    assert table.loc["A", "bias"] == pytest.approx(-1 / 3)
    assert table.loc["B", "rmse"] == pytest.approx(np.sqrt(2 / 3)) and table.loc["B", "bias"] == 0.0
    assert table.loc["C", "rmse"] == pytest.approx(np.sqrt(5 / 2)) and table.loc["C", "bias"] == pytest.approx(0.5)
    assert aggregate.median_of_groups(table, "rmse") == pytest.approx(np.sqrt(2 / 3))
    assert aggregate.median_of_groups(table, "bias") == pytest.approx(0.0)


def test_per_class_gives_pooled_scores_station_counts_and_medians():
    table = aggregate.per_class(_tiny_frame(), "sim", "obs", "station", "cls")
    assert list(table.index) == ["forest", "grass"]
    forest, grass = table.loc["forest"], table.loc["grass"]
    assert forest["n"] == 6 and forest["rmse"] == pytest.approx(np.sqrt(3 / 6))  # squared errors 0,0,1,1,1,0
    assert forest["n_stations"] == 2 and forest["median_rmse"] == pytest.approx((np.sqrt(1 / 3) + np.sqrt(2 / 3)) / 2)
    assert grass["n"] == 3 and grass["rmse"] == pytest.approx(np.sqrt(9 / 3))  # errors -1, 2, -2 (D's NaN dropped)
    assert grass["n_stations"] == 1 and grass["median_bias"] == pytest.approx(0.5)
