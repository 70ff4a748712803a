"""The ET product's uncertainty beside its estimates (issue 17): quantile standard errors and their calibration.

Three standard errors, each from a LightGBM quantile pair (0.16, 0.84) fitted in the same folds as the
estimate's model: ``et_standard_error`` beside the tower model's ``et`` (et_fusion_timeseries.nc),
``et_fused_standard_error`` beside the stage-2 ``et_fused`` (et_fused_ecostress_towers.nc), and
``et_standard_error`` beside the gridded ``et`` (et_grid_daily.nc, from the final pair, chunk by chunk).
Checked: the CF attributes and the ``ancillary_variables`` link, finite non-negative values where the
estimate is finite, that the pairs see no held-out target (leakage), that the calibration is measured on
held-out samples only (in-sample it differs), and that the run summary's figures are those of the file.

The tower-model tests use a few REAL towers (CARDAMOM-FluxVal); the fusion and leakage tests SYNTHETIC
tables (tests.products.test_et_leakage); the grid tests SYNTHETIC forcing and a SYNTHETIC model
(tests.products.test_chunked); the last tests the session's published ET version (real data).
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.stats import norm

from ingestion.readers.cardamom import read_cardamom
from products.generators import et_fusion, et_fusion_cf, et_grid
from products.methods import cf
from products.methods import uncertainty as unc
from tests.cfcheck import check
from tests.conftest import FEW_SITES
from tests.products.test_chunked import small_land, synthetic_forcing, synthetic_model
from tests.products.test_et_leakage import FUSION, SMALL, dump, fusion_observations, perturb, tower_table

ET_SE_NAME = "water_evapotranspiration_flux standard_error"


def refit_pair(result, table: pd.DataFrame, k: int):
    """Fold k's quantile pair fitted again on the training rows of the stations it reports."""
    train = table[table["station"].isin(result.fold_train_stations[k]) & ~table["is_validation"]]
    return et_fusion.fit_quantile_pair(result.params, train[list(et_fusion.FEATURES)], train["et"])


# --- tower model: REAL towers ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_table() -> pd.DataFrame:
    path = Path(os.environ.get("SHARED_DATA_DIR", "/work/shared/data")) / "cardamom_fluxval"
    data = read_cardamom(path)
    obs, stations = data.observations, data.stations
    return et_fusion.build_training_table(
        obs[obs["station"].isin(FEW_SITES)], stations[stations["code"].isin(FEW_SITES)]
    )


@pytest.fixture(scope="module")
def real(real_table):
    return et_fusion.run(real_table, n_splits=3, seed=7, params={"n_estimators": 60})


def test_each_prediction_has_an_out_of_fold_standard_error_from_its_folds_pair(real, real_table):
    pred = real.predictions
    se = pred["et_standard_error"].to_numpy()
    assert np.isfinite(se).all() and (se >= 0).all() and se.mean() > 0
    z = norm.ppf(0.84)  # the pair spans the central 68 % interval: half its width is z = 0.994 sigma
    np.testing.assert_allclose(se, np.abs(pred["et_q84"] - pred["et_q16"]) / (2 * z), rtol=1e-12)
    assert len(real.fold_quantile_models) == real.n_splits and len(real.final_quantile_models) == 2
    for k, pair in enumerate(real.fold_quantile_models):
        assert [m.get_params()["objective"] for m in pair] == ["quantile", "quantile"]
        assert [m.get_params()["alpha"] for m in pair] == list(et_fusion.QUANTILES)
        # the same parameters as the point model: only the loss differs
        same = {k: v for k, v in pair[0].get_params().items() if k not in ("objective", "alpha")}
        assert same == {k: v for k, v in real.fold_models[k].get_params().items() if k not in ("objective", "alpha")}
    k = 1
    rows = (pred["fold"] == k).to_numpy()
    x = real_table.loc[rows, list(et_fusion.FEATURES)]
    lower, upper = refit_pair(real, real_table, k)
    np.testing.assert_allclose(lower.predict(x), pred.loc[rows, "et_q16"], rtol=1e-12)
    np.testing.assert_allclose(upper.predict(x), pred.loc[rows, "et_q84"], rtol=1e-12)


