"""Metrics checked against hydroeval, an independent implementation (no database)."""

import hydroeval as he
import numpy as np
import pytest

from products.methods import metrics


def _he(fn, sim, obs):
    """hydroeval on flattened 1-D arrays (it treats 2-D simulations as several series)."""
    return np.asarray(he.evaluator(fn, np.ravel(sim), np.ravel(obs)), dtype="float64").ravel()


def _random_pair(seed, shape):
    rng = np.random.default_rng(seed)
    obs = rng.gamma(2.0, 1.5, size=shape)
    return obs * rng.uniform(0.5, 1.5) + rng.normal(0, 0.8, size=shape), obs


def _et_like_pair(seed):
    """Monthly ET-like series (mm d-1), 10 years x 12 months, with a seasonal cycle and a biased product."""
    rng = np.random.default_rng(seed)
    month = np.arange(12)
    obs = 2.0 + 1.5 * np.sin(2 * np.pi * (month - 3) / 12) + rng.normal(0, 0.3, size=(10, 12))
    sim = 0.8 * obs + 0.4 + rng.normal(0, 0.4, size=(10, 12))
    return np.clip(sim, 0, None), np.clip(obs, 0.01, None)


PAIRS = [_random_pair(1, 50), _random_pair(2, (7, 9)), _random_pair(3, 3), _et_like_pair(4), _et_like_pair(5)]


@pytest.mark.parametrize("sim,obs", PAIRS)
def test_kge_and_its_components_match_hydroeval(sim, obs):
    np.testing.assert_allclose(metrics.kge(sim, obs), _he(he.kge, sim, obs), rtol=1e-12)


@pytest.mark.parametrize("sim,obs", PAIRS)
def test_kge_prime_matches_hydroeval(sim, obs):
    np.testing.assert_allclose(metrics.kge_prime(sim, obs), _he(he.kgeprime, sim, obs), rtol=1e-12)


@pytest.mark.parametrize("sim,obs", PAIRS)
def test_rmse_nse_and_r_match_hydroeval(sim, obs):
    assert metrics.rmse(sim, obs) == pytest.approx(_he(he.rmse, sim, obs)[0], rel=1e-12)
    assert metrics.nse(sim, obs) == pytest.approx(_he(he.nse, sim, obs)[0], rel=1e-12)
    assert metrics.pearson_r(sim, obs) == pytest.approx(_he(he.kge, sim, obs)[1], rel=1e-12)


@pytest.mark.parametrize("sim,obs", PAIRS)
def test_bias_matches_hydroeval_percent_bias(sim, obs):
    # hydroeval: pbias = 100 * sum(obs - sim) / sum(obs)  =>  mean(sim) - mean(obs) = -pbias / 100 * mean(obs)
    expected = -_he(he.pbias, sim, obs)[0] / 100 * np.mean(obs)
    assert metrics.bias(sim, obs) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("sim,obs", PAIRS)
def test_ubrmse_is_the_rmse_of_anomalies_and_splits_the_rmse(sim, obs):
    anomalies = _he(he.rmse, np.ravel(sim) - np.mean(sim), np.ravel(obs) - np.mean(obs))[0]
    assert metrics.ubrmse(sim, obs) == pytest.approx(anomalies, rel=1e-12)
    assert metrics.ubrmse(sim, obs) ** 2 + metrics.bias(sim, obs) ** 2 == pytest.approx(metrics.rmse(sim, obs) ** 2)


def test_it_drops_pairs_with_nan_in_either_series():
    sim, obs = _random_pair(7, 40)
    sim, obs = sim.copy(), obs.copy()
    sim[[1, 5, 9]] = np.nan
    obs[[2, 5, 30]] = np.nan
    keep = ~(np.isnan(sim) | np.isnan(obs))
    out = metrics.summary(sim, obs)
    assert out["n"] == keep.sum() == 35
    np.testing.assert_allclose(
        [out["kge"], out["r"], out["alpha"], out["beta"]], _he(he.kge, sim[keep], obs[keep]), rtol=1e-12
    )
    assert out["rmse"] == pytest.approx(_he(he.rmse, sim[keep], obs[keep])[0], rel=1e-12)
    assert out["nse"] == pytest.approx(_he(he.nse, sim[keep], obs[keep])[0], rel=1e-12)


def test_a_perfect_match_scores_perfectly():
    _, obs = _et_like_pair(8)
    out = metrics.summary(obs, obs)
    assert out["kge"] == pytest.approx(1) and out["nse"] == pytest.approx(1)
    assert (out["r"], out["alpha"], out["beta"]) == pytest.approx((1, 1, 1))
    assert (out["rmse"], out["bias"], out["ubrmse"]) == pytest.approx((0, 0, 0), abs=1e-12)
    assert metrics.kge_prime(obs, obs) == pytest.approx((1, 1, 1, 1))


