"""Triple collocation on synthetic products with known truth and errors (no database).

pytesmo is not installed in the project environment, so the independent check is a
difference-notation implementation (Stoffelen 1998; Gruber et al. 2016, eq. 4) written here.
"""

import numpy as np
import pytest

from products.methods import triple_collocation as tc

VAR_T = 4.0
# i = a_i + b_i * t + e_i
A = np.array([0.3, 2.0, -1.0])
B = np.array([1.0, 0.5, 1.5])
ERR_VAR = np.array([0.25, 0.09, 1.0])  # in each product's own units


def _products(n, seed, err_var=ERR_VAR):
    rng = np.random.default_rng(seed)
    t = rng.normal(10.0, np.sqrt(VAR_T), n)
    xyz = A[:, None] + B[:, None] * t + rng.normal(0, 1, (3, n)) * np.sqrt(err_var)[:, None]
    return t, xyz


def _expected():
    err_in_x = ERR_VAR * (B[0] / B) ** 2
    r2 = B**2 * VAR_T / (B**2 * VAR_T + ERR_VAR)
    return err_in_x, r2


def test_tc_recovers_known_error_variances():
    _, (x, y, z) = _products(100_000, seed=42)
    res = tc.tc_metrics(x, y, z)
    err_in_x, _ = _expected()  # 0.25, 0.36, 0.444
    assert res.n == 100_000 and not res.too_few_samples
    np.testing.assert_allclose(res.err_var, err_in_x, rtol=0.05)
    np.testing.assert_allclose(res.err_std, np.sqrt(err_in_x), rtol=0.025)
    np.testing.assert_allclose(res.beta, B[0] / B, rtol=0.01)
    assert not res.negative_error_variance.any() and not res.r2_out_of_range.any()


def test_tc_correlation_equals_known_correlation_with_truth():
    t, (x, y, z) = _products(100_000, seed=7)
    res = tc.tc_metrics(x, y, z)
    _, r2 = _expected()
    known = np.sqrt(VAR_T * B**2 / (VAR_T * B**2 + ERR_VAR))  # sqrt(var_t / (var_t + var_e)) per product
    np.testing.assert_allclose(known, np.sqrt(r2))
    np.testing.assert_allclose(res.tcr, known, atol=0.004)
    # and the sample correlation with the (here known) truth agrees as well
    np.testing.assert_allclose(res.tcr, [np.corrcoef(p, t)[0, 1] for p in (x, y, z)], atol=0.004)


def test_tc_snr_db_from_known_signal_and_noise():
    _, (x, y, z) = _products(100_000, seed=3)
    res = tc.tc_metrics(x, y, z)
    known_db = 10 * np.log10(B**2 * VAR_T / ERR_VAR)  # x: 12.04 dB, y: 10.46 dB, z: 9.54 dB
    np.testing.assert_allclose(res.snr_db, known_db, atol=0.15)
    np.testing.assert_allclose(res.r2, 1 / (1 + 10 ** (-res.snr_db / 10)))  # R2 = s / (1 + s)


def _difference_notation(x, y, z):
    """Independent TC: rescale y, z to x with instrumental-variable betas, then the difference notation."""
    d = np.vstack([x, y, z]) - np.vstack([x, y, z]).mean(axis=1, keepdims=True)
    n = d.shape[1]
    cov = lambda a, b: float(np.dot(a, b) / (n - 1))  # noqa: E731
    xs, ys, zs = d[0], d[1] * cov(d[0], d[2]) / cov(d[1], d[2]), d[2] * cov(d[0], d[1]) / cov(d[2], d[1])
    err = np.array([cov(xs - ys, xs - zs), cov(ys - xs, ys - zs), cov(zs - xs, zs - ys)])
    signal = np.array([cov(s, s) for s in (xs, ys, zs)]) - err
    return err, signal / (signal + err)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tc_matches_an_independent_difference_notation_implementation(seed):
    _, xyz = _products(500, seed=seed, err_var=np.array([0.5, 0.3, 2.0]))
    xyz[1, ::17] = np.nan  # dropped triples
    keep = np.isfinite(xyz).all(axis=0)
    res = tc.tc_metrics(*xyz)
    err, r2 = _difference_notation(*xyz[:, keep])
    assert res.n == keep.sum()
    np.testing.assert_allclose(res.err_var, err, rtol=1e-10)
    np.testing.assert_allclose(res.r2, r2, rtol=1e-10)