def test_the_calibration_is_measured_at_held_out_towers_only(real, real_table):
    coverage = et_fusion.tower_calibration(real)
    pred = real.predictions
    held_out = pred[pred["is_validation"]]
    again = unc.interval_coverage(held_out["et_pred"], held_out["et_standard_error"], held_out["et_obs"])
    assert coverage.split == "validation" and coverage.n == len(held_out) > 30
    assert coverage.measured == pytest.approx(again.measured) and coverage.rmse == pytest.approx(again.rmse)
    # in-sample (final model and final pair on the rows they were fitted on) the interval looks better: a
    # calibration computed from in-sample residuals would not be the figure published
    train = real_table[~real_table["is_validation"]]
    in_sample = unc.interval_coverage(
        et_fusion.predict(real.final_model, train),
        et_fusion.predict_standard_error(real.final_quantile_models, train),
        train["et"],
    )
    assert in_sample.rmse < coverage.rmse and abs(in_sample.measured - coverage.measured) > 0.02
    cv = et_fusion.tower_calibration(real, split="cv")
    assert cv.split == "cv" and cv.n == (~pred["is_validation"]).sum()


def test_the_timeseries_file_carries_the_standard_error_beside_et(real, tmp_path):
    era5 = pd.DataFrame(
        {"station": "P1", "time": pd.date_range("1990-01-01", periods=12, freq="MS"), "lat": 45.0, "lon": 7.0}
    )
    era5 = et_fusion.add_calendar_features(era5.assign(tmin=5.0, tmax=15.0, ssrd=12.0, vpd=6.0, precip=2.0))
    era5["et_pred"] = et_fusion.predict(real.final_model, era5)
    era5["et_standard_error"] = et_fusion.predict_standard_error(real.final_quantile_models, era5)
    path = cf.write_netcdf(et_fusion_cf.to_cf_dataset(real, era5, attrs={}), tmp_path / "et.nc")
    coverage = et_fusion.tower_calibration(real)
    with xr.open_dataset(path) as ds:
        se, et = ds["et_standard_error"], ds["et"]
        assert se.dtype == np.float32 and se.dims == et.dims
        assert se.attrs["standard_name"] == ET_SE_NAME and se.attrs["units"] == et.attrs["units"] == "kg m-2 d-1"
        assert se.attrs["uncertainty_method"] == "quantile_regression"
        assert se.attrs["coverage_content_type"] == "qualityInformation"
        assert "et_standard_error" in et.attrs["ancillary_variables"].split()
        assert f"{coverage.measured:.1%} of {coverage.n}" in se.attrs["comment"]
        finite = np.isfinite(et.values)
        assert np.isfinite(se.values[finite]).all() and (se.values[finite] >= 0).all()
        assert np.array_equal(np.isfinite(se.values), finite)
        # the figure stated is recomputed from the file: held-out tower months only
        held_out = (ds["is_validation"].values == 1) & (ds["site_type"].values[:, None] == 0)
        again = unc.interval_coverage(et.values[held_out], se.values[held_out], ds["et_obs"].values[held_out])
        assert again.n == coverage.n and again.measured == pytest.approx(coverage.measured)
        assert ds.attrs["uncertainty_coverage_measured"] == pytest.approx(coverage.measured)
        point = list(ds["station_name"].values).index("P1")
        np.testing.assert_allclose(
            se.values[point][np.isfinite(se.values[point])], era5["et_standard_error"], rtol=1e-6
        )


def test_quantiles_must_be_a_central_pair(real_table):
    with pytest.raises(ValueError, match="central pair"):
        et_fusion.run(real_table, n_splits=3, params=SMALL, quantiles=(0.1, 0.84))


# --- leakage: the quantile pairs see no held-out target (SYNTHETIC) -------------------------------------
@pytest.fixture(scope="module")
def table():
    return tower_table()


