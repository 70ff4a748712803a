"""Issue 17 for the 1 km soil moisture: ``sm_standard_error`` beside ``sm``, from two LightGBM quantile models
(0.16, 0.84) fitted on the point model's training stations, and its coverage at held-out stations.

The first part runs on a small synthetic twin without the database (seconds): the written file's variable, its
CF attributes and link, its values, the models' training rows and the held-out calibration. The second part
reads the version the pipeline published (the ``sm_run`` fixture of ``test_sm_1km``, shared with it): the summary
entries and a recomputation of the coverage from the published file.
"""

from __future__ import annotations

import copy
import functools

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from products.generators import sm_1km
from products.generators.twins import sm_1km as sm_1km_twin
from products.methods import chunked, uncertainty
from tests.products.test_sm_1km import sm_run  # noqa: F401 - the pipeline's run fixture, shared

SEED = 5
SMALL = {"n_estimators": 40}
SE_NAME = "volume_fraction_of_condensed_water_in_soil standard_error"


@pytest.fixture(scope="module")
def twin():
    return sm_1km_twin.Twin(4, 4, 8, 60, seed=SEED)


@pytest.fixture(scope="module")
def written(twin, tmp_path_factory):
    out = tmp_path_factory.mktemp("sm1km_se")
    return sm_1km_twin.run_twin(
        twin, seed=SEED, params=SMALL, nc_path=out / "twin.nc", tif_path=out / "twin.tif", chunk=(60, 60)
    )


@pytest.fixture(scope="module")
def fitted(twin):
    """(station table, HeldOut) of the same twin and seed, without a grid."""
    _, _, table, _, _, held = sm_1km_twin.twin_held_out(twin, seed=SEED, params=SMALL)
    return table, held


# --- the written file ------------------------------------------------------------------------------


def test_the_twin_file_holds_the_standard_error_with_cf_attributes_and_the_ancillary_link(written):
    nc_path, tif_path = written.write.paths
    with netCDF4.Dataset(nc_path) as nc:
        sm, se = nc["sm"], nc["sm_standard_error"]
        assert sm.ancillary_variables.split() == ["sm_standard_error"]
        assert se.dtype == np.dtype("float32") and se.dimensions == sm.dimensions == ("time", "lat", "lon")
        assert se.chunking() == sm.chunking()
        assert se.standard_name == SE_NAME and se.units == sm.units == "m3 m-3"
        assert se.coverage_content_type == "qualityInformation" and se.grid_mapping == "crs"
        assert se.uncertainty_method == "quantile_regression" and se._FillValue == chunked.FILL_VALUE
        assert "quantile regression" in se.comment and "twin_block_validation" in se.comment
        assert f"{written.coverage['twin_block_validation'].measured:.1%}" in se.comment
    import rasterio

    with rasterio.open(tif_path) as tif:  # the GeoTIFF keeps the estimate only: one band per day
        assert tif.count == len(written.seamless.sm)


def test_the_standard_error_is_finite_and_non_negative_exactly_where_the_estimate_is(written):
    with xr.open_dataset(written.write.paths[0]) as ds:
        sm, se = ds["sm"].values, ds["sm_standard_error"].values
    assert np.isfinite(sm).any()
    np.testing.assert_array_equal(np.isfinite(se), np.isfinite(sm))
    assert (se[np.isfinite(se)] >= 0).all() and np.nanmax(se) > 0
    assert written.write.extra["n_standard_error"] == int(np.isfinite(se).sum())


def test_the_file_holds_the_quantile_models_prediction_window_by_window(written, twin):
    fit = written.held_out.validation["block"]
    coarse = written.seamless.sm.astype("float64")
    window = chunked.windows((len(twin.times), *twin.grid.shape), (1, 60, 60))[5]
    expected = chunked.predict_window(
        window,
        functools.partial(sm_1km.window_features, source=twin, coarse=coarse, coarse_grid=twin.coarse_grid),
        functools.partial(sm_1km.predict_standard_error, models=fit.quantile_models),
    )
    with netCDF4.Dataset(written.write.paths[0]) as nc:
        stored = nc["sm_standard_error"][window.key].filled(np.nan)
    np.testing.assert_allclose(stored, expected, rtol=1e-6)


