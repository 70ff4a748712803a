"""products.methods.uncertainty: CF attributes, standard errors and calibration (pure, fast tier)."""

import numpy as np
import pytest
import xarray as xr

from products.methods import uncertainty as u


def test_standard_error_attributes_use_the_cf_modifier_and_the_estimate_units():
    attrs = u.standard_error_attributes(
        {"standard_name": "water_evapotranspiration_flux", "units": "kg m-2 s-1", "long_name": "ET"},
        method="quantile_regression",
    )
    assert attrs["standard_name"] == "water_evapotranspiration_flux standard_error"
    assert attrs["units"] == "kg m-2 s-1"
    assert attrs["coverage_content_type"] == "qualityInformation"
    assert "quantile" in attrs["comment"]
    with pytest.raises(u.UncertaintyError, match="uncertainty method"):
        u.standard_error_attributes({}, method="guess")


def test_link_ancillary_appends_once_and_names_missing_variables():
    ds = xr.Dataset({"sm": ("x", [0.1, 0.2]), "sm_se": ("x", [0.01, 0.02]), "flag": ("x", [0, 1])})
    u.link_ancillary(ds, "sm", "flag")
    u.link_ancillary(ds, "sm", "sm_se", "flag")
    assert ds["sm"].attrs["ancillary_variables"] == "flag sm_se"
    with pytest.raises(u.UncertaintyError, match="nope"):
        u.link_ancillary(ds, "sm", "nope")


def test_member_spread_and_quantile_standard_error():
    members = np.array([[1.0, 2.0, np.nan], [3.0, 2.0, 5.0]])
    se = u.member_spread(members, axis=0)
    assert se[0] == pytest.approx(np.sqrt(2.0))  # |1-3| / sqrt(2)
    assert se[1] == 0.0
    assert np.isnan(se[2])  # one finite member: no spread
    q = u.quantile_standard_error([0.0], [2.0])
    assert q[0] == pytest.approx(1.0, rel=1e-3)  # 16th..84th percentile = +-1 sigma
    with pytest.raises(u.UncertaintyError, match="nominal"):
        u.quantile_standard_error([0.0], [1.0], nominal=1.5)


def test_nudged_error_at_the_optimal_gain_is_the_harmonic_combination():
    sb, so = 0.04, 0.03
    g = sb**2 / (sb**2 + so**2)
    assert u.nudged_error_std(sb, so, g) == pytest.approx(np.sqrt(sb**2 * so**2 / (sb**2 + so**2)))
    assert u.nudged_error_std(sb, so, 0.0) == pytest.approx(sb)


def test_coverage_of_a_true_gaussian_interval_is_nominal_and_of_a_narrow_one_is_not():
    rng = np.random.default_rng(0)
    truth_sd = 2.0
    est = rng.normal(size=20000)
    obs = est + rng.normal(scale=truth_sd, size=est.size)
    right = u.interval_coverage(est, np.full(est.size, truth_sd), obs, split="held_out")
    assert right.measured == pytest.approx(0.90, abs=0.01)
    assert right.calibrated and not right.too_narrow
    narrow = u.interval_coverage(est, np.full(est.size, truth_sd / 2), obs)
    assert narrow.measured < 0.7 and not narrow.calibrated and narrow.too_narrow
    d = right.as_dict()
    assert d["split"] == "held_out" and isinstance(d["n"], int)


def test_coverage_leaves_out_missing_pairs_and_reports_none_when_nothing_is_left():
    c = u.interval_coverage([np.nan], [1.0], [0.0])
    assert c.n == 0 and not c.calibrated
    assert c.as_dict()["measured"] is None
    with pytest.raises(u.UncertaintyError, match="shapes"):
        u.interval_coverage([1.0, 2.0], [1.0], [1.0])


def test_reliability_of_honest_and_overconfident_probabilities():
    rng = np.random.default_rng(1)
    p = rng.uniform(size=20000)
    honest = rng.uniform(size=p.size) < p
    good = u.reliability(p, honest)
    assert good.ece < 0.02 and good.calibrated
    overconfident = u.reliability(np.where(p > 0.5, 1.0, 0.0), honest)
    assert overconfident.ece > 0.2 and not overconfident.calibrated
    assert sum(b["n"] for b in good.bins) == good.n
    with pytest.raises(u.UncertaintyError, match=r"\[0, 1\]"):
        u.reliability([1.5], [1])


def test_summary_entry_needs_a_calibration_or_a_reason():
    cov = u.interval_coverage([0.0] * 40, [1.0] * 40, [0.5] * 40)
    entry = u.summary_entry(
        file="a.nc", variable="x_se", estimate="x", kind="standard_error", method="member_spread", calibration=cov
    )
    assert entry["calibration"]["measured"] == 1.0
    with pytest.raises(u.UncertaintyError, match="no calibration"):
        u.summary_entry(file="a.nc", variable="x_se", estimate="x", kind="standard_error", method="member_spread")
    with pytest.raises(u.UncertaintyError, match="kind"):
        u.summary_entry(file="a.nc", variable="v", estimate="x", kind="range", method="member_spread", calibration=cov)
    assert "not measured" in u.calibration_comment(None, "no held-out stations")
    assert "100.0%" in u.calibration_comment(cov)


def test_ancillary_attributes_for_netcdf4_writers_append_once():
    attrs = {"units": "1", "ancillary_variables": "quality"}
    out = u.ancillary_attributes(attrs, "probability_frozen", "quality", "probability_frozen")
    assert out["ancillary_variables"] == "quality probability_frozen" and out["units"] == "1"
    assert attrs["ancillary_variables"] == "quality"  # a copy