@pytest.fixture(scope="module")
def tower(table):
    return et_fusion.run(table, n_splits=4, seed=5, params=SMALL)


def test_a_folds_quantile_pair_does_not_change_with_its_held_out_targets(table, tower):
    k = 2
    rows = table["station"].isin(set(tower.predictions.loc[tower.predictions["fold"] == k, "station"])).to_numpy()
    changed = table.copy()
    changed.loc[rows, "et"] = perturb(table.loc[rows, "et"].to_numpy())
    again = et_fusion.run(changed, n_splits=4, seed=5, params=SMALL)
    assert [dump(m) for m in again.fold_quantile_models[k]] == [dump(m) for m in tower.fold_quantile_models[k]]
    fold_rows = (tower.predictions["fold"] == k).to_numpy()
    np.testing.assert_array_equal(
        again.predictions["et_standard_error"][fold_rows], tower.predictions["et_standard_error"][fold_rows]
    )
    # the folds that trained on those stations do see the change
    assert any(
        dump(again.fold_quantile_models[j][1]) != dump(tower.fold_quantile_models[j][1]) for j in range(4) if j != k
    )


def test_validation_months_shape_no_quantile_model(table, tower):
    val = table["is_validation"].to_numpy()
    changed = table.copy()
    changed.loc[val, "et"] = perturb(table.loc[val, "et"].to_numpy())
    again = et_fusion.run(changed, n_splits=4, seed=5, params=SMALL)
    assert [dump(m) for m in again.final_quantile_models] == [dump(m) for m in tower.final_quantile_models]
    np.testing.assert_array_equal(again.predictions["et_standard_error"], tower.predictions["et_standard_error"])


# --- stage-2 fusion (SYNTHETIC towers) ---------------------------------------------------------------
@pytest.fixture(scope="module")
def observations():
    return fusion_observations()


@pytest.fixture(scope="module")
def fused(observations):
    return et_fusion.fuse_at_towers(observations, **FUSION)


def test_the_fusion_has_an_out_of_fold_standard_error_from_its_folds_pair(observations, fused):
    pred = fused.predictions
    se = pred["et_fused_standard_error"].to_numpy()
    assert np.isfinite(se).all() and (se >= 0).all() and se.max() > 0
    assert len(fused.fold_quantile_models) == FUSION["n_splits"] and fused.quantiles == et_fusion.QUANTILES
    for k, pair in enumerate(fused.fold_quantile_models):
        chosen = fused.fold_models[k].model.estimator.get_params()
        for model, alpha in zip(pair, et_fusion.QUANTILES, strict=True):
            params = model.get_params()
            assert params["objective"] == "quantile" and params["alpha"] == alpha
            assert params["n_estimators"] == chosen["n_estimators"] and params["num_leaves"] == chosen["num_leaves"]
    # fold k's pair does not change when the targets of the towers it holds out change
    k = 1
    towers = set(pred.loc[pred["fold"] == k, "station"])
    target = (observations["variable"] == "et") & observations["station"].isin(towers)
    changed = observations.copy()
    changed.loc[target, "value"] = perturb(observations.loc[target, "value"].to_numpy())
    again = et_fusion.fuse_at_towers(changed, **FUSION)
    assert [dump(m) for m in again.fold_quantile_models[k]] == [dump(m) for m in fused.fold_quantile_models[k]]
    rows = (pred["fold"] == k).to_numpy()
    np.testing.assert_array_equal(
        again.predictions["et_fused_standard_error"][rows], pred["et_fused_standard_error"][rows]
    )