def test_the_standard_error_is_half_the_distance_between_the_two_quantiles():
    class Shift:
        def __init__(self, value):
            self.value = value

        def predict(self, frame):
            return np.full(len(frame), self.value)

    matrix = np.zeros((3, len(sm_1km.FEATURES)))
    matrix[:, 0] = [0.2, 0.3, 0.99]
    se = sm_1km.predict_standard_error(matrix, models=(Shift(-0.02), Shift(0.03)), nominal=0.6827)
    np.testing.assert_allclose(se[:2], 0.025, rtol=1e-3)
    assert se[2] == pytest.approx((1.0 - 0.97) / 2, rel=1e-3)  # the upper quantile is clipped at 1 m3 m-3
    with pytest.raises(ValueError, match="increase"):
        sm_1km.fit_quantile_models(pd.DataFrame(), alphas=(0.84, 0.16))


# --- trained on the training stations, calibrated on the held-out ones -------------------------------------


def test_the_quantile_models_are_fitted_on_the_point_models_training_rows(fitted):
    table, held = fitted
    fit = held.validation["block"]
    rows = table[table["station"].isin(fit.train_stations)]
    again = sm_1km.fit_quantile_models(rows, seed=SEED, params=SMALL)
    x = table[list(sm_1km.FEATURES)]
    for ours, theirs in zip(fit.quantile_models, again, strict=True):
        assert ours.get_params()["alpha"] == theirs.get_params()["alpha"]
        np.testing.assert_array_equal(ours.predict(x), theirs.predict(x))
    assert [m.get_params()["alpha"] for m in fit.quantile_models] == list(sm_1km.QUANTILE_ALPHAS)


def test_changing_the_held_out_stations_values_changes_no_quantile_model(twin, fitted):
    table, held = fitted
    fit = held.validation["block"]
    other = copy.copy(twin)
    insitu = twin.insitu.copy()
    rows = insitu["station"].isin(fit.test_stations).to_numpy()
    insitu.loc[rows, "insitu"] = np.random.default_rng(0).permutation(insitu.loc[rows, "insitu"].to_numpy()) + 0.1
    other.insitu = insitu
    _, _, _, _, _, changed = sm_1km_twin.twin_held_out(other, seed=SEED, params=SMALL)
    x = table[list(sm_1km.FEATURES)]
    for ours, theirs in zip(fit.quantile_models, changed.validation["block"].quantile_models, strict=True):
        np.testing.assert_array_equal(ours.predict(x), theirs.predict(x))
    first = held.cv["block"][0]
    for ours, theirs in zip(first.quantile_models, changed.cv["block"][0].quantile_models, strict=True):
        np.testing.assert_array_equal(ours.predict(x), theirs.predict(x))


def test_the_coverage_is_measured_at_held_out_stations_only_and_in_sample_it_differs(written, fitted):
    table, held = fitted
    fit = held.validation["block"]
    reported = written.coverage["twin_block_validation"]
    assert reported.split == "twin_block_validation" and reported.nominal == uncertainty.NOMINAL
    test_rows = table[table["station"].isin(fit.test_stations)]
    held_out = uncertainty.interval_coverage(fit.test_prediction, fit.test_standard_error, test_rows["insitu"])
    assert (held_out.measured, held_out.n) == (reported.measured, reported.n) and reported.n == len(test_rows)
    assert set(written.validation["station"]).isdisjoint(fit.train_stations)
    train_rows = table[table["station"].isin(fit.train_stations)]
    in_sample = uncertainty.interval_coverage(fit.train_prediction, fit.train_standard_error, train_rows["insitu"])
    assert in_sample.n != reported.n and in_sample.measured != pytest.approx(reported.measured, abs=1e-9)
    # every split's coverage comes from its own held-out (out-of-fold) rows
    for (kind, part), name in sm_1km_twin.SPLIT_NAMES.items():
        assert written.coverage[name].n == held.frames[kind, part]["sm_1km_standard_error"].notna().sum()


def test_the_truth_coverage_is_over_every_written_cell(written):
    grid = written.truth_coverage["grid"]
    assert grid["n"] == written.write.extra["n_standard_error"] and 0 < grid["measured"] <= 1
    stations = written.truth_coverage["held_out_stations"]
    assert stations["n"] == written.coverage["twin_block_validation"].n


