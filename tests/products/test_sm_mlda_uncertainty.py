"""Soil moisture ML-DA: the standard error beside the nudged estimate (issue 17).

* The propagation (:func:`products.generators.sm_mlda.nudged_error_series`) equals the pointwise
  ``nudged_error_std`` without memory, and matches a Monte Carlo of the nudging with memory under its
  stated assumptions (persistent model error, white retrieval errors).
* The lagged triple collocation (:func:`products.generators.sm_mlda.lagged_tc`) recovers known error
  standard deviations of a retrieval and of its background from one series.
* The twin's standard error never sees the validation pixels' truth or stations, and its coverage is
  measured there only; the real standard error never sees the withheld retrievals, and its coverage there
  differs from the in-sample one on the retrievals assimilated.
* ``generate sm_mlda`` publishes both standard errors with their CF attributes and ancillary links, and
  the run summary's entries match a recomputation from the published files.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from django.conf import settings

from products.generators import sm_mlda
from products.generators.twins import sm_mlda as sm_mlda_twin
from products.methods import uncertainty as unc
from tests.products.test_sm_mlda import PARAMS, real_inputs, sm_run  # noqa: F401 - fixtures: the published run

KWARGS = {"n_splits": 3, "seed": 1, "params": {"n_estimators": 20}, "memory_days": 3.0}


@pytest.fixture(scope="module")
def twin():
    return sm_mlda_twin.make_twin(20, 730, seed=7)


@pytest.fixture(scope="module")
def result(twin):
    return sm_mlda_twin.run_twin(twin, **KWARGS)


def ar1(rng, shape, phi, sd):
    """(station, day) AR(1) series with lag-1 correlation ``phi`` and standard deviation ``sd``."""
    out = np.empty(shape)
    out[:, 0] = rng.normal(0, sd, shape[0])
    for t in range(1, shape[1]):
        out[:, t] = phi * out[:, t - 1] + rng.normal(0, sd * np.sqrt(1 - phi**2), shape[0])
    return out


# --- the propagation through the nudging ----------------------------------------------------------------


def test_without_memory_the_propagation_is_the_pointwise_nudged_error_std():
    rng = np.random.default_rng(0)
    has_obs = rng.random((4, 60)) < 0.4
    s_m, s_o, gain = (
        np.array([0.02, 0.03, 0.04, 0.05]),
        np.array([0.04, 0.01, 0.03, 0.02]),
        np.array([0.2, 0.9, 0.5, 0]),
    )
    out = sm_mlda.nudged_error_series(s_m, s_o, gain, has_obs, memory_days=0.0)
    expected = unc.nudged_error_std(s_m[:, None], s_o[:, None], np.where(has_obs, gain[:, None], 0.0))
    np.testing.assert_allclose(out, expected)
    np.testing.assert_allclose(out[~has_obs], np.broadcast_to(s_m[:, None], has_obs.shape)[~has_obs])
    defined = rng.random((4, 60)) < 0.9
    masked = sm_mlda.nudged_error_series(s_m, s_o, gain, has_obs, defined=defined)
    assert np.isnan(masked[~defined]).all() and np.isfinite(masked[defined]).all()
    with pytest.raises(ValueError, match="memory_days"):
        sm_mlda.nudged_error_series(s_m, s_o, gain, has_obs, memory_days=-1)
    with pytest.raises(ValueError, match="within"):
        sm_mlda.nudged_error_series(s_m, s_o, 1.5, has_obs)


def test_with_memory_the_propagation_matches_a_monte_carlo_of_the_nudging():
    """Persistent model error (one draw per realisation), white retrieval errors: the nudged state's error
    spread over 20,000 realisations equals the propagated standard deviation day by day."""
    rng = np.random.default_rng(1)
    n, n_t, s_m, s_o, gain, memory = 20000, 40, 0.05, 0.03, 0.6, 4.0
    has_obs = np.zeros(n_t, bool)
    has_obs[[3, 4, 5, 12, 20, 21, 30]] = True
    model_err = np.repeat(rng.normal(0, s_m, (n, 1)), n_t, axis=1)
    obs_err = np.where(has_obs, rng.normal(0, s_o, (n, n_t)), np.nan)
    analysis_err = sm_mlda.nudge_series(model_err, obs_err, gain, memory_days=memory)  # truth 0
    propagated = sm_mlda.nudged_error_series(s_m, s_o, gain, has_obs, memory_days=memory)
    np.testing.assert_allclose(analysis_err.std(axis=0), propagated, rtol=0.03)
    pointwise = sm_mlda.nudged_error_series(s_m, s_o, gain, has_obs, memory_days=0.0)
    assert np.abs(propagated - pointwise).max() > 0.005  # the memory matters, and the test would see it


# --- the lagged triple collocation --------------------------------------------------------------------------


def test_lagged_triple_collocation_recovers_known_retrieval_and_background_errors():
    rng = np.random.default_rng(2)
    shape = (6, 3000)
    background_error = ar1(rng, shape, 0.9, 8.0)
    innovation = np.where(rng.random(shape) < 0.4, background_error + rng.normal(0, 4.0, shape), np.nan)
    table = sm_mlda.lagged_tc(pd.DataFrame(innovation), max_gap_days=5, min_samples=100)
    assert table["from_tc"].all() and (table["source"] == "station").all()
    assert np.median(table["err_std_obs"]) == pytest.approx(4.0, rel=0.1)
    assert np.median(table["err_std_background"]) == pytest.approx(8.0, rel=0.1)
    assert table.attrs["err_std_obs_pooled"] == pytest.approx(4.0, rel=0.1)
    sparse = sm_mlda.lagged_tc(pd.DataFrame(innovation), max_gap_days=5, min_samples=2000)
    assert (sparse["source"] == "pooled").all() and not sparse["from_tc"].any()  # each point alone is too short
    np.testing.assert_allclose(sparse["err_std_obs"], table.attrs["err_std_obs_pooled"])
    with pytest.raises(ValueError, match="max_gap_days"):
        sm_mlda.lagged_tc(pd.DataFrame(innovation), max_gap_days=0)


# --- the twin: fitted without the validation pixels, calibrated there only ----------------------------------


def test_the_twin_standard_error_is_finite_and_non_negative_where_the_estimate_is(result):
    se, est = result.uncertainty["standard_error"], result.series["ml_da"]
    assert np.isfinite(se[np.isfinite(est)]).all() and (se[np.isfinite(est)] >= 0).all()
    assert np.isnan(se[~np.isfinite(est)]).all()
    assert result.uncertainty["from_tc"].mean() > 0.8  # TC error variances at most pixels
    # on a retrieval day the nudging shrinks the error below the model's
    has_obs = np.isfinite(result.series["obs_rescaled"])
    assert (se[has_obs] < np.broadcast_to(result.uncertainty["err_std_ml"][:, None], se.shape)[has_obs]).all()


def test_the_twin_coverage_is_measured_at_the_validation_pixels_only(result, twin):
    u, val = result.uncertainty, (twin.pixels["role"] == "validation").to_numpy()
    est, se = result.series["ml_da"], u["standard_error"]
    again = unc.interval_coverage(est[val], se[val], twin.truth[val])
    assert u["coverage_truth"].measured == pytest.approx(again.measured) and u["coverage_truth"].n == again.n
    assert again.n == int(np.isfinite(est[val]).sum()) and u["coverage_truth"].split == "twin_insitu"
    everywhere = unc.interval_coverage(est, se, twin.truth)  # validation and training pixels together
    assert everywhere.n > again.n
    insitu = unc.interval_coverage(est[val], se[val], twin.insitu[val], obs_error_std=sm_mlda_twin.INSITU_ERROR_STD)
    assert u["coverage_insitu"].measured == pytest.approx(insitu.measured)
    assert "obs_error_std" in u["coverage_insitu"].note and "truth" in u["coverage_truth"].note


def test_the_twin_standard_error_never_sees_the_validation_truth_or_stations(result, twin):
    """Shift the truth and the stations of the validation pixels: the standard error is unchanged, its
    coverage there is not (it is measured on them)."""
    val = (twin.pixels["role"] == "validation").to_numpy()[:, None]
    shifted = dataclasses.replace(
        twin, truth=np.where(val, twin.truth + 0.05, twin.truth), insitu=np.where(val, twin.insitu + 0.05, twin.insitu)
    )
    other = sm_mlda_twin.run_twin(shifted, **KWARGS)
    np.testing.assert_array_equal(other.uncertainty["standard_error"], result.uncertainty["standard_error"])
    assert other.uncertainty["coverage_truth"].measured < result.uncertainty["coverage_truth"].measured


def test_the_twin_file_carries_the_standard_error_with_its_cf_attributes_and_link(result, tmp_path):
    from products.methods.cf import write_netcdf

    path = write_netcdf(sm_mlda_twin.twin_dataset(result), tmp_path / "twin.nc")
    name = sm_mlda_twin.SE_NAME
    with xr.open_dataset(path) as ds:
        se = ds[name]
        assert name in ds["sm_mlda"].attrs["ancillary_variables"].split()
        assert se.dtype == np.float32 and se.dims == ds["sm_mlda"].dims
        assert se.attrs["standard_name"] == "volume_fraction_of_condensed_water_in_soil standard_error"
        assert se.attrs["units"] == ds["sm_mlda"].attrs["units"] == "m3 m-3"
        assert (
            se.attrs["uncertainty_method"] == "tc_nudging" and se.attrs["coverage_content_type"] == "qualityInformation"
        )
        assert "twin_insitu" in se.attrs["comment"] and "persistent" in se.attrs["comment"]
        np.testing.assert_allclose(se.values, result.uncertainty["standard_error"].astype("float32"))
        np.testing.assert_allclose(ds["nudging_err_std_ml"].values, result.uncertainty["err_std_ml"])


# --- real-data pieces: fitted on the assimilated retrievals, calibrated on the withheld ones ------------------


@pytest.fixture(scope="module")
def retrievals():
    """Eight points of a synthetic degree of saturation: climatology + AR(1) anomaly + white retrieval noise."""
    rng = np.random.default_rng(3)
    days = pd.date_range("2010-01-01", periods=1461, freq="D")
    clim = 50 + 15 * np.sin(2 * np.pi * days.dayofyear.to_numpy() / 365.25)
    values = clim + ar1(rng, (8, len(days)), 0.9, 8.0) + rng.normal(0, 4.0, (8, len(days)))
    return pd.DataFrame(
        np.where(rng.random(values.shape) < 0.45, values, np.nan), index=[f"p{i}" for i in range(8)], columns=days
    )


def _withheld(obs):
    check = sm_mlda.withheld_check(obs, sm_mlda.climatology_background, block="month", gain=0.5, memory_days=3.0)
    return check, sm_mlda.withheld_uncertainty(check, obs, gain=0.5, memory_days=3.0, max_gap_days=5)


def test_the_real_coverage_is_measured_on_the_withheld_retrievals_and_differs_in_sample(retrievals):
    check, u = _withheld(retrievals)
    scored = check.withheld.to_numpy() & np.isfinite(check.background.to_numpy())
    assert u.coverage.n == int(scored.sum()) > 100 and u.coverage.split == "real_withheld_months"
    se = u.standard_error.to_numpy()
    ok = np.isfinite(check.analysis.to_numpy())
    assert np.isfinite(se[ok]).all() and (se[ok] >= 0).all()
    s_o = np.broadcast_to(u.tc["err_std_obs"].to_numpy()[:, None], se.shape)
    again = unc.interval_coverage(
        check.analysis.to_numpy()[scored], se[scored], retrievals.to_numpy()[scored], obs_error_std=s_o[scored]
    )
    assert u.coverage.measured == pytest.approx(again.measured)
    # in sample (the retrievals the analysis was nudged toward) the interval covers more: a calibration
    # computed there would not be the held-out one
    assert u.coverage_assimilated.measured - u.coverage.measured > 0.02
    assert u.tc["err_std_obs"].median() == pytest.approx(4.0, rel=0.25)  # the known retrieval noise


def test_the_real_standard_error_never_sees_the_withheld_retrievals(retrievals):
    check, u = _withheld(retrievals)
    changed = retrievals.where(~check.withheld, retrievals + 30.0)  # the withheld retrievals only
    check2, u2 = _withheld(changed)
    pd.testing.assert_frame_equal(check2.withheld, check.withheld)
    pd.testing.assert_frame_equal(u2.standard_error, u.standard_error)
    pd.testing.assert_frame_equal(u2.tc, u.tc)
    assert u2.coverage.measured < u.coverage.measured


# --- the published version ----------------------------------------------------------------------------------


def _open(version, name):
    return xr.open_dataset(Path(settings.DATA_ROOT) / version.files.get(name=name).path)


@pytest.mark.django_db
def test_both_published_files_carry_a_linked_cf_standard_error(sm_run):  # noqa: F811 - the imported fixture
    for name, estimate, variable in (
        ("sm_mlda_twin.nc", "sm_mlda", "sm_mlda_standard_error"),
        ("sm_mlda_real.nc", "ssm_nudged", "ssm_nudged_standard_error"),
    ):
        with _open(sm_run.version, name) as ds:
            se, est = ds[variable], ds[estimate]
            assert variable in est.attrs["ancillary_variables"].split()
            assert se.dtype == np.float32 and se.dims == est.dims and se.attrs["units"] == est.attrs["units"]
            assert se.attrs["standard_name"] == f"{est.attrs['standard_name']} standard_error"
            assert se.attrs["uncertainty_method"] == "tc_nudging"
            finite = np.isfinite(est.values)
            assert finite.any() and np.isfinite(se.values[finite]).all() and (se.values[finite] >= 0).all()
            assert "Coverage of the 90% interval" in se.attrs["comment"]


@pytest.mark.django_db
def test_the_summary_entries_match_a_recomputation_from_the_published_files(sm_run):  # noqa: F811 - the imported fixture
    entries = {e["file"]: e for e in sm_run.summary["uncertainty"]}
    assert set(entries) == {"sm_mlda_twin.nc", "sm_mlda_real.nc"}
    for e in entries.values():
        assert e["kind"] == "standard_error" and e["method"] == "tc_nudging" and e["calibration"]["n"] > 30
    with _open(sm_run.version, "sm_mlda_twin.nc") as ds:
        val = ds["role"].values == "validation"
        cov = unc.interval_coverage(
            ds["sm_mlda"].values[val], ds["sm_mlda_standard_error"].values[val], ds["truth"].values[val]
        )
    twin = entries["sm_mlda_twin.nc"]["calibration"]
    assert twin["split"] == "twin_insitu" and twin["n"] == cov.n
    assert twin["measured"] == pytest.approx(cov.measured, abs=1e-3)  # float32 in the file
    with _open(sm_run.version, "sm_mlda_real.nc") as ds:
        sat = ds.sel(station=ds["site_type"] == "satellite_point")
        s_o = np.broadcast_to(sat["ssm_err_std_obs"].values[:, None], sat["ssm"].shape)
        held = np.isfinite(sat["ssm_withheld"].values)
        cov = unc.interval_coverage(
            sat["ssm_nudged"].values[held],
            sat["ssm_nudged_standard_error"].values[held],
            sat["ssm_withheld"].values[held],
            obs_error_std=s_o[held],
        )
    real = entries["sm_mlda_real.nc"]["calibration"]
    assert real["split"] == "real_withheld_months" and real["n"] == cov.n
    assert real["measured"] == pytest.approx(cov.measured, abs=1e-3)
    in_sample = sm_run.summary["real"]["uncertainty"]["coverage_assimilated_in_sample"]
    assert in_sample["measured"] != pytest.approx(real["measured"], abs=1e-3)


@pytest.mark.django_db
def test_the_lineage_records_the_uncertainty_parameters(sm_run):  # noqa: F811 - the imported fixture
    used = sm_run.version.lineage["parameters"]
    assert used["uncertainty_nominal"] == unc.NOMINAL and used["real_tc_max_gap_days"] >= 1
    fitted = sm_run.version.lineage["statistics_fitted_on"]
    assert any("standard error" in k and "assimilated retrievals only" in v for k, v in fitted.items())
    assert any("standard error" in k and "validation pixels only" in v for k, v in fitted.items())
