"""Leakage test of the TWS held-out splits: change the storage of the years one fold holds out, and nothing
fitted for that fold may change (the target's baseline mean, climatology and trend, the model's trees and its
predictions for the training rows and for the held-out rows).

Run on the synthetic twin of tests/products/test_tws_rec.py (4 basins, 1990-2020, GRACE months from 2002-04
with the 2017-07..2018-05 gap), not the real basins: it needs only the splitting and fitting, and takes seconds.
Before issue 16 the statistics were fitted on every month before the year loop (``variants()``), so a held-out
year shaped its own target and its fold's training targets: this test failed there.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from products.generators import tws_rec
from tests.products.test_tws_rec import twin_observations

KWARGS = {"params": {"n_estimators": 20}, "seed": 1}  # few trees: the trees are compared, not scored


@pytest.fixture(scope="module")
def twin():
    obs, _ = twin_observations(n_basins=4, seed=5)
    return obs


@pytest.fixture(scope="module")
def unchanged(twin):
    """The held-out folds on the unchanged twin, per (split, variant), computed once."""
    inputs = tws_rec.model_inputs(twin)
    results = {
        (split, variant): tws_rec.held_out(inputs, "tws_jpl", variant, split=split, **KWARGS)
        for split in tws_rec.SPLITS
        for variant in tws_rec.VARIANTS
    }
    return inputs, results


def perturbed(obs: pd.DataFrame, solution: str, years, seed: int = 0) -> pd.DataFrame:
    """The storage values of ``years`` shuffled and raised by 100 mm (the predictors untouched)."""
    out = obs.copy()
    rows = (out["variable"] == solution).to_numpy() & pd.DatetimeIndex(out["time"]).year.isin(list(years))
    values = out.loc[rows, "value"].to_numpy()
    out.loc[rows, "value"] = np.random.default_rng(seed).permutation(values) + 100.0
    return out


@pytest.mark.parametrize("variant", tws_rec.VARIANTS)
@pytest.mark.parametrize(
    ("split", "test_years"),
    [
        ("year_block_held_out", (2005, 2006, 2007)),  # inside the 2004-2009 baseline: the baseline is buffered
        ("year_block_held_out", (2014, 2015, 2016)),
        ("year_held_out", (2006,)),
        ("year_held_out", (2012,)),
    ],
)
def test_changing_the_held_out_storage_changes_nothing_fitted_for_the_fold(twin, unchanged, split, test_years, variant):
    inputs, results = unchanged
    before = results[split, variant]
    after = tws_rec.held_out(
        tws_rec.model_inputs(perturbed(twin, "tws_jpl", test_years)), "tws_jpl", variant, split=split, **KWARGS
    )
    (a,) = [f for f in before.folds if f.test_years == test_years]
    (b,) = [f for f in after.folds if f.test_years == test_years]
    # the target's statistics
    pd.testing.assert_series_equal(a.statistics.mean, b.statistics.mean)
    pd.testing.assert_frame_equal(a.statistics.climatology, b.statistics.climatology)
    pd.testing.assert_series_equal(a.statistics.slope, b.statistics.slope)
    pd.testing.assert_series_equal(a.statistics.intercept, b.statistics.intercept)
    assert a.statistics.reference == b.statistics.reference
    # the model: same training rows, same trees and parameters, same predictions for training and held-out rows
    np.testing.assert_array_equal(a.train_rows, b.train_rows)
    assert a.model.booster_.model_to_string() == b.model.booster_.model_to_string()
    assert a.model.get_params() == b.model.get_params()
    x = inputs.table.loc[before.rows, list(tws_rec.FEATURES)]
    np.testing.assert_array_equal(a.model.predict(x.iloc[a.train_rows]), b.model.predict(x.iloc[b.train_rows]))
    np.testing.assert_array_equal(before.sim[a.test_rows], after.sim[b.test_rows])
    # the change did reach the held-out targets (the test would prove nothing otherwise)
    assert len(a.test_rows) and not np.allclose(before.obs[a.test_rows], after.obs[b.test_rows])


def test_the_excluded_years_of_a_block_are_its_years_and_the_buffer(unchanged):
    result = unchanged[1]["year_block_held_out", "anomaly"]
    fold = next(f for f in result.folds if f.test_years == (2005, 2006, 2007))
    assert fold.excluded_years == tuple(range(2003, 2010))
    assert fold.statistics.reference.startswith("all fitted months")  # 2004-2009 all excluded: no baseline left
    years = result.rows.get_level_values("time").year.to_numpy()
    assert not set(years[fold.train_rows]) & set(fold.excluded_years)