def test_the_fused_file_carries_the_standard_error_and_its_held_out_coverage(fused, observations, tmp_path):
    stations = pd.DataFrame({"code": sorted(observations["station"].unique())}).assign(lat=40.0, lon=-100.0)
    path = cf.write_netcdf(et_fusion_cf.fusion_to_cf(fused, stations, attrs={}), tmp_path / "fused.nc")
    coverage = et_fusion.fusion_calibration(fused)
    with xr.open_dataset(path) as ds:
        se = ds["et_fused_standard_error"]
        assert se.dtype == np.float32 and se.dims == ds["et_fused"].dims
        assert se.attrs["standard_name"] == ET_SE_NAME and se.attrs["units"] == "kg m-2 h-1"
        assert ds["et_fused"].attrs["ancillary_variables"] == "et_fused_standard_error"
        assert "fusion_held_out" in se.attrs["comment"] and f"of {coverage.n}" in se.attrs["comment"]
        again = unc.interval_coverage(ds["et_fused"].values, se.values, ds["et_obs"].values)
    assert coverage.split == "fusion_held_out" and again.n == coverage.n == len(fused.predictions)
    assert again.measured == pytest.approx(coverage.measured)


def test_the_upper_bound_needs_no_pair(observations):
    upper = et_fusion.fuse_at_towers(observations, **{**FUSION, "n_splits": 3}, quantiles=None)
    assert upper.fold_quantile_models == [] and "et_fused_standard_error" not in upper.predictions


# --- the grid (SYNTHETIC forcing and models) -----------------------------------------------------------
def synthetic_pair():
    """A quantile pair fitted on SYNTHETIC rows (those of tests.products.test_et_leakage.tower_table)."""
    rows = tower_table(n_stations=6, n_months=48, seed=4)
    params = {**et_fusion.DEFAULT_PARAMS, "n_estimators": 30, "n_jobs": 1, "random_state": 0}
    return et_fusion.fit_quantile_pair(params, rows[list(et_fusion.FEATURES)], rows["et"])


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """SYNTHETIC: three days of 3-hourly forcing, 2016-01-31 to 2016-02-02, written with small windows."""
    lat, lon = np.arange(-44.5, -14.5, 1.0), np.arange(100.5, 150.5, 1.0)
    times = pd.date_range("2016-01-31", periods=24, freq="3h")
    land = small_land((lat.size, lon.size))
    forcing = synthetic_forcing(lat, lon, times, land)
    pair = synthetic_pair()
    folder = tmp_path_factory.mktemp("grid")
    et_grid.predict_et_grid(synthetic_model(), forcing, folder / "et.nc", chunk=(7, 9), quantile_models=pair)
    return folder, forcing, pair, land, lat, lon


def test_the_grid_has_the_standard_error_of_the_final_pair_chunk_by_chunk(grid):
    folder, forcing, pair, land, _, _ = grid
    assert sorted(p.name for p in folder.iterdir()) == ["et.nc"]  # no temporary file left
    with xr.open_dataset(folder / "et.nc") as ds:
        se, et = ds[et_grid.SE_NAME], ds["et"]
        assert se.dtype == np.float32 and se.dims == et.dims == ("time", "lat", "lon")
        assert se.attrs["standard_name"] == ET_SE_NAME and se.attrs["units"] == et.attrs["units"]
        assert se.attrs["grid_mapping"] == "crs" and list(se.attrs["quantiles"]) == list(et_grid_quantiles(pair))
        assert et.attrs["ancillary_variables"] == et_grid.SE_NAME
        assert "Calibration not measured" in se.attrs["comment"]
        values = se.values
        finite = np.isfinite(et.values)
        assert np.array_equal(np.isfinite(values), finite) and (values[finite] >= 0).all()
        assert finite[0][land].all() and not finite[0][~land].any()
    report = check(folder / "et.nc")  # the CF checkers users' tools apply (ACDD comes with publishing)
    assert not report.cf_errors and report.score("cf:1.8") == 1.0, report.explain()
    # one window holding the whole grid gives the same values: chunking changes nothing
    et_grid.predict_et_grid(
        synthetic_model(), forcing, folder / "whole.nc", chunk=(64, 64), days_per_chunk=3, quantile_models=pair
    )
    with xr.open_dataset(folder / "whole.nc") as whole:
        np.testing.assert_array_equal(whole[et_grid.SE_NAME].values, values)
    (folder / "whole.nc").unlink()


