"""Leakage tests of the soil-moisture ML-DA splits: change the target values of what a split holds out, and
nothing fitted for it may change.

* ``twin_cv``: the labels (hence the three products) of the pixels one fold holds out -> that fold's model
  (trees, parameters, training rows, predictions for its training rows and for the held-out rows) and the TC
  statistics of every other pixel are unchanged.
* ``twin_insitu``: the in-situ series of the validation pixels -> the labels, the TC table, every model, the
  nudging gains and the ML-DA series are unchanged.
* ``real_withheld_months`` / ``real_withheld``: the withheld retrievals -> the background (a leave-year-out
  climatology, fitted on the assimilated retrievals only since issue 16), the nudged series and the masks are
  unchanged. Before issue 16 the background was fitted on every retrieval, withheld ones included: the last
  test shows that this check catches it.

Run on a small synthetic twin (20 pixels, two years, 20 trees) and a synthetic retrieval table: seconds.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from products.generators import sm_mlda
from products.generators.twins import sm_mlda as sm_mlda_twin

KWARGS = {"n_splits": 3, "seed": 1, "params": {"n_estimators": 20}, "memory_days": 3.0}


@pytest.fixture(scope="module")
def twin():
    return sm_mlda_twin.make_twin(20, 730, seed=7)


@pytest.fixture(scope="module")
def before(twin):
    return sm_mlda_twin.run_twin(twin, **KWARGS)


def shuffled(values: np.ndarray, rows: np.ndarray, offset: float, seed: int = 0) -> np.ndarray:
    """``values`` with the finite values of ``rows`` shuffled in time and raised by ``offset`` (gaps kept)."""
    out = values.copy()
    rng = np.random.default_rng(seed)
    for i in np.flatnonzero(rows):
        ok = np.isfinite(out[i])
        out[i, ok] = rng.permutation(out[i, ok]) + offset
    return out


def assert_same_model(a, b, x_rows):
    assert a.booster_.model_to_string() == b.booster_.model_to_string()
    assert a.get_params() == b.get_params()
    np.testing.assert_array_equal(a.predict(x_rows), b.predict(x_rows))


def test_changing_the_labels_of_a_held_out_fold_changes_nothing_fitted_for_that_fold(twin, before):
    fit = before.fit
    n_t = twin.truth.shape[1]
    fold_of_pixel = fit.fold.reshape(-1, n_t)[:, 0]
    k = 0
    held = fold_of_pixel == k
    assert held.sum() >= 2
    offsets = {"passive": 0.05, "active": 8.0, "reanalysis": 0.04}
    products = {name: shuffled(v, held, offsets[name], seed=i) for i, (name, v) in enumerate(twin.products.items())}
    after = sm_mlda_twin.run_twin(dataclasses.replace(twin, products=products), **KWARGS)
    # the change reached the held-out fold's labels (the test would prove nothing otherwise)
    assert not np.allclose(before.labels.labels[held], after.labels.labels[held], equal_nan=True)
    # the TC statistics and labels of every other pixel
    pd.testing.assert_frame_equal(before.labels.table[~held], after.labels.table[~held])
    np.testing.assert_array_equal(before.labels.labels[~held], after.labels.labels[~held])
    # the fold's model: same training rows, trees, parameters, predictions for training and held-out rows
    np.testing.assert_array_equal(fit.fold_train_rows[k], after.fit.fold_train_rows[k])
    x = sm_mlda.add_features(twin.forcing)[list(sm_mlda.FEATURES)]
    assert_same_model(fit.fold_models[k], after.fit.fold_models[k], x.iloc[fit.fold_train_rows[k]])
    rows = fit.fold == k
    np.testing.assert_array_equal(fit.cv_pred[rows], after.fit.cv_pred[rows])
    np.testing.assert_array_equal(fit.fold[rows], after.fit.fold[rows])
    # the cross-fitted ML series at the held-out pixels (the member of the independent TC triplet) is unchanged
    np.testing.assert_array_equal(fit.cross_fitted()[rows], after.fit.cross_fitted()[rows])


def test_changing_the_in_situ_series_changes_nothing_fitted(twin, before):
    val = (twin.pixels["role"] == "validation").to_numpy()
    after = sm_mlda_twin.run_twin(dataclasses.replace(twin, insitu=shuffled(twin.insitu, val, 0.1)), **KWARGS)
    assert after.validation["ml_da"]["median"]["ubrmse"] != before.validation["ml_da"]["median"]["ubrmse"]
    pd.testing.assert_frame_equal(before.labels.table, after.labels.table)
    np.testing.assert_array_equal(before.labels.labels, after.labels.labels)
    x = sm_mlda.add_features(twin.forcing)[list(sm_mlda.FEATURES)]
    assert_same_model(before.fit.model, after.fit.model, x)
    for a, b in zip(before.fit.fold_models, after.fit.fold_models, strict=True):
        assert_same_model(a, b, x.iloc[:500])
    pd.testing.assert_frame_equal(before.gain, after.gain)
    for name in ("ml", "ml_da", "obs_rescaled"):
        np.testing.assert_array_equal(before.series[name], after.series[name])
    assert before.tc_gain_bias == after.tc_gain_bias


def retrievals(n_stations: int = 5, years: int = 3, seed: int = 2) -> pd.DataFrame:
    """(station x day) % saturation: a seasonal cycle plus an AR(1) anomaly, retrieved on 60 % of the days."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2010-01-01", periods=365 * years, freq="D")
    anomaly = np.zeros((n_stations, len(days)))
    for t in range(1, len(days)):
        anomaly[:, t] = 0.9 * anomaly[:, t - 1] + rng.normal(0, 3, n_stations)
    season = 50 + 15 * np.sin(2 * np.pi * days.dayofyear.to_numpy() / 365.25)
    values = season + anomaly + rng.normal(0, 2, anomaly.shape)
    return pd.DataFrame(
        np.where(rng.random(values.shape) < 0.6, values, np.nan),
        index=[f"p{i}" for i in range(n_stations)],
        columns=days,
    )


def check(obs, block, background=sm_mlda.climatology_background):
    return sm_mlda.withheld_check(obs, background, block=block, gain=0.6, memory_days=3.0, fraction=0.2, min_n=10)


@pytest.mark.parametrize("block", sm_mlda.WITHHELD_BLOCKS)
def test_changing_the_withheld_retrievals_changes_nothing_fitted(block):
    obs = retrievals()
    a = check(obs, block)
    changed = obs.copy()
    changed[a.withheld] = shuffled(obs.where(a.withheld).to_numpy(), np.ones(len(obs), bool), 10.0)
    b = check(changed, block)
    assert not np.allclose(obs.to_numpy()[a.withheld.to_numpy()], changed.to_numpy()[a.withheld.to_numpy()])
    for name in ("withheld", "buffer", "assimilated", "background", "analysis"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert a.results["nudged"]["pooled"]["rmse"] != b.results["nudged"]["pooled"]["rmse"]


def test_a_background_fitted_on_every_retrieval_would_fail_this_check():
    """The pre-issue-16 background (a climatology of all retrievals, withheld ones included) leaks."""
    obs = retrievals()
    a = check(obs, "month", sm_mlda.climatology_background(obs))
    changed = obs.copy()
    changed[a.withheld] = obs[a.withheld] + 10.0
    b = check(changed, "month", sm_mlda.climatology_background(changed))
    assert not np.allclose(a.background.to_numpy(), b.background.to_numpy(), equal_nan=True)
