"""ET fusion pipeline on a few real towers and the real ERA5 points (no database)."""

import math
import os
from pathlib import Path

import lightgbm
import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ingestion.readers.base import ReaderError
from ingestion.readers.cardamom import read_cardamom
from products.generators import et_fusion, et_fusion_cf
from products.methods import cf
from products.methods.metrics import summary
from tests.conftest import FEW_SITES as SITES

SMALL = {"n_estimators": 40}


@pytest.fixture(scope="module")
def data_dir() -> Path:
    path = Path(os.environ.get("SHARED_DATA_DIR", "/work/shared/data"))
    assert path.is_dir(), f"{path} not found: set SHARED_DATA_DIR to the real sample data"
    return path


@pytest.fixture(scope="module")
def towers(data_dir):
    data = read_cardamom(data_dir / "cardamom_fluxval")
    return (
        data.observations[data.observations["station"].isin(SITES)],
        data.stations[data.stations["code"].isin(SITES)],
    )


@pytest.fixture(scope="module")
def table(towers):
    return et_fusion.build_training_table(*towers)


@pytest.fixture(scope="module")
def result(table):
    return et_fusion.run(table, n_splits=3, seed=7, params=SMALL)


@pytest.fixture(scope="module")
def era5(data_dir):
    with xr.open_dataset(data_dir / "xclim_era5_cities" / "daily_surface_cancities_1990-1993.nc") as ds:
        yield ds.load()


@pytest.fixture(scope="module")
def drivers(era5):
    return et_fusion.era5_monthly_drivers(era5)


def test_the_table_has_one_row_per_et_value_with_drivers(table, towers):
    obs = towers[0]
    assert len(table) == (obs["variable"] == "et").sum()
    assert set(table["station"]) == set(SITES)
    assert not table[list(et_fusion.FEATURES)].isna().any().any()
    assert table["is_validation"].sum() == ((obs["variable"] == "et") & obs["is_validation"]).sum()


def test_validation_rows_take_drivers_from_the_same_station_month(table, towers):
    obs = towers[0]
    val = table[table["is_validation"]]
    vpd = obs[(obs["variable"] == "vpd") & ~obs["is_validation"]].set_index(["station", "time"])["value"]
    np.testing.assert_array_equal(val["vpd"], vpd.loc[list(zip(val["station"], val["time"], strict=True))].to_numpy())


def test_it_rejects_drivers_in_other_units(towers):
    obs, stations = towers
    kelvin = obs.assign(units=obs["units"].where(obs["variable"] != "tmin", "K"))
    with pytest.raises(ValueError, match="'tmin' must be in 'degC'"):
        et_fusion.build_training_table(kelvin, stations)


def test_it_rejects_a_month_that_is_both_training_and_validation_target(towers):
    obs, stations = towers
    leak = obs[(obs["variable"] == "et") & ~obs["is_validation"]].head(1).assign(is_validation=True)
    with pytest.raises(ValueError, match="appears twice"):
        et_fusion.build_training_table(pd.concat([obs, leak]), stations)


def test_every_station_is_left_out_exactly_once(result):
    folds = result.predictions.groupby("station")["fold"].unique()
    assert all(len(f) == 1 for f in folds) and len(folds) == len(SITES)
    assert sorted(set(folds.str[0])) == list(range(result.n_splits))
    assert result.predictions["et_pred"].notna().all()


def test_no_prediction_comes_from_a_model_that_saw_its_station(result):
    pred = result.predictions
    for k, trained_on in enumerate(result.fold_train_stations):
        left_out = set(pred.loc[pred["fold"] == k, "station"])
        assert left_out and not left_out & trained_on
        assert left_out | trained_on == set(SITES)


def test_a_fold_model_refitted_on_its_reported_stations_gives_the_same_predictions(result, table):
    k = 1
    train = table[table["station"].isin(result.fold_train_stations[k]) & ~table["is_validation"]]
    model = lightgbm.LGBMRegressor(**result.params).fit(train[list(et_fusion.FEATURES)], train["et"])
    rows = result.predictions["fold"] == k
    np.testing.assert_allclose(
        model.predict(table.loc[rows, list(et_fusion.FEATURES)]), result.predictions.loc[rows, "et_pred"], rtol=1e-12
    )


def test_metrics_equal_metrics_recomputed_from_the_predictions(result):
    pred = result.predictions
    val, cv = pred[pred["is_validation"]], pred[~pred["is_validation"]]
    assert result.metrics["validation"]["pooled"] == pytest.approx(summary(val["et_pred"], val["et_obs"]), nan_ok=True)
    assert result.metrics["cv"]["pooled"] == pytest.approx(summary(cv["et_pred"], cv["et_obs"]), nan_ok=True)
    for site, m in result.metrics["validation"]["site"].items():
        rows = val[val["station"] == site]
        assert m == pytest.approx(summary(rows["et_pred"], rows["et_obs"]), nan_ok=True)
    assert result.metrics["validation"]["pooled"]["n"] == len(val) > 0
    rows = et_fusion.metric_rows(result)
    assert {(s, sc) for s, sc, _, _ in rows} == {
        ("validation", "pooled"),
        ("validation", "site"),
        ("validation", "class"),
        ("cv", "pooled"),
    }
    assert sum(1 for _, scope, _, _ in rows if scope == "site") == val["station"].nunique()