def et_grid_quantiles(pair):
    return [m.get_params()["alpha"] for m in pair]


def test_the_grid_calibration_at_held_out_tower_months_and_its_comment(grid, tmp_path):
    from products.pipelines.et_fusion import GRID_SPLIT, _grid_calibration

    folder, _, _, land, lat, lon = grid
    cells = np.argwhere(land)[:40]
    stations = pd.DataFrame(
        {"code": [f"T{k}" for k in range(len(cells))], "lat": lat[cells[:, 0]] + 0.2, "lon": lon[cells[:, 1]] + 0.2}
    )
    months = pd.to_datetime(["2016-01-01", "2016-02-01"])
    rng = np.random.default_rng(3)
    predictions = pd.DataFrame(
        {
            "station": np.repeat(stations["code"], 2),
            "time": np.tile(months, len(stations)),
            "et_obs": rng.uniform(0, 4, 2 * len(stations)),
            "is_validation": np.tile([True, False], len(stations)),  # February was a training month
        }
    )
    coverage, reason = _grid_calibration(folder / "et.nc", stations, SimpleNamespace(predictions=predictions), 0.9)
    assert reason == "" and coverage.split == GRID_SPLIT and coverage.n == len(stations)
    daily = et_grid.sample_at_points(folder / "et.nc", stations.rename(columns={"code": "station"}))
    january = daily[daily["time"] < "2016-02-01"].set_index("station")
    held = predictions[predictions["is_validation"]].set_index("station")
    again = unc.interval_coverage(
        january["et_grid"], january["et_grid_standard_error"], held.loc[january.index, "et_obs"]
    )
    assert again.measured == pytest.approx(coverage.measured) and again.n == coverage.n
    copy = tmp_path / "et.nc"
    copy.write_bytes((folder / "et.nc").read_bytes())
    et_grid.describe_standard_error(copy, coverage)
    with xr.open_dataset(copy) as ds:
        assert f"{coverage.measured:.1%} of {coverage.n}" in ds[et_grid.SE_NAME].attrs["comment"]
    earlier = predictions.assign(time=predictions["time"] - pd.DateOffset(years=3))
    none, reason = _grid_calibration(folder / "et.nc", stations, SimpleNamespace(predictions=earlier), 0.9)
    assert none is None and "no held-out month" in reason
    et_grid.describe_standard_error(copy, None, reason)
    with xr.open_dataset(copy) as ds:
        assert (
            "Calibration not measured: the forcing's days fall in no held-out month"
            in ds[et_grid.SE_NAME].attrs["comment"]
        )


# --- stage 1: the spread of the five reconstructions (SYNTHETIC series) ---------------------------------
def test_the_basin_file_states_the_spread_of_the_reconstructions_as_not_calibrated(tmp_path):
    rng = np.random.default_rng(5)
    time = pd.date_range("2003-01-01", periods=24, freq="MS")
    series = pd.DataFrame({"station": np.repeat(["B1", "B2"], 24), "time": np.tile(time, 2)})
    for i, p in enumerate(et_fusion.BASIN_ET_PRODUCTS):
        series[f"{p}_rec"] = 40 + 5 * i + rng.normal(0, 3, len(series))
        series[p] = series[f"{p}_rec"].where(rng.random(len(series)) > 0.3)
    series.loc[3, "et_gleam_rec"] = np.nan  # a month one member misses: no ensemble there
    path = cf.write_netcdf(
        et_fusion_cf.reconstruction_to_cf(et_fusion.ReconstructionResult(series, pd.DataFrame())),
        tmp_path / "basins.nc",
    )
    members = series[[f"{p}_rec" for p in et_fusion.BASIN_ET_PRODUCTS]].to_numpy()
    with xr.open_dataset(path) as ds:
        se, mean = ds["et_rec_mean_standard_error"], ds["et_rec_mean"]
        assert se.dtype == np.float32 and se.dims == mean.dims == ("station", "time")
        assert se.attrs["standard_name"] == "water_evapotranspiration_amount standard_error"
        assert (
            se.attrs["units"] == mean.attrs["units"] == "kg m-2" and se.attrs["uncertainty_method"] == "member_spread"
        )
        assert mean.attrs["ancillary_variables"] == "et_rec_mean_standard_error"
        assert "Calibration not measured: no independent basin ET" in se.attrs["comment"]
        got = se.values.reshape(-1)  # station-major, as the series
        np.testing.assert_allclose(got[4:], np.std(members[4:], axis=1, ddof=1), rtol=1e-6)
        np.testing.assert_allclose(mean.values.reshape(-1)[4:], members[4:].mean(axis=1))
        assert np.isnan(got[3]) and np.isnan(mean.values.reshape(-1)[3])
        assert np.array_equal(np.isfinite(got), np.isfinite(mean.values.reshape(-1))) and (got[4:] > 0).all()


