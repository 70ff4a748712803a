"""TWS uncertainty (issue 17): the standard error beside each reconstruction is the spread between the
reconstructions trained on each mascon solution (JPL, CSR), and its interval's coverage is measured at the
held-out year blocks only.

Known answers for the spread; the calibration on the synthetic twin of tests/products/test_tws_rec.py
(out-of-fold predictions only: it would differ if in-sample residuals were used); the files' CF attributes
and ``ancillary_variables`` links; `generate tws_rec` on real GRDC basins: the published files, the run
summary's ``uncertainty`` entries recomputed from the published file, and the zero-mean anomalies' KGE
still stored as not meaningful.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from django.conf import settings

from products.generators import tws_rec
from products.methods.cf import write_netcdf
from products.methods.uncertainty import interval_coverage, member_spread
from tests.products import test_tws_rec
from tests.products.test_tws_rec import twin_observations

tws_run = test_tws_rec.tws_run  # the fixture: `generate tws_rec` on 21 real basins (reused when already run)

TWIN_PARAMS = {"n_estimators": 30}
SE = "_standard_error"
RECONSTRUCTIONS = ("tws_jpl_rec", "tws_csr_rec", "tws_jpl_dd_rec", "tws_csr_dd_rec")


# --- the spread: known answers -------------------------------------------------------------------------


def test_the_spread_of_two_reconstructions_is_their_distance_over_root_two_for_every_member():
    index = pd.MultiIndex.from_product([["A", "B"], pd.date_range("2004-01-01", periods=3, freq="MS")])
    jpl = pd.Series([1.0, 2.0, np.nan, 0.0, -4.0, 5.0], index=index)
    csr = pd.Series([3.0, 2.0, 7.0, 1.0, 4.0, np.nan], index=index)
    dd = pd.Series(np.arange(6.0), index=index)
    spread = tws_rec.mascon_spread(
        {"tws_jpl_rec": jpl, "tws_csr_rec": csr, "tws_jpl_dd_rec": dd, "tws_jpl_cv": jpl, "tws_jpl": csr}
    )
    assert set(spread) == {"tws_jpl_rec", "tws_csr_rec"}  # one dd member: no spread; _cv and observed not members
    expected = np.abs(jpl - csr).to_numpy() / np.sqrt(2)  # ddof=1 of two values
    np.testing.assert_allclose(spread["tws_jpl_rec"].to_numpy(), expected, equal_nan=True)
    np.testing.assert_allclose(spread["tws_csr_rec"].to_numpy(), expected, equal_nan=True)
    assert np.isnan(spread["tws_jpl_rec"].iloc[2]) and np.isnan(spread["tws_jpl_rec"].iloc[5])  # one member only
    assert spread["tws_jpl_rec"].index.equals(index)
    assert tws_rec.members(["tws_jpl_dd_cv", "tws_csr_cv", "tws_jpl_cv"], suffix="_cv") == {
        "dd": ["tws_jpl_dd_cv"],
        "anomaly": ["tws_csr_cv", "tws_jpl_cv"],
    }
    assert tws_rec.standard_error_name("tws_jpl_dd_rec") == "tws_jpl_dd_rec_standard_error"


def test_the_spread_of_region_tables_keeps_their_labels():
    index = pd.date_range("2004-01-01", periods=2, freq="MS")
    a = pd.DataFrame({"Europe": [1.0, 2.0], "All basins": [0.0, np.nan]}, index=index)
    b = pd.DataFrame({"All basins": [2.0, 1.0], "Europe": [1.0, 6.0]}, index=index)  # other column order
    spread = tws_rec.mascon_spread({"tws_jpl_rec": a, "tws_csr_rec": b})["tws_csr_rec"]
    assert list(spread.columns) == ["Europe", "All basins"]
    assert spread.loc[index[1], "Europe"] == pytest.approx(4 / np.sqrt(2))
    assert spread.loc[index[0], "All basins"] == pytest.approx(2 / np.sqrt(2))
    assert np.isnan(spread.loc[index[1], "All basins"])


# --- calibration on the synthetic twin -------------------------------------------------------------------


@pytest.fixture(scope="module")
def twin():
    obs, _ = twin_observations(n_basins=4, seed=7)
    result = tws_rec.reconstruct(obs, params=TWIN_PARAMS, seed=2)
    attributes = pd.DataFrame(
        {"continent": ["Europe", "Europe", "Africa", "Africa"], "area_km2": [1.0, 3.0, 2.0, 2.0]},
        index=[f"B{i}" for i in range(4)],
    )
    return result, attributes


def test_the_coverage_is_counted_on_out_of_fold_predictions_only(twin):
    result, _ = twin
    for solution in tws_rec.SOLUTIONS:
        for variant in tws_rec.VARIANTS:
            coverage = tws_rec.held_out_coverage(result, solution, variant)
            held = result.held_out[solution, variant, tws_rec.HEADLINE_SPLIT]
            other = result.held_out[next(s for s in tws_rec.SOLUTIONS if s != solution), variant, "year_block_held_out"]
            spread = member_spread(
                np.stack([held.sim, pd.Series(other.sim, index=other.rows).reindex(held.rows).to_numpy()])
            )
            again = interval_coverage(held.sim, spread, held.obs, split="year_block_held_out")
            assert (coverage.measured, coverage.n) == (again.measured, again.n)
            assert coverage.split == "year_block_held_out" and coverage.nominal == pytest.approx(0.9)
            # the same held-out months as the validation's headline score: its RMSE, not an in-sample one
            cv = result.cv.loc[(solution, variant, tws_rec.HEADLINE_SPLIT)]
            assert coverage.n == cv["n"] and coverage.rmse == pytest.approx(cv["rmse"])
    # the in-sample residuals (final models on the GRACE months they were fitted on) give another answer
    coverage = tws_rec.held_out_coverage(result, "tws_jpl", "anomaly")
    series = result.series
    se = tws_rec.mascon_spread({c: series[c] for c in ("tws_jpl_rec", "tws_csr_rec")})["tws_jpl_rec"]
    in_sample = interval_coverage(series["tws_jpl_rec"], se, series["tws_jpl"])
    assert in_sample.n > 0 and in_sample.rmse < coverage.rmse
    assert in_sample.measured != pytest.approx(coverage.measured, abs=0.02)


def test_the_region_coverage_uses_the_region_means_of_the_held_out_predictions(twin):
    result, attributes = twin
    coverage = tws_rec.held_out_region_coverage(result, attributes, "tws_csr", "anomaly", min_area_fraction=0.9)
    wide = result.series.unstack("station")
    held = result.held_out["tws_csr", "anomaly", "year_block_held_out"]
    observed = pd.Series(held.obs, index=held.rows).unstack("station").reindex_like(wide["tws_csr_cv"])
    means = {c: tws_rec.region_means(wide[c], attributes)[0] for c in ("tws_jpl_cv", "tws_csr_cv")}
    target = tws_rec.region_means(observed, attributes)[0]
    spread = np.abs(means["tws_jpl_cv"] - means["tws_csr_cv"]) / np.sqrt(2)
    again = interval_coverage(means["tws_csr_cv"], spread, target)
    assert coverage.n == again.n > 0 and coverage.measured == pytest.approx(again.measured)
    assert coverage.n == 3 * np.isfinite(target.to_numpy()).all(axis=1).sum()  # Africa, Europe, All basins
    assert "All basins" in coverage.note


def test_the_basin_file_states_the_standard_error_beside_each_reconstruction(twin, tmp_path):
    from tests.cfcheck import check

    result, attributes = twin
    path = write_netcdf(tws_rec.to_cf_basins(result, attributes, data_kind="synthetic"), tmp_path / "basins.nc")
    with xr.open_dataset(path) as ds:
        for name in RECONSTRUCTIONS:
            se = ds[name + SE]
            assert ds[name].attrs["ancillary_variables"] == name + SE
            assert se.dims == ds[name].dims and se.dtype == np.float32
            assert se.attrs["units"] == "mm" and se.attrs["coverage_content_type"] == "qualityInformation"
            assert se.attrs["uncertainty_method"] == "mascon_spread"
            assert se.attrs["long_name"].startswith("standard error of ")
            where = np.isfinite(ds[name].values)
            assert where.any() and np.isfinite(se.values[where]).all() and (se.values[where] >= 0).all()
            solution, variant = name.split("_")[0] + "_" + name.split("_")[1], "dd" if "_dd_" in name else "anomaly"
            coverage = tws_rec.held_out_coverage(result, solution, variant)
            assert f"{coverage.measured:.1%} of {coverage.n}" in se.attrs["comment"]
            assert ("not calibrated" in se.attrs["comment"]) == (not coverage.calibrated)
        expected = np.abs(ds["tws_jpl_dd_rec"] - ds["tws_csr_dd_rec"]).values / np.sqrt(2)
        np.testing.assert_allclose(ds["tws_jpl_dd_rec" + SE].values, expected, rtol=1e-6, equal_nan=True)
        for name in ("tws_jpl", "tws_jpl_cv"):  # observed and held-out series state no standard error
            assert "ancillary_variables" not in ds[name].attrs and name + SE not in ds
    report = check(path, suites=("cf:1.8",))
    assert not report.cf_errors and report.score("cf:1.8") == 1.0, report.explain()


def test_the_region_file_states_the_spread_of_the_region_means(twin, tmp_path):
    result, attributes = twin
    wide = result.series.unstack("station")
    means, regions = {}, None
    for column in ("tws_jpl", "tws_jpl_rec", "tws_csr_rec"):
        means[column], regions = tws_rec.region_means(wide[column], attributes)
    calibration = {"tws_jpl_rec": tws_rec.held_out_region_coverage(result, attributes, "tws_jpl", "anomaly")}
    ds = tws_rec.to_cf_regions(means, regions, data_kind="synthetic", calibration=calibration)
    path = write_netcdf(ds, tmp_path / "regions.nc")
    with xr.open_dataset(path) as ds:
        assert ds["tws_jpl_rec"].attrs["ancillary_variables"] == "tws_jpl_rec" + SE
        expected = np.abs(means["tws_jpl_rec"] - means["tws_csr_rec"]).to_numpy().T / np.sqrt(2)  # (region, time)
        order = [list(regions.index).index(str(r)) for r in ds["region_name"].values]
        np.testing.assert_allclose(ds["tws_jpl_rec" + SE].values, expected[order], rtol=1e-6, equal_nan=True)
        assert f"{calibration['tws_jpl_rec'].measured:.1%}" in ds["tws_jpl_rec" + SE].attrs["comment"]
        # no held-out region means given for CSR: the file says it was not measured
        assert "Calibration not measured" in ds["tws_csr_rec" + SE].attrs["comment"]
        assert "tws_jpl" + SE not in ds


def test_a_single_solution_has_no_spread_and_no_standard_error(twin):
    result, _ = twin
    single = tws_rec.TwsResult(
        result.series[[c for c in result.series.columns if "csr" not in c]],
        result.cv.loc[["tws_jpl"]],
        result.predictors,
        result.features,
        held_out={k: v for k, v in result.held_out.items() if k[0] == "tws_jpl"},
    )
    ds = tws_rec.to_cf_basins(single)
    assert not [n for n in ds.data_vars if str(n).endswith(SE)]
    assert "ancillary_variables" not in ds["tws_jpl_rec"].attrs


# --- the pipeline on real basins ----------------------------------------------------------------------


def _published(run, name: str) -> Path:
    return Path(settings.DATA_ROOT) / run.version.files.get(name=name).path


@pytest.mark.django_db
def test_the_published_files_carry_the_standard_errors(tws_run):
    for name in ("tws_rec_basins.nc", "tws_rec_regions.nc"):
        with xr.open_dataset(_published(tws_run, name)) as ds:
            for estimate in RECONSTRUCTIONS:
                se = ds[estimate + SE]
                assert ds[estimate].attrs["ancillary_variables"] == estimate + SE, name
                assert se.dtype == np.float32 and se.dims == ds[estimate].dims and se.attrs["units"] == "mm"
                assert se.attrs["uncertainty_method"] == "mascon_spread"
                assert (
                    "year_block_held_out" in se.attrs["comment"] and "not the model's own error" in se.attrs["comment"]
                )
                where = np.isfinite(ds[estimate].values)
                assert where.any() and np.isfinite(se.values[where]).all() and (se.values[where] >= 0).all(), name
            expected = np.abs(ds["tws_jpl_rec"] - ds["tws_csr_rec"]).values / np.sqrt(2)
            np.testing.assert_allclose(ds["tws_csr_rec" + SE].values, expected, rtol=1e-5, equal_nan=True)


@pytest.mark.django_db
def test_the_summary_entries_match_the_published_file_and_the_held_out_scores(tws_run):
    from products.models import ValidationResult

    entries = tws_run.summary["uncertainty"]
    compared = 0
    assert {(e["file"], e["estimate"]) for e in entries} == {
        (f, r) for f in ("tws_rec_basins.nc", "tws_rec_regions.nc") for r in RECONSTRUCTIONS
    }
    with xr.open_dataset(_published(tws_run, "tws_rec_basins.nc")) as ds:
        for entry in entries:
            assert entry["variable"] == entry["estimate"] + SE
            assert entry["kind"] == "standard_error" and entry["method"] == "mascon_spread"
            calibration = entry["calibration"]
            assert calibration["split"] == "year_block_held_out" and calibration["n"] >= 30
            assert calibration["nominal"] == pytest.approx(0.9) and 0 <= calibration["measured"] <= 1
            assert calibration["calibrated"] == (abs(calibration["measured"] - 0.9) <= calibration["tolerance"])
            with xr.open_dataset(_published(tws_run, entry["file"])) as published:
                comment = published[entry["variable"]].attrs["comment"]
            assert f"{calibration['measured']:.1%} of {calibration['n']}" in comment
            if entry["file"] != "tws_rec_basins.nc":
                continue
            # recomputed from the published held-out predictions: the same pairs and the same spread
            cv = entry["estimate"].replace("_rec", "_cv")
            other = cv.replace("jpl", "csr") if "jpl" in cv else cv.replace("csr", "jpl")
            spread = np.abs(ds[cv] - ds[other]).values / np.sqrt(2)
            pairs = np.isfinite(ds[cv].values) & np.isfinite(spread)
            assert calibration["n"] == pairs.sum()
            assert calibration["mean_standard_error"] == pytest.approx(spread[pairs].mean(), rel=1e-6)
            # and the validation's headline row of the same model: its held-out months (less those the other
            # solution lacks: JPL has a month CSR has not), the same RMSE where they are the same months
            row = ValidationResult.objects.get(
                version=tws_run.version, split="year_block_held_out", variable=entry["estimate"], scope="pooled"
            )
            assert calibration["n"] <= row.n
            if row.n == calibration["n"]:
                assert calibration["rmse"] == pytest.approx(row.rmse, rel=1e-6)
                compared += 1
    assert compared  # at least one model's pairs are all its held-out months
    parameters = tws_run.version.lineage["parameters"]["uncertainty"]
    assert parameters["method"] == "mascon_spread" and parameters["nominal_coverage"] == pytest.approx(0.9)
    assert parameters["calibration_split"] == "year_block_held_out"


@pytest.mark.django_db
def test_the_zero_mean_anomalies_keep_kge_as_not_meaningful(tws_run):
    from products.models import ValidationResult

    rows = ValidationResult.objects.filter(version=tws_run.version)
    assert rows.exists() and not rows.filter(not_meaningful="").exists()
    assert not rows.filter(kge__isnull=False).exists() and not rows.filter(beta__isnull=False).exists()
    assert not rows.filter(variable__endswith=SE).exists()  # the standard errors are not scored as estimates
