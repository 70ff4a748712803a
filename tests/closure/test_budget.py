"""The closure computation against an independent one, on a SYNTHETIC budget (pure: no database)."""

import numpy as np
import pandas as pd
import pytest

from portal.closure import budget
from tests.closure.synthetic import AREAS, BASINS, REGIONS, terms

pytestmark = pytest.mark.fast


def by_hand(p, et, r, s):
    """Residual and statistics of one basin with explicit loops (numpy arrays, one per term)."""
    n = len(s)
    net = p - et - r
    ds = np.full(n, np.nan)
    for t in range(1, n - 1):
        ds[t] = (s[t + 1] - s[t - 1]) / 2.0
    res = net - ds
    ok = np.isfinite(res)
    a, b = ds[ok], net[ok]
    e = b - a
    return res, {
        "n": int(ok.sum()),
        "mean_residual": e.mean(),
        "residual_std": np.sqrt(np.mean((e - e.mean()) ** 2)),
        "rmse": np.sqrt(np.mean(e**2)),
        "r": np.corrcoef(a, b)[0, 1],
        "std_ratio": a.std() / b.std(),
        "slope": np.sum((b - b.mean()) * (a - a.mean())) / np.sum((b - b.mean()) ** 2),
    }


def test_basin_residual_and_statistics_match_an_independent_computation():
    t = terms()
    result = budget.closure(t["p"], t["et"], t["r"], t["s"])
    assert list(result.statistics.index) == list(BASINS)
    for basin in BASINS:
        res, stats = by_hand(*(t[k][basin].to_numpy() for k in ("p", "et", "r", "s")))
        np.testing.assert_allclose(result.residual[basin].to_numpy(), res, rtol=1e-12, equal_nan=True)
        row = result.statistics.loc[basin]
        assert row["n"] == stats["n"] == len(t["s"]) - 2 - 5  # the ends and the gap's 3 months and 2 neighbours
        for key in budget.STATISTICS[1:]:
            assert row[key] == pytest.approx(stats[key], rel=1e-9), key
        # the synthetic storage integrates the budget: dS/dt follows P - ET - R
        assert row["r"] > 0.5


def test_region_closure_is_the_area_weighted_basins():
    t = terms(1)
    attributes = pd.DataFrame(
        {"continent": [REGIONS[b] for b in BASINS], "area_km2": [AREAS[b] for b in BASINS]}, index=list(BASINS)
    )
    result = budget.region_closure(t["p"], t["et"], t["r"], t["s"], attributes)
    assert list(result.residual.columns) == ["North", "South", budget.ALL_BASINS]
    w = np.array([AREAS["B1"], AREAS["B2"]])
    mean = lambda k: (t[k][["B1", "B2"]].to_numpy() * w).sum(axis=1) / w.sum()  # noqa: E731
    res, stats = by_hand(mean("p"), mean("et"), mean("r"), mean("s"))
    np.testing.assert_allclose(result.residual["North"].to_numpy(), res, rtol=1e-9, equal_nan=True)
    assert result.statistics.loc["North", "rmse"] == pytest.approx(stats["rmse"], rel=1e-9)
    # "All basins" leaves out B4 (no region) and weighs B1, B2, B3 by area
    w3 = np.array([AREAS[b] for b in ("B1", "B2", "B3")])
    net3 = ((t["p"] - t["et"] - t["r"])[["B1", "B2", "B3"]].to_numpy() * w3).sum(axis=1) / w3.sum()
    net3[20:23] = np.nan  # a month counts only where every term is present (the storage gap)
    np.testing.assert_allclose(result.net[budget.ALL_BASINS].to_numpy(), net3, rtol=1e-12)


def test_a_basin_missing_from_one_term_is_left_out_and_none_is_an_error():
    t = terms()
    result = budget.closure(t["p"], t["et"].drop(columns="B2"), t["r"], t["s"])
    assert "B2" not in result.statistics.index and len(result.statistics) == len(BASINS) - 1
    with pytest.raises(ValueError, match="no basin"):
        budget.closure(t["p"][["B1"]], t["et"][["B2"]], t["r"], t["s"])


def test_short_records_get_no_scores_and_records_are_json_safe():
    t = {k: v.iloc[:20] for k, v in terms().items()}
    result = budget.closure(t["p"], t["et"], t["r"], t["s"])
    rows = budget.records(result.statistics)
    assert rows[0]["n"] == 18 and rows[0]["rmse"] is None and rows[0]["residual_std"] is None
    series = budget.series(result, "B1")
    assert series["time"][0] == "2003-01" and series["residual"][0] is None and len(series["dsdt"]) == 20
    with pytest.raises(KeyError):
        budget.series(result, "nope")


def test_tables_from_the_file_layout_and_long_observations():
    from tests.closure.synthetic import tws_file

    t = terms()
    table = budget.basin_table(tws_file(t), "tws_jpl")
    pd.testing.assert_frame_equal(table, t["s"], check_freq=False)
    long = t["p"].stack().rename("value").reset_index()
    long.columns = ["time", "station", "value"]
    long["variable"] = "p_era5land"
    back = budget.long_to_table(long, "p_era5land")
    np.testing.assert_allclose(back.to_numpy(), t["p"].to_numpy())
    assert budget.long_to_table(long, "other").empty