# --- the published version (REAL data, the session's ET run) -----------------------------------------
@pytest.mark.django_db
def test_the_run_summary_states_each_uncertainty_as_measured_in_the_files(et_run):
    from django.conf import settings

    entries = {e["file"]: e for e in et_run.summary["uncertainty"]}
    # no grid in a default run
    assert set(entries) == {"et_fusion_timeseries.nc", "et_fused_ecostress_towers.nc", "et_basin_reconstruction.nc"}
    basins = entries["et_basin_reconstruction.nc"]
    assert basins["method"] == "member_spread" and basins["calibration"] is None
    assert (
        basins["variable"] == "et_rec_mean_standard_error"
        and "no independent basin ET" in basins["not_calibrated_reason"]
    )
    folder = Path(settings.DATA_ROOT)
    files = {f.name: folder / f.path for f in et_run.version.files.all()}
    for name, estimate, variable, held_out in (
        ("et_fusion_timeseries.nc", "et", "et_standard_error", "validation"),
        ("et_fused_ecostress_towers.nc", "et_fused", "et_fused_standard_error", "fusion_held_out"),
    ):
        entry = entries[name]
        assert entry["variable"] == variable and entry["estimate"] == estimate
        assert entry["kind"] == "standard_error" and entry["method"] == "quantile_regression"
        stated = entry["calibration"]
        assert stated["split"] == held_out and stated["nominal"] == 0.9
        with xr.open_dataset(files[name]) as ds:
            assert variable in ds[estimate].attrs["ancillary_variables"].split()
            assert ds[variable].attrs["standard_name"] == ET_SE_NAME
            se, est, obs = ds[variable].values, ds[estimate].values, ds["et_obs"].values
            assert (se[np.isfinite(est)] >= 0).all() and np.isfinite(se[np.isfinite(est)]).all()
            assert np.isnan(se[~np.isfinite(est)]).all()
            rows = np.ones(est.shape, dtype=bool)
            if name == "et_fusion_timeseries.nc":
                rows = (ds["is_validation"].values == 1) & (ds["site_type"].values[:, None] == 0)
            again = unc.interval_coverage(est[rows], se[rows], obs[rows])
        assert again.n == stated["n"] > 0 and again.measured == pytest.approx(stated["measured"])
        assert stated["calibrated"] == (again.n >= 30 and abs(again.measured - 0.9) <= 0.05)
    parameters = et_run.version.lineage["parameters"]
    assert parameters["uncertainty_quantiles"] == list(et_fusion.QUANTILES)
    assert parameters["uncertainty_nominal_coverage"] == 0.9
    assert "tower model quantile pair (et_standard_error)" in et_run.version.lineage["statistics_fitted_on"]
    with xr.open_dataset(files["et_basin_reconstruction.nc"]) as ds:
        se = ds["et_rec_mean_standard_error"].values
        members = np.stack([ds[f"{p}_rec"].values for p in et_fusion.BASIN_ET_PRODUCTS])
        assert "et_rec_mean_standard_error" in ds["et_rec_mean"].attrs["ancillary_variables"].split()
    np.testing.assert_allclose(se, np.std(members, axis=0, ddof=1), rtol=1e-5)