def test_tc_flags_a_negative_error_variance_instead_of_clipping():
    flagged = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        t = rng.normal(0, 1, 150)
        x = t + rng.normal(0, 1e-3, t.size)  # near-perfect product: estimate is noise around 0
        y, z = t + rng.normal(0, 1.0, t.size), 2 * t + rng.normal(0, 1.5, t.size)
        res = tc.tc_metrics(x, y, z)
        np.testing.assert_array_equal(res.negative_error_variance, res.err_var < 0)
        if res.negative_error_variance[0]:
            flagged += 1
            assert np.isnan(res.err_std[0]) and res.err_var[0] < 0  # reported, not clipped to 0
            assert res.r2_out_of_range[0] and res.r2[0] > 1 and np.isnan(res.tcr[0]) and np.isnan(res.snr_db[0])
            assert not res.valid[0] and res.valid[1:].all()
    assert flagged >= 3


def test_tc_too_few_samples_gives_nan_and_flag():
    _, xyz = _products(300, seed=1)
    xyz[0, 90:] = np.nan  # only 90 complete triples
    res = tc.tc_metrics(*xyz, min_samples=100)
    assert res.too_few_samples and res.n == 90
    assert np.isnan(res.err_var).all() and np.isnan(res.tcr).all() and np.isnan(res.snr_db).all()
    assert not tc.tc_metrics(*xyz, min_samples=50).too_few_samples
    with pytest.raises(ValueError, match="no valid product"):
        tc.merge(*xyz, res)


def test_tc_rejects_series_of_different_length():
    with pytest.raises(ValueError, match="equal length"):
        tc.tc_metrics(np.zeros(10), np.zeros(10), np.zeros(9))


def test_merge_weights_are_inverse_error_variance_and_sum_to_one():
    w = tc.merge_weights([1.0, 2.0, 4.0])
    np.testing.assert_allclose(w, [4 / 7, 2 / 7, 1 / 7])
    np.testing.assert_allclose(tc.merge_weights([1.0, np.nan, 3.0]), [0.75, 0.0, 0.25])
    with pytest.raises(ValueError):
        tc.merge_weights([1.0, -0.1, 2.0])
    # equal to R2 / (1 - R2) weights (METHODS.md) when the error variances are in the same units
    err_in_x, r2 = _expected()
    snr = r2 / (1 - r2)
    np.testing.assert_allclose(tc.merge_weights(err_in_x), snr / snr.sum())


def test_merged_series_has_lower_error_variance_than_each_input():
    t, (x, y, z) = _products(100_000, seed=11)
    res = tc.tc_metrics(x, y, z)
    merged = tc.merge(x, y, z, res)
    assert np.isclose(tc.merge_weights(res.err_var).sum(), 1.0)
    truth_in_x = A[0] + B[0] * t
    err = lambda s: np.var(s - truth_in_x)  # noqa: E731
    rescaled = [res.mean[0] + res.beta[i] * (p - res.mean[i]) for i, p in enumerate((x, y, z))]
    assert err(merged) < min(err(r) for r in rescaled)
    optimum = 1 / np.sum(1 / _expected()[0])
    assert err(merged) == pytest.approx(optimum, rel=0.05)
    assert abs(merged.mean() - x.mean()) < 1e-9  # x's climatology


def test_merge_skips_flagged_products_and_fills_gaps():
    for seed in range(20):
        rng = np.random.default_rng(seed)
        t = rng.normal(0, 1, 150)
        x, y, z = t, t + rng.normal(0, 1.0, t.size), 2 * t + rng.normal(0, 1.5, t.size)
        res = tc.tc_metrics(x, y, z)
        if res.negative_error_variance[0]:
            break
    else:
        pytest.fail("no seed gave a negative error variance")
    z = z.copy()
    z[:5] = np.nan
    merged = tc.merge(x, y, z, res)
    ry, rz = res.mean[0] + res.beta[1] * (y - res.mean[1]), res.mean[0] + res.beta[2] * (z - res.mean[2])
    wy, wz = tc.merge_weights(res.err_var[1:])
    np.testing.assert_allclose(merged[5:], wy * ry[5:] + wz * rz[5:])  # x has no weight
    np.testing.assert_allclose(merged[:5], ry[:5])  # z missing: weights renormalised onto y
