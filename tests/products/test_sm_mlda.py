"""Soil moisture ML-DA: the chain on a synthetic twin with known answers, the real-data pieces, and
`generate sm_mlda` end to end on real ISMN stations and the real ERS cell 1395."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from django.conf import settings
from django.core.management import CommandError, call_command

from products.generators import sm_mlda
from products.generators.twins import sm_mlda as sm_mlda_twin
from products.methods.nudging import nudge

SMALL = {"n_estimators": 80}


@pytest.fixture(scope="module")
def twin():
    return sm_mlda_twin.make_twin(40, 730, seed=3)


@pytest.fixture(scope="module")
def result(twin):
    return sm_mlda_twin.run_twin(twin, n_splits=5, seed=3, params=SMALL, memory_days=3.0)


# --- the twin: known answers -------------------------------------------------------------------------


@pytest.mark.parametrize("product", sm_mlda.PRODUCTS)
def test_triple_collocation_recovers_the_known_error_std_of_each_product(result, twin, product):
    table = result.labels.table
    ok = (table["rule"] == "tc").to_numpy()
    ratio = table.loc[ok, f"err_std_{product}"].to_numpy() / twin.known_err_std[product][ok]
    assert ok.sum() >= 30
    assert 0.88 < np.nanmedian(ratio) < 1.12
    assert np.mean(np.abs(ratio - 1) < 0.3) >= 0.8  # per pixel, with ~160 collocated days each


def test_pixels_below_the_minimum_sample_rule_get_no_labels(result, twin):
    table = result.labels.table
    short = twin.pixels["short_record"].to_numpy()
    assert short.sum() >= 2
    assert (table.loc[short, "rule"] == "excluded").all() and table.loc[short, "too_few_samples"].all()
    assert np.isnan(result.labels.labels[short]).all()
    assert (table.loc[~short, "rule"] == "tc").all()
    assert not set(twin.pixels.loc[short, "pixel"]) & set(result.fit.train_pixels)


def test_the_equal_weight_fallback_labels_short_pixels_and_keeps_tc_elsewhere(twin, result):
    labels = sm_mlda.tc_labels(twin.products, fallback="equal")
    short = twin.pixels["short_record"].to_numpy()
    assert (labels.table.loc[short, "rule"] == "equal").all()
    assert np.isfinite(labels.labels[short]).any()
    np.testing.assert_allclose(labels.labels[~short], result.labels.labels[~short])


def test_merged_labels_are_closer_to_the_truth_than_every_product(result):
    s = result.truth_scores
    for product in sm_mlda.PRODUCTS:
        assert s["labels_vs_reference_units"] < s[f"{product}_rescaled"], product


def test_the_tc_nudging_gain_is_close_to_the_optimal_gain_known_in_the_twin(result):
    g = result.gain
    from_tc = g["from_tc"].to_numpy()
    assert from_tc.mean() > 0.8
    assert abs(g.loc[from_tc, "gain"].median() - g.loc[from_tc, "oracle_gain"].median()) < 0.1
    assert ((g["gain"] >= 0) & (g["gain"] <= 1)).all()


def test_nudging_improves_the_model_where_retrievals_exist_and_after_them(result):
    s = result.truth_scores
    assert s["ml_da_on_retrieval_days"] < 0.95 * s["ml_on_retrieval_days"]
    assert s["ml_da_without_retrieval"] < s["ml_without_retrieval"]  # the increment memory carries on


def test_ml_da_beats_the_model_alone_at_independent_stations(result):
    v = result.validation
    assert v["ml_da"]["median"]["n_stations"] == len(result.validation_pixels) >= 10
    assert v["ml_da"]["median"]["r"] > v["ml"]["median"]["r"]
    assert v["ml_da"]["median"]["ubrmse"] < v["ml"]["median"]["ubrmse"]
    assert set(v) == {"ml_da", "ml", "labels", "passive", "active_m3", "reanalysis"}
    assert set(v["ml_da"]["class"]) <= {"dry", "wet"}


def test_the_independent_triplet_nudges_a_series_that_never_saw_the_pixel_and_measures_the_bias(result, twin):
    fit, n_t = result.fit, twin.truth.shape[1]
    training = np.repeat(twin.pixels["pixel"].isin(fit.train_pixels).to_numpy(), n_t)
    assert result.settings["triplet"] == "independent"
    np.testing.assert_array_equal(result.series["ml"].ravel()[training], fit.cv_pred[training])
    np.testing.assert_array_equal(
        result.series["ml"].ravel()[~training & (fit.fold < 0)], fit.pred[~training & (fit.fold < 0)]
    )
    bias = {t: result.tc_gain_bias[t]["training_pixels"] for t in sm_mlda_twin.TRIPLETS}
    assert bias["independent"]["n_pixels"] == bias["dependent"]["n_pixels"] >= 20
    # the final model learnt the training pixels' labels (merged from passive and active): TC, which assumes
    # independent errors, underestimates its error variance more than that of the cross-fitted model
    assert bias["dependent"]["err_var_ml_ratio"] < bias["independent"]["err_var_ml_ratio"]
    assert abs(bias["independent"]["gain_bias"]) < abs(bias["dependent"]["gain_bias"])
    assert abs(bias["independent"]["gain_bias"]) < 0.02


def test_validation_stations_are_never_used_upstream(result, twin):
    assert not set(result.train_pixels) & set(result.validation_pixels)
    val = twin.pixels["role"].to_numpy() == "validation"
    assert np.isnan(twin.insitu[~val]).all() and np.isfinite(twin.insitu[val]).all()
    assert (result.fit.fold[np.repeat(val, twin.truth.shape[1])] == -1).all()


def test_cross_validation_holds_every_training_pixel_out_once(result, twin):
    folds = pd.DataFrame(
        {"pixel": np.repeat(twin.pixels["pixel"].to_numpy(), twin.truth.shape[1]), "fold": result.fit.fold}
    )
    per_pixel = folds[folds["pixel"].isin(result.train_pixels)].groupby("pixel")["fold"].nunique()
    assert (per_pixel == 1).all() and folds["fold"].max() == 4
    assert result.cv["ml_cv"]["median"]["n_stations"] == len(result.train_pixels)


# --- building blocks with known answers ------------------------------------------------------------------


def test_the_antecedent_precipitation_index_decays_geometrically():
    np.testing.assert_allclose(sm_mlda.antecedent_precipitation_index([[2.0, 0, 0, 1]], 0.5), [[2, 1, 0.5, 1.25]])
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        sm_mlda.antecedent_precipitation_index([1.0], 1.0)


def test_nudging_without_memory_is_pointwise_nudging():
    rng = np.random.default_rng(0)
    model, obs = rng.normal(size=(3, 50)), np.where(rng.random((3, 50)) < 0.4, rng.normal(size=(3, 50)), np.nan)
    gain = np.array([0.2, 0.5, 0.9])
    np.testing.assert_allclose(sm_mlda.nudge_series(model, obs, gain), nudge(model, obs, gain[:, None]))
    np.testing.assert_array_equal(sm_mlda.nudge_series(model, obs, 0.0, memory_days=5), model)
    full = sm_mlda.nudge_series(model, obs, 1.0, memory_days=5)
    np.testing.assert_allclose(full[np.isfinite(obs)], obs[np.isfinite(obs)])


def test_the_increment_decays_with_the_memory_time_scale():
    out = sm_mlda.nudge_series(np.zeros(4), np.array([1.0, np.nan, np.nan, np.nan]), 0.5, memory_days=2.0)
    a = np.exp(-0.5)
    np.testing.assert_allclose(out, [0.5, 0.5 * a, 0.5 * a**2, 0.5 * a**3])


def test_the_climatological_background_leaves_each_year_out():
    days = pd.date_range("2010-01-01", "2011-12-31", freq="D")
    wide = pd.DataFrame([np.where(days.year == 2010, 10.0, 20.0)], index=["p"], columns=days)
    bg = sm_mlda.climatology_background(wide, window_days=31)
    assert np.allclose(bg.loc["p", days.year == 2010], 20.0) and np.allclose(bg.loc["p", days.year == 2011], 10.0)
    one_year = wide.loc[:, days.year == 2010]
    assert sm_mlda.climatology_background(one_year).isna().all().all()


def test_withheld_retrievals_score_the_nudging_without_ever_nudging_it():
    rng = np.random.default_rng(1)
    days = pd.date_range("2010-01-01", periods=600, freq="D")
    anomaly = np.zeros((8, 600))
    for t in range(1, 600):
        anomaly[:, t] = 0.9 * anomaly[:, t - 1] + rng.normal(0, 3, 8)
    obs = pd.DataFrame(
        np.where(rng.random((8, 600)) < 0.6, 50 + anomaly + rng.normal(0, 1, (8, 600)), np.nan),
        index=[f"p{i}" for i in range(8)],
        columns=days,
    )
    background = pd.DataFrame(50.0, index=obs.index, columns=days)
    res, _ = sm_mlda.withheld_retrieval_check(background, obs, gain=0.7, memory_days=5, fraction=0.3, min_n=20)
    assert res["nudged"]["median"]["n_stations"] == 8
    assert res["nudged"]["median"]["ubrmse"] < res["background"]["median"]["ubrmse"]
    res0, _ = sm_mlda.withheld_retrieval_check(background, obs, gain=0.7, memory_days=0, fraction=0.3, min_n=20)
    assert res0["nudged"]["pooled"]["rmse"] == pytest.approx(res0["background"]["pooled"]["rmse"])


def test_the_memory_buffer_is_three_e_folding_times_of_the_increment():
    assert sm_mlda.memory_buffer_days(3.0) == 9 and sm_mlda.memory_buffer_days(0.0) == 0
    assert np.exp(-sm_mlda.memory_buffer_days(5.0) / 5.0) <= 0.05
    with pytest.raises(ValueError, match="memory_days"):
        sm_mlda.memory_buffer_days(-1.0)


def test_month_blocks_withhold_whole_months_with_a_buffer_before_each():
    days = pd.date_range("2010-01-01", "2012-12-31", freq="D")
    rng = np.random.default_rng(4)
    valid = rng.random((6, len(days))) < 0.5
    valid[5] = False  # a point without retrievals withholds nothing
    withheld, buffer = sm_mlda.withheld_masks(valid, days, block="month", fraction=0.2, seed=1, buffer_days=9)
    assert not (withheld & buffer).any() and not ((withheld | buffer) & ~valid).any()
    month = pd.Series(days.to_period("M"))
    for i in range(5):
        held = sorted(set(month[withheld[i]]))
        assert len(held) == round(0.2 * 36)  # about a fifth of its months, drawn per point
        in_held = month.isin(held).to_numpy()
        np.testing.assert_array_equal(withheld[i], valid[i] & in_held)  # every retrieval of a held month
        for t in np.flatnonzero(buffer[i]):  # a buffer day lies within 9 days before a held month
            assert not in_held[t] and in_held[t + 1 : t + 10].any()
        for m in held:  # and every retrieval of the 9 days before a held month is a buffer day (or held)
            start = np.flatnonzero((month == m).to_numpy())[0]
            window = slice(max(start - 9, 0), start)
            assert ((buffer[i] | withheld[i])[window] == valid[i][window]).all()
    assert not withheld[5].any()
    day, none = sm_mlda.withheld_masks(valid, days, block="day", fraction=0.2, seed=1)
    assert not none.any() and 0.15 < day.sum() / valid.sum() < 0.25
    with pytest.raises(ValueError, match="block"):
        sm_mlda.withheld_masks(valid, days, block="year")


def test_withheld_months_remove_the_inflation_of_withheld_days():
    """On a strongly autocorrelated series the nudging's memory bridges a one-day gap, not a month: the
    random-day check credits the nudging with skill that the month check (with its buffer) does not."""
    rng = np.random.default_rng(1)
    days = pd.date_range("2010-01-01", periods=1095, freq="D")
    anomaly = np.zeros((8, len(days)))
    for t in range(1, len(days)):
        anomaly[:, t] = 0.9 * anomaly[:, t - 1] + rng.normal(0, 3, 8)
    obs = pd.DataFrame(
        np.where(rng.random(anomaly.shape) < 0.6, 50 + anomaly + rng.normal(0, 1, anomaly.shape), np.nan),
        index=[f"p{i}" for i in range(8)],
        columns=days,
    )
    gains = {}
    for block in sm_mlda.WITHHELD_BLOCKS:
        res = sm_mlda.withheld_check(obs, sm_mlda.climatology_background, block=block, gain=0.7, memory_days=5)
        med = {k: res.results[k]["median"]["ubrmse"] for k in ("background", "nudged")}
        gains[block] = med["background"] - med["nudged"]
        assert res.results["nudged"]["median"]["n_stations"] == 8
        assert res.buffer_days == (15 if block == "month" else 0)
        assert not (res.assimilated & res.withheld).to_numpy().any()
    assert gains["day"] > 0.5 and abs(gains["month"]) < 0.2 * gains["day"]


def test_collocation_uses_great_circle_distances():
    stations = pd.DataFrame({"code": ["a", "b"], "lat": [45.0, 0.0], "lon": [10.0, 0.0]})
    points = pd.DataFrame({"code": ["1", "2"], "lat": [45.1, 30.0], "lon": [10.0, 30.0]})
    pairs = sm_mlda.collocate(stations, points, max_km=12.5)
    assert pairs["station"].tolist() == ["a"] and pairs["point"].tolist() == ["1"]
    assert pairs["distance_km"].iloc[0] == pytest.approx(11.12, abs=0.01)


def test_the_in_situ_rescaling_of_a_year_is_fitted_on_the_other_years():
    days = pd.date_range("2015-01-01", "2017-12-31", freq="D")
    rng = np.random.default_rng(3)
    truth = 0.25 + 0.05 * np.sin(2 * np.pi * days.dayofyear.to_numpy() / 365.25) + rng.normal(0, 0.02, len(days))
    ref = truth + 0.01
    sat = 40 + 200 * truth + rng.normal(0, 2, len(days))
    out = sm_mlda.rescale_leave_year_out(sat, ref, days)
    changed = np.where(days.year == 2016, ref + 0.2, ref)  # the scored year's in-situ values
    again = sm_mlda.rescale_leave_year_out(sat, changed, days)
    y2016 = np.asarray(days.year == 2016)
    np.testing.assert_array_equal(out[y2016], again[y2016])  # never fit their own rescaling
    assert not np.allclose(out[~y2016], again[~y2016])  # they do fit the other years'
    assert abs(np.nanmean(out - ref)) < 0.005 and np.corrcoef(out, ref)[0, 1] > 0.8
    one_year = days.year == 2015
    assert np.isnan(sm_mlda.rescale_leave_year_out(sat[one_year], ref[one_year], days[one_year])).all()
    pairs = pd.DataFrame({"station": ["s"], "point": ["p"], "distance_km": [1.0]})
    insitu = pd.DataFrame({"station": "s", "time": days, "insitu": ref})
    table = pd.DataFrame([sat], index=["p"], columns=days)
    res = sm_mlda.validate_collocated(pairs, insitu, {"sat": table})
    assert res["sat"]["median"]["n_stations"] == 1 and res["sat"]["pooled"]["n"] == len(days)
    with pytest.raises(ValueError, match="rescaling"):
        sm_mlda.validate_collocated(pairs, insitu, {"sat": table}, rescaling="cdf")


def test_ismn_daily_keeps_good_flags_full_days_and_the_shallowest_sensor():
    hours = pd.date_range("2018-01-01", periods=48, freq="h")
    rows = [("S:a", "sm_0.05_0.05", t, 0.2 if t.day == 1 else 0.3, "m3 m-3", "G") for t in hours]
    rows += [("S:a", "sm_0.20_0.20", t, 0.9, "m3 m-3", "G") for t in hours]
    rows += [("S:b", "sm_0.05_0.05", t, 0.1, "m3 m-3", "D02" if t.hour < 14 else "G") for t in hours]
    obs = pd.DataFrame(rows, columns=["station", "variable", "time", "value", "units", "quality_flag"])
    daily = sm_mlda.ismn_daily(obs)
    assert daily["station"].tolist() == ["S:a", "S:a"]  # S:b keeps 10 good hours a day (< 12)
    np.testing.assert_allclose(daily["insitu"], [0.2, 0.3])
    with pytest.raises(ValueError, match="m3 m-3"):
        sm_mlda.ismn_daily(obs.assign(units="%"))


def test_screening_drops_frozen_snowy_and_flagged_retrievals():
    t = pd.Timestamp("2010-01-01 10:00")
    obs = pd.DataFrame(
        {
            "station": ["1"] * 4 + ["2"] * 4 + ["3"],
            "variable": ["ssm", "frozen_prob", "snow_prob", "ssm"]
            + ["ssm", "frozen_prob", "snow_prob", "ssm"]
            + ["ssm"],
            "time": [t, t, t, t + pd.Timedelta(hours=1)] * 2 + [t],
            "value": [40.0, 5, 0, 60.0, 40.0, 50, 0, 30.0, 70.0],
            "units": ["%"] * 9,
            "quality_flag": ["p0s1", "", "", "p0s1", "p0s1", "", "", "p1s1", "p0s2"],
        }
    )
    daily = sm_mlda.screen_retrievals(obs)
    assert daily["station"].tolist() == ["1"] and daily["ssm"].tolist() == [50.0]
    assert daily["n_retrievals"].tolist() == [2]
    with pytest.raises(ValueError, match="no 'ssm'"):
        sm_mlda.screen_retrievals(obs[obs["variable"] != "ssm"])


# --- bad inputs ------------------------------------------------------------------------------------------


def test_triple_collocation_labels_need_exactly_three_products(twin):
    with pytest.raises(ValueError, match="exactly three"):
        sm_mlda.tc_labels({"a": twin.products["passive"], "b": twin.products["active"]})
    with pytest.raises(ValueError, match="fallback"):
        sm_mlda.tc_labels(twin.products, fallback="median")
    with pytest.raises(ValueError, match="one shape"):
        sm_mlda.tc_labels({**twin.products, "active": twin.products["active"][:, :10]})


def test_the_model_rejects_more_folds_than_pixels_and_missing_features(twin):
    table = sm_mlda.add_features(twin.forcing).assign(label=0.2)
    with pytest.raises(ValueError, match="n_splits"):
        sm_mlda.fit_model(table, train=np.ones(len(table), bool), n_splits=len(twin.pixels) + 1)
    with pytest.raises(ValueError, match="missing columns"):
        sm_mlda.fit_model(table.drop(columns=["api_fast"]), train=np.ones(len(table), bool))


def test_bad_twin_settings_and_gains_are_rejected(twin):
    with pytest.raises(ValueError, match="n_pixels"):
        sm_mlda_twin.make_twin(2, 100)
    with pytest.raises(ValueError, match="gain"):
        sm_mlda_twin.run_twin(twin, gain=1.5)
    with pytest.raises(ValueError, match="same shape"):
        sm_mlda.nudge_series(np.zeros(3), np.zeros(4), 0.5)
    with pytest.raises(ValueError, match="within"):
        sm_mlda.nudge_series(np.zeros(3), np.zeros(3), -0.1)


def test_every_output_file_must_say_whether_it_is_real_or_synthetic():
    frame = pd.DataFrame({"station": ["a"], "time": [pd.Timestamp("2010-01-01")], "sm": [0.2]})
    stations = pd.DataFrame({"station": ["a"], "lat": [1.0], "lon": [2.0]})
    with pytest.raises(ValueError, match="data_kind"):
        sm_mlda.to_cf_timeseries(frame, {"sm": {"units": "m3 m-3"}}, stations=stations, attrs={})


def test_the_twin_file_is_labelled_synthetic_and_carries_the_tc_check(result, tmp_path):
    from products.methods.cf import write_netcdf

    path = write_netcdf(sm_mlda_twin.twin_dataset(result), tmp_path / "twin.nc")
    with xr.open_dataset(path) as ds:
        assert ds.attrs["data_kind"] == "synthetic twin" and ds.attrs["featureType"] == "timeSeries"
        assert "SYNTHETIC" in ds.attrs["comment"]
        assert ds["sm_mlda"].attrs["units"] == "m3 m-3" and ds["station_name"].attrs["cf_role"] == "timeseries_id"
        np.testing.assert_allclose(ds["known_err_std_passive"], 0.04)
        np.testing.assert_allclose(ds["sm_mlda"].values, result.series["ml_da"])


# --- the pipeline on the real database -------------------------------------------------------------------

ERS_CELL = "pytesmo_testdata/sat/ers/55R11/TUW_ERS_AMI_SSM_WARP55R11_1395.nc"
PARAMS = {"seed": 5, "n_splits": 3, "twin_pixels": 24, "twin_days": 730, "n_estimators": 60, "satellite_points": 40}


@pytest.fixture(scope="module")
def real_inputs(django_db_setup, django_db_blocker, shared_data):
    """All real ISMN test stations, and 33 of the 1,304 grid points of the real ERS cell 1395.

    The whole cell is 2.3 million rows (minutes to load); the subset goes through the same loader
    (:func:`ingestion.services.load_point_data`) under an IngestRun of kind ``ascat``.
    """
    from django.db import transaction

    from ingestion.models import IngestRun
    from ingestion.readers import ascat
    from ingestion.readers.base import PointData
    from ingestion.services import file_checksums, ingest, load_point_data

    path = shared_data / ERS_CELL
    data = ascat.read(path)
    codes = sorted(data.stations["code"])[::40]
    subset = PointData(
        data.stations[data.stations["code"].isin(codes)].reset_index(drop=True),
        data.observations[data.observations["station"].isin(codes)].reset_index(drop=True),
    )
    with django_db_blocker.unblock():
        ismn = ingest("ismn", shared_data / "ismn_testdata")
        assert not ismn.failed
        files = file_checksums([path])
        run = IngestRun.objects.create(
            kind="ascat",
            source_path=f"{path}#gpi-subset",
            checksum=files[0]["sha256"],
            files=files,
            reader=ascat.__name__,
            reader_version=ascat.READER_VERSION,
        )
        with transaction.atomic():
            run.stations, run.observations, run.skipped_duplicates = load_point_data(subset.validate(path), run)
        run.status = IngestRun.Status.SUCCEEDED
        run.save()
    return shared_data


@pytest.fixture(scope="module")
def sm_run(real_inputs, django_db_blocker):
    from products.models import GenerationRun

    with django_db_blocker.unblock():
        runs = GenerationRun.objects.filter(product="sm_mlda", status="succeeded", parameters=PARAMS)
        if not runs.exists():  # tests/products/test_cf_published.py may have published it already
            call_command("generate", "sm_mlda", "--params", json.dumps(PARAMS))
        return runs.latest("created_at")


@pytest.mark.django_db
def test_it_names_the_missing_ingest_command_when_no_ismn_station_is_there(real_inputs):
    from ingestion.models import Station

    Station.objects.filter(source="ISMN").delete()  # rolled back at the end of the test
    with pytest.raises(CommandError, match="manage.py ingest ismn"):
        call_command("generate", "sm_mlda", "--params", json.dumps(PARAMS))


@pytest.mark.django_db
def test_generate_publishes_a_version_with_real_and_synthetic_files(sm_run):
    version = sm_run.version
    names = set(version.files.values_list("name", flat=True))
    assert names == {"sm_mlda_twin.nc", "sm_mlda_real.nc"}
    root = Path(settings.DATA_ROOT)
    with xr.open_dataset(root / version.files.get(name="sm_mlda_twin.nc").path) as ds:
        assert ds.attrs["data_kind"] == "synthetic twin" and ds.attrs["Conventions"] == "CF-1.8, ACDD-1.3"
        assert ds.sizes["station"] == PARAMS["twin_pixels"]
    with xr.open_dataset(root / version.files.get(name="sm_mlda_real.nc").path) as ds:
        assert ds.attrs["data_kind"] == "real" and ds.attrs["ascat_ingested"] == "yes"
        insitu = ds.sel(station=ds["site_type"] == "in_situ")
        assert {"SCAN:AAMU-jtg", "FR_Aqui:fraye"} <= set(insitu["station_name"].values)
        assert float(insitu["insitu"].min()) >= 0 and float(insitu["insitu"].max()) <= 0.6
        sat = ds.sel(station=ds["site_type"] == "satellite_point")
        assert sat.sizes["station"] > 0 and np.isfinite(sat["ssm_nudged"]).any()
        withheld = np.isfinite(sat["ssm_withheld"].values)
        assert withheld.any() and (sat["ssm_withheld"].values[withheld] == sat["ssm"].values[withheld]).all()
        assert float(sat["lon"].min()) >= 10 and float(sat["lat"].min()) >= 45  # ERS cell 1395
    assert sm_run.summary["real"]["collocated_stations"] == 0
    assert sm_run.summary["real"]["nearest_station_point_km"] > 100
    roles = {i["role"] for i in sm_run.inputs}
    assert any("ISMN" in r for r in roles) and any("ASCAT" in r for r in roles) and any("synthetic" in r for r in roles)


@pytest.mark.django_db
def test_validation_rows_are_stored_and_labelled_real_or_synthetic(sm_run):
    from products.models import ValidationResult

    rows = ValidationResult.objects.filter(version=sm_run.version)
    splits = set(rows.values_list("split", flat=True))
    assert splits == {"twin_insitu", "twin_cv", "real_withheld_months", "real_withheld"}
    for row in rows.filter(scope__in=["pooled", "class"]):
        expected = "real: " if row.split.startswith("real") else "synthetic twin: "
        assert row.label.startswith(expected), row.label
    summary = sm_run.summary["twin"]["medians"]["ml_da"]
    sites = rows.filter(split="twin_insitu", variable="sm_ml_da", scope="site")
    assert sites.count() == summary["n_stations"] >= 5
    assert summary["r"] == pytest.approx(float(np.median([s.r for s in sites])))
    assert summary["ubrmse"] == pytest.approx(float(np.median([s.ubrmse for s in sites])))
    for split in ("real_withheld_months", "real_withheld"):
        real = rows.filter(split=split, scope="pooled")
        assert {r.variable for r in real} == {"ssm_background", "ssm_nudged"} and all(r.units == "%" for r in real)
    withheld = sm_run.summary["real"]["withheld_retrievals"]
    assert withheld["real_withheld_months"]["buffer_days"] == 9 and withheld["real_withheld_months"]["buffer"] > 0
    assert withheld["real_withheld"]["buffer"] == 0


@pytest.mark.django_db
def test_the_lineage_records_every_parameter_and_where_each_statistic_was_fitted(sm_run):
    from products.pipelines.sm_mlda import DEFAULTS

    lineage = sm_run.version.lineage
    used = lineage["parameters"]
    assert set(DEFAULTS) <= set(used) and {**PARAMS}.items() <= used.items()
    assert used["holdout_buffer_days"] == 9 and used["triplet"] == "independent"  # resolved, not None
    assert used["lightgbm"]["n_estimators"] == PARAMS["n_estimators"] and "num_leaves" in used["lightgbm"]
    fitted = lineage["statistics_fitted_on"]
    assert any("background" in k and "assimilated only" in v for k, v in fitted.items())
    assert any("twin_cv" in k and "other folds" in v for k, v in fitted.items())
    assert any("in-situ climatology" in k and "other years" in v for k, v in fitted.items())
    bias = sm_run.summary["tc_gain_bias_twin"]
    assert {"dependent", "independent", "oracle", "bias"} <= set(bias) and bias["used"] == "independent"


@pytest.mark.django_db
def test_the_dataset_page_shows_the_twin_and_real_tables_with_station_medians(sm_run, client):
    from django.urls import reverse

    html = client.get(reverse("catalog:dataset_detail", args=[sm_run.dataset_id])).content.decode()
    start = html.index('id="validation-twin_insitu"')
    table = html[start : html.index("</table>", start)]
    assert "SYNTHETIC twin" in html[html.rindex("<h3>", 0, start) : start]
    medians = sm_run.summary["twin"]["medians"]["ml_da"]
    row = table[table.index("<td>sm_ml_da</td>") :]
    row = row[: row.index("</tr>")]
    assert f"<td>{int(medians['n_stations'])}</td><td>{medians['r']:.3f}</td><td>{medians['ubrmse']:.4f}</td>" in row
    assert 'id="validation-real_withheld"' in html
    assert 'id="classification-table"' not in html  # the freeze/thaw table only where there are classifications