def test_era5_drivers_are_physically_sane(drivers, era5):
    assert len(drivers) == era5.sizes["location"] * 48
    assert set(drivers["station"]) == set(era5["location"].values)
    assert drivers["ssrd"].between(0, 40).all()
    assert (drivers["vpd"] >= 0).all() and (drivers["precip"] >= 0).all()
    assert (drivers["tmin"] < drivers["tmax"]).all()
    assert drivers["tmax"].between(-50, 45).all()
    assert (drivers["time"].dt.day == 1).all()


def test_era5_drivers_equal_a_hand_computation_for_one_month(drivers, era5):
    day = era5.sel(location="Saskatoon", time="1991-07")
    tas, tdps = day["tas"].values.astype(float) - 273.15, day["tdps"].values.astype(float) - 273.15
    vpd = [
        10 * (0.6108 * math.exp(17.27 * a / (a + 237.3)) - 0.6108 * math.exp(17.27 * d / (d + 237.3)))
        for a, d in zip(tas, tdps, strict=True)
    ]
    row = drivers[(drivers["station"] == "Saskatoon") & (drivers["time"] == "1991-07-01")].iloc[0]
    assert row["vpd"] == pytest.approx(sum(max(v, 0) for v in vpd) / len(vpd), rel=1e-6)
    assert row["tmin"] == pytest.approx(float(day["tasmin"].mean()) - 273.15, rel=1e-5)
    assert row["ssrd"] == pytest.approx(float(day["rsds"].mean()) * 86400 / 1e6, rel=1e-5)
    assert row["precip"] == pytest.approx(float(day["pr"].mean()) * 86400, rel=1e-5)
    assert row["lat"] == pytest.approx(float(era5["lat"].sel(location="Saskatoon")))


def test_era5_drivers_reject_unexpected_units(era5):
    bad = era5.copy()
    bad["tas"] = bad["tas"].assign_attrs(units="degF")
    with pytest.raises(ReaderError, match="field 'tas.units'.*'degF'"):
        et_fusion.era5_monthly_drivers(bad)


def test_the_cf_file_opens_with_the_required_metadata(result, drivers, tmp_path):
    era5_pred = drivers.assign(et_pred=et_fusion.predict(result.final_model, drivers))
    assert np.isfinite(era5_pred["et_pred"]).all() and era5_pred["et_pred"].between(-1, 15).all()
    path = cf.write_netcdf(et_fusion_cf.to_cf_dataset(result, era5_pred, attrs={"id": "test-id"}), tmp_path / "et.nc")
    assert [p.name for p in tmp_path.iterdir()] == ["et.nc"]  # no temporary file left
    with xr.open_dataset(path) as ds:
        assert ds.attrs["Conventions"] == "CF-1.8, ACDD-1.3" and ds.attrs["featureType"] == "timeSeries"
        assert ds.attrs["id"] == "test-id"
        for key in ("title", "institution", "source", "history"):
            assert ds.attrs[key]
        assert "10.1038/s41597-020-0534-3" in ds.attrs["references"]
        assert "10.24381/cds.adbb2d47" in ds.attrs["references"]
        assert ds["station_name"].attrs["cf_role"] == "timeseries_id"
        assert ds["lat"].attrs["units"] == "degrees_north" and ds["lon"].attrs["units"] == "degrees_east"
        assert ds["et"].attrs["standard_name"] == "water_evapotranspiration_flux"
        assert ds["et"].attrs["units"] == "kg m-2 d-1"
        assert ds["et"].dims == ("station", "time")
        assert ds.attrs["data_kind"] == "real" and ds.attrs["era5_points_validated"] == "no"
        assert ds["et"].attrs["validated_at_era5_points"] == "no" and "never validated" in ds["et"].attrs["comment"]
        names = list(ds["station_name"].values)
        assert set(names) == set(SITES) | set(drivers["station"])
        assert int(ds["site_type"].sum()) == drivers["station"].nunique()
        pred = result.predictions
        for site in ("DE-Hai", "BR-Sa1"):
            rows = pred[pred["station"] == site]
            got = ds["et"].isel(station=names.index(site)).sel(time=rows["time"].to_numpy())
            np.testing.assert_allclose(got, rows["et_pred"])
            flags = ds["is_validation"].isel(station=names.index(site)).sel(time=rows["time"].to_numpy())
            np.testing.assert_array_equal(flags, rows["is_validation"].astype(int))
        halifax = era5_pred[era5_pred["station"] == "Halifax"]
        np.testing.assert_allclose(
            ds["et"].isel(station=names.index("Halifax")).sel(time=halifax["time"].to_numpy()), halifax["et_pred"]
        )
    with netCDF4.Dataset(path) as raw:
        assert raw["time"].units == "days since 1970-01-01"
        assert raw["time"].standard_name == "time"
        assert raw["et"].coordinates == "time lat lon station_name cv_fold"
        assert raw["et"].grid_mapping == "crs" and raw["time"].bounds == "time_bnds"
        assert np.isnan(raw["et"]._FillValue) and np.isnan(raw["et_obs"]._FillValue)
        assert list(raw["is_validation"].flag_values) == [0, 1]


def test_a_failed_write_keeps_the_previous_file(result, tmp_path):
    path = cf.write_netcdf(et_fusion_cf.to_cf_dataset(result, attrs={}), tmp_path / "et.nc")
    before = path.read_bytes()
    broken = et_fusion_cf.to_cf_dataset(result, attrs={"bad": {"not": "serialisable"}})
    with pytest.raises(TypeError):
        cf.write_netcdf(broken, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["et.nc"]