# --- the published version ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def published(request):
    """The succeeded sm_1km run of ``test_sm_1km`` (its ``sm_run`` fixture: the same version, published once)."""
    return request.getfixturevalue("sm_run")


def _path(run, name):
    from pathlib import Path

    from django.conf import settings

    return Path(settings.DATA_ROOT) / run.version.files.get(name=name).path


@pytest.mark.django_db
def test_the_summary_lists_one_entry_per_netcdf_file(published):
    entries = {e["file"]: e for e in published.summary["uncertainty"]}
    nc_files = set(published.version.files.filter(name__endswith=".nc").values_list("name", flat=True))
    assert set(entries) == nc_files == {"sm_1km_twin.nc", "sm_coarse_real.nc", "sm_coarse_1km_real.nc"}
    twin = entries["sm_1km_twin.nc"]
    assert (twin["variable"], twin["estimate"], twin["kind"], twin["method"]) == (
        "sm_standard_error",
        "sm",
        "standard_error",
        "quantile_regression",
    )
    cal = twin["calibration"]
    assert cal["split"] == "twin_block_validation" and cal["nominal"] == uncertainty.NOMINAL and cal["n"] > 30
    assert "obs_error_std = 0" in cal["note"] and not twin["not_calibrated_reason"]
    assert cal["calibrated"] == (abs(cal["measured"] - cal["nominal"]) <= cal["tolerance"])
    for name in ("sm_coarse_real.nc", "sm_coarse_1km_real.nc"):
        assert entries[name]["calibration"] is None and "station" in entries[name]["not_calibrated_reason"]
    used = published.version.lineage["parameters"]["uncertainty"]
    assert used["quantile_alphas"] == list(sm_1km.QUANTILE_ALPHAS) and used["obs_error_std"] == 0.0
    assert used["interval_nominal_coverage"] == uncertainty.NOMINAL


@pytest.mark.django_db
def test_the_published_coverage_is_recomputed_from_the_published_file(published):
    from products.models import ValidationResult

    params = published.version.lineage["parameters"]
    n = int(params["twin_coarse_cells"])
    twin = sm_1km_twin.Twin(n, n, int(params["twin_days"]), int(params["twin_stations"]), seed=int(params["seed"]))
    held_out = set(
        ValidationResult.objects.filter(
            version=published.version, split="twin_block_validation", scope="site", variable="sm_1km"
        ).values_list("label", flat=True)
    )
    assert held_out
    obs = twin.insitu[twin.insitu["station"].isin(held_out)]
    cells = twin.stations.set_index("station").loc[obs["station"], ["row", "col"]].to_numpy()
    days = pd.Series(np.arange(len(twin.times)), index=pd.DatetimeIndex(twin.times)).loc[obs["time"]].to_numpy()
    with xr.open_dataset(_path(published, "sm_1km_twin.nc")) as ds:
        sm = ds["sm"].values[days, cells[:, 0], cells[:, 1]]
        se = ds["sm_standard_error"].values[days, cells[:, 0], cells[:, 1]]
    again = uncertainty.interval_coverage(sm, se, obs["insitu"].to_numpy(), split="twin_block_validation")
    published = next(e for e in published.summary["uncertainty"] if e["file"] == "sm_1km_twin.nc")["calibration"]
    assert again.n == published["n"]
    assert again.mean_standard_error == pytest.approx(published["mean_standard_error"], rel=1e-5)  # float32 file
    # the file's estimate is packed to 0.001 m3 m-3: a few station-days on the interval's edge may flip
    assert again.measured == pytest.approx(published["measured"], abs=0.03)


@pytest.mark.django_db
def test_the_real_files_say_there_is_no_standard_error(published):
    for name in ("sm_coarse_real.nc", "sm_coarse_1km_real.nc"):
        with xr.open_dataset(_path(published, name)) as ds:
            assert ds["sm"].attrs["ancillary_variables"] == "sm_standard_error"
            se = ds["sm_standard_error"]
            assert se.attrs["standard_name"] == SE_NAME and np.isfinite(ds["sm"].values).any()
            assert np.isnan(se.values).all() and "Calibration not measured" in se.attrs["comment"]
    descriptions = dict(published.version.files.values_list("name", "description"))
    assert all("estimate only" in d for n, d in descriptions.items() if n.endswith(".tif"))