def test_it_returns_nan_with_fewer_than_two_valid_pairs():
    sim, obs = np.array([1.0, np.nan, 3.0]), np.array([2.0, 2.0, np.nan])
    out = metrics.summary(sim, obs)
    assert out["n"] == 1 and out["not_meaningful"] == ""
    assert all(np.isnan(v) for k, v in out.items() if k not in ("n", "not_meaningful"))
    assert all(np.isnan(metrics.kge_prime(sim, obs)))


def test_it_rejects_arrays_of_different_shapes():
    with pytest.raises(ValueError, match="same shape"):
        metrics.rmse(np.ones(4), np.ones(5))


def test_summary_equals_the_single_metrics():
    sim, obs = _et_like_pair(9)
    out = metrics.summary(sim, obs)
    assert set(out) == {"n", "kge", "r", "alpha", "beta", "rmse", "bias", "ubrmse", "nse", "not_meaningful"}
    assert out["not_meaningful"] == ""  # ET-like: a positive quantity, KGE means something
    assert out["n"] == sim.size
    assert (out["kge"], out["r"], out["alpha"], out["beta"]) == tuple(metrics.kge(sim, obs))
    assert out["rmse"] == metrics.rmse(sim, obs) and out["ubrmse"] == metrics.ubrmse(sim, obs)
    assert out["bias"] == metrics.bias(sim, obs) and out["nse"] == metrics.nse(sim, obs)


def test_kge_and_beta_of_a_zero_mean_anomaly_are_reasons_not_numbers():
    rng = np.random.default_rng(3)
    obs = rng.normal(0.0, 50.0, 400)
    obs -= obs.mean() - 1e-9  # a detrended anomaly: mean ~ 0 (KGE of ~ -1e10 before)
    sim = obs + rng.normal(0.0, 10.0, 400)
    assert abs(metrics.kge(sim, obs).kge) > 1e3  # what the raw formula gives
    out = metrics.summary(sim, obs)
    assert out["not_meaningful"] == metrics.NEAR_ZERO_MEAN_REASON
    assert np.isnan(out["kge"]) and np.isnan(out["beta"])
    # the metrics that apply stay, unchanged
    assert out["r"] == metrics.pearson_r(sim, obs) and out["nse"] == metrics.nse(sim, obs) > 0.9
    assert out["rmse"] == metrics.rmse(sim, obs) and out["ubrmse"] == metrics.ubrmse(sim, obs)
    assert out["alpha"] == metrics.kge(sim, obs).alpha


def test_a_declared_anomaly_gives_the_reason_whatever_the_sample_mean():
    rng = np.random.default_rng(4)
    obs = rng.normal(30.0, 50.0, 100)  # a held-out block of an anomaly need not average zero
    sim = obs + rng.normal(0.0, 5.0, 100)
    assert metrics.summary(sim, obs)["not_meaningful"] == ""
    out = metrics.summary(sim, obs, anomaly=True)
    assert out["not_meaningful"] == metrics.ZERO_MEAN_ANOMALY and np.isnan(out["kge"]) and np.isnan(out["beta"])
    assert np.isfinite(out["r"]) and np.isfinite(out["nse"])


def test_no_reason_without_pairs_or_for_a_positive_quantity():
    assert metrics.mean_ratio_reason([1.0]) == "" and metrics.mean_ratio_reason([np.nan, np.nan], anomaly=True) == ""
    assert metrics.mean_ratio_reason(np.array([0.2, 0.5, 3.0, 4.0])) == ""
    assert metrics.mean_ratio_reason(np.zeros(5)) == ""  # no spread: every ratio is NaN anyway


def test_per_group_keeps_the_reason_per_station():
    import pandas as pd

    from products.methods.aggregate import per_group

    rng = np.random.default_rng(5)
    a = rng.normal(0.0, 1.0, 50)
    frame = pd.DataFrame(
        {
            "station": ["anom"] * 50 + ["flux"] * 50,
            "obs": np.r_[a - a.mean(), rng.uniform(1, 5, 50)],
        }
    )
    frame["sim"] = frame["obs"] + rng.normal(0.0, 0.1, 100)
    table = per_group(frame, "sim", "obs", "station")
    assert table.loc["anom", "not_meaningful"] and np.isnan(table.loc["anom", "kge"])
    assert table.loc["flux", "not_meaningful"] == "" and table.loc["flux", "kge"] > 0.8
