"""The published ET version's stage-1, triple-collocation and stage-2 parts, on the real basins and towers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from django.conf import settings

from ingestion.models import Observation
from products.generators.et_fusion import (
    BASIN_ET_PRODUCTS,
    ECOSTRESS_PRODUCTS,
    OFF_TOWER_INPUTS,
    TC_PRODUCTS,
    TC_SENSITIVITY_PRODUCTS,
    TOWER_MET,
)
from products.generators.et_grid import DAY_DEFINITION, GRID_MODEL
from products.methods.metrics import summary
from products.models import ValidationResult
from tests.conftest import FEW_BASINS, FEW_TOWERS

pytestmark = pytest.mark.django_db


def version_file(run, name: str) -> Path:
    f = run.version.files.get(name=name)
    return Path(settings.DATA_ROOT) / f.path


def test_the_version_holds_every_part_with_lineage_of_every_input(et_run):
    names = set(et_run.version.files.values_list("name", flat=True))
    assert names == {
        "et_fusion_timeseries.nc",
        "et_basin_reconstruction.nc",
        "et_basin_triple_collocation.csv",
        "et_fused_ecostress_towers.nc",
    }
    kinds = {i.get("kind") for i in et_run.version.lineage["inputs"]}
    assert {"cardamom", "basins", "ecostress"} <= kinds
    assert all(len(i["sha256"]) == 64 for i in et_run.version.lineage["inputs"])
    assert {"stage1_reconstruction", "triple_collocation", "stage2_fusion", "stage2_upper_bound_tower_met"} <= set(
        et_run.timings
    )


def test_the_lineage_records_every_parameter_and_where_each_thing_was_fitted(et_run):
    from products.pipelines.et_fusion import DEFAULTS

    lineage = et_run.version.lineage
    assert set(DEFAULTS) <= set(lineage["parameters"])
    assert lineage["parameters"]["fusion_inner_splits"] == DEFAULTS["fusion_inner_splits"]  # a default, not asked
    assert "fusion_inner_splits" not in lineage["parameters_requested"]
    assert lineage["parameters"]["n_splits"] == lineage["parameters_requested"]["n_splits"]
    fitted = lineage["statistics_fitted_on"]
    assert "leave-site-out" in fitted["LightGBM tower model (five drivers)"]
    assert "inner folds grouped by tower" in fitted["FLAML hyper-parameters"]


def test_an_unknown_parameter_fails_the_run_naming_it(db):
    from products.services import create_run, execute_run

    run = execute_run(create_run("et_fusion", parameters={"n_split": 3}).id)
    assert run.status == "failed" and "n_split" in run.error


def test_every_file_says_its_data_kind_and_the_era5_points_are_not_validated(et_run):
    for name in ("et_fusion_timeseries.nc", "et_basin_reconstruction.nc", "et_fused_ecostress_towers.nc"):
        with xr.open_dataset(version_file(et_run, name)) as ds:
            assert ds.attrs["data_kind"] == "real", name
    with xr.open_dataset(version_file(et_run, "et_fusion_timeseries.nc")) as ds:
        assert ds.attrs["era5_points_validated"] == "no" and "never been validated" in ds.attrs["comment"]
        assert ds["et"].attrs["validated_at_era5_points"] == "no"
    assert et_run.summary["era5_points_validated"] is False
    assert et_run.summary["gridded_et"]["model"] == GRID_MODEL and not et_run.summary["gridded_et"]["written"]
    assert et_run.summary["day_definition"] == DAY_DEFINITION


def test_reconstruction_file_keeps_the_products_and_fills_every_month(et_run):
    with xr.open_dataset(version_file(et_run, "et_basin_reconstruction.nc")) as ds:
        assert ds.attrs["featureType"] == "timeSeries" and ds.attrs["data_kind"] == "real"
        assert ds["station_name"].attrs["cf_role"] == "timeseries_id" and ds.sizes["station"] == FEW_BASINS
        for p in BASIN_ET_PRODUCTS:
            assert ds[f"{p}_rec"].attrs["standard_name"] == "water_evapotranspiration_amount"
            assert np.isfinite(ds[f"{p}_rec"].values).all()
        # the stored product is the ingested value, month by month
        basin = str(ds["station_name"].values[0])
        stored = ds["et_gleam"].isel(station=0).to_series().dropna()
    db = pd.Series(
        {
            pd.Timestamp(t).tz_localize(None): v
            for t, v in Observation.objects.filter(
                station__network="GRDC-MRB", station__code=basin, variable="et_gleam"
            ).values_list("time", "value")
        }
    )
    common = stored.index.intersection(db.index)
    assert len(common) == len(stored) > 100
    np.testing.assert_allclose(stored[common], db[common])


def test_reconstruction_skill_rows_per_product(et_run):
    rows = ValidationResult.objects.filter(run=et_run, split="reconstruction_held_out", scope="pooled")
    assert {r.variable for r in rows} == {f"{p}_rec" for p in BASIN_ET_PRODUCTS}
    for r in rows:
        assert r.units == "mm month-1" and r.n > 1000 and -1 < r.kge <= 1
        assert et_run.summary["reconstruction"][r.variable.removesuffix("_rec")]["kge"] == pytest.approx(r.kge)


def test_triple_collocation_table_and_its_medians(et_run):
    table = pd.read_csv(version_file(et_run, "et_basin_triple_collocation.csv"))
    assert len(table) == FEW_BASINS and (table["data_kind"] == "real").all()
    tc = et_run.summary["triple_collocation"]
    assert tc["products"] == list(TC_PRODUCTS) and tc["basins"] == FEW_BASINS
    usable = table[~table["too_few_samples"]]
    assert tc["basins_used"] == len(usable) > 0
    for p in TC_PRODUCTS:
        ok = usable[~usable[f"flag_{p}"]]
        assert tc[f"median_tcr_{p}"] == pytest.approx(ok[f"tcr_{p}"].median())
        assert 0 < tc[f"median_tcr_{p}"] <= 1
    assert "ERA5" in tc["limits"] and "correlated" in tc["limits"]
    sensitivity = tc["sensitivity"]
    assert sensitivity["products"] == list(TC_SENSITIVITY_PRODUCTS) and "et_gleam" not in sensitivity["products"]
    assert sensitivity["basins"] == FEW_BASINS and all(
        0 < sensitivity[f"median_tcr_{p}"] <= 1 for p in TC_SENSITIVITY_PRODUCTS
    )


def test_fusion_and_each_product_are_scored_on_the_same_held_out_samples(et_run):
    with xr.open_dataset(version_file(et_run, "et_fused_ecostress_towers.nc")) as ds:
        assert ds.attrs["featureType"] == "point" and ds["et_fused"].attrs["units"] == "kg m-2 h-1"
        frame = ds[["et_obs", "et_fused", *ECOSTRESS_PRODUCTS]].to_dataframe()
        frame["station"] = ds["station_name"].values
        assert ds["cv_fold"].to_series().groupby(frame["station"].to_numpy()).nunique().max() == 1
    assert frame["station"].nunique() == FEW_TOWERS
    pooled = {
        r.variable: r for r in ValidationResult.objects.filter(run=et_run, split="fusion_held_out", scope="pooled")
    }
    assert set(pooled) == {"et_fused", *ECOSTRESS_PRODUCTS}
    for name, row in pooled.items():
        expected = summary(frame[name], frame["et_obs"])
        assert row.n == expected["n"] == len(frame) and row.units == "mm h-1"
        assert row.kge == pytest.approx(expected["kge"]) and row.rmse == pytest.approx(expected["rmse"])
    fusion = et_run.summary["fusion"]
    assert fusion["inputs"][: len(ECOSTRESS_PRODUCTS)] == list(ECOSTRESS_PRODUCTS)
    assert set(fusion["inputs"]) <= {*ECOSTRESS_PRODUCTS, *OFF_TOWER_INPUTS} and not set(fusion["inputs"]) & set(
        TOWER_MET
    )
    singles = [pooled[p] for p in ECOSTRESS_PRODUCTS]
    assert fusion["beats_every_product"] == (
        all(pooled["et_fused"].kge > s.kge for s in singles) and all(pooled["et_fused"].rmse < s.rmse for s in singles)
    )
    assert fusion["best_single_kge"] == pytest.approx(max(s.kge for s in singles))


def test_the_tower_meteorology_fusion_is_stored_only_as_a_labelled_upper_bound(et_run):
    with xr.open_dataset(version_file(et_run, "et_fused_ecostress_towers.nc")) as ds:
        assert "UPPER BOUND" in ds["et_fused_tower_met"].attrs["long_name"]
        assert set(TOWER_MET) <= set(ds.attrs["upper_bound_inputs"].split(", "))
        assert not set(TOWER_MET) & set(ds.attrs["fused_inputs"].split(", "))
        bound = summary(ds["et_fused_tower_met"].values, ds["et_obs"].values)
    row = ValidationResult.objects.get(
        run=et_run, split="fusion_upper_bound_tower_met", scope="pooled", variable="et_fused_tower_met"
    )
    assert row.kge == pytest.approx(bound["kge"]) and row.n == bound["n"]
    assert not ValidationResult.objects.filter(run=et_run, split="fusion_held_out", variable="et_fused_tower_met")
    upper = et_run.summary["fusion_upper_bound_tower_met"]
    assert upper["kge"] == pytest.approx(row.kge) and upper["inputs_available_off_tower"] is False


def test_per_tower_rows_link_to_the_ecostress_tower_not_a_namesake(et_run):
    sites = ValidationResult.objects.filter(run=et_run, split="fusion_held_out", scope="site", variable="et_fused")
    assert sites.count() == FEW_TOWERS
    assert {r.station.network for r in sites} == {"AmeriFlux"}
    classes = ValidationResult.objects.filter(run=et_run, split="fusion_held_out", scope="class", variable="et_fused")
    pooled = ValidationResult.objects.get(run=et_run, split="fusion_held_out", scope="pooled", variable="et_fused")
    assert classes.exists() and sum(c.n for c in classes) == pooled.n  # every tower has an IGBP class
    tower_rows = ValidationResult.objects.filter(run=et_run, split="validation", scope="site")
    assert {r.station.network for r in tower_rows if r.station} == {"FLUXNET2015"}


def test_a_run_with_gridded_forcing_adds_a_chunked_daily_et_grid(et_run, tmp_path):
    from products.services import create_run, execute_run
    from tests.conftest import et_test_parameters
    from tests.products.test_chunked import small_land, synthetic_forcing

    # SYNTHETIC forcing on the GLDAS 0.25 degree global grid (what the GLDAS reader accepts), land in one box only
    lat, lon = np.arange(-59.875, 90, 0.25), np.arange(-179.875, 180, 0.25)
    land = np.zeros((lat.size, lon.size), dtype=bool)
    land[100:130, 1100:1150] = small_land((30, 50))
    forcing = synthetic_forcing(lat, lon, pd.date_range("2016-01-01", periods=8, freq="3h"), land)
    forcing.to_netcdf(
        tmp_path / "GLDAS_NOAH025_3H.A20160101.0000.021.nc4",
        encoding={v: {"zlib": True, "complevel": 1} for v in forcing.data_vars},
    )
    params = {
        **et_test_parameters(),
        "sites": ["DE-Hai", "US-Ha1", "FI-Hyy"],
        "n_splits": 3,
        "basins": et_test_parameters()["basins"][:6],
        "fusion_sites": et_test_parameters()["fusion_sites"][:4],
        "fusion_splits": 2,
        "fusion_max_iter": 2,
        "forcing_grid": [str(tmp_path / "GLDAS_NOAH025_3H.A20160101.0000.021.nc4")],
        "forcing_data_kind": "synthetic",
    }
    run = execute_run(create_run("et_fusion", parameters=params).id)
    assert run.status == "succeeded", run.error
    with xr.open_dataset(version_file(run, "et_grid_daily.nc")) as ds:
        assert ds.attrs["data_kind"] == "synthetic" and ds["et"].dims == ("time", "lat", "lon")
        assert np.isfinite(ds["et"].values[0][land]).all() and np.isnan(ds["et"].values[0][~land]).all()
        assert ds.attrs["day_definition"] == DAY_DEFINITION and ds.attrs["model"] == GRID_MODEL
    assert any(i["role"] == "gridded forcing (synthetic)" for i in run.inputs)
    # the 2016 forcing day falls in no held-out tower month (the towers end in 2014): said, not faked
    grid = run.summary["gridded_et"]
    assert grid["written"] and grid["validation"]["status"] == "no_overlap"
    assert grid["validation"]["forcing_days"] == ["2016-01-01", "2016-01-01"]
    assert not ValidationResult.objects.filter(run=run, split="grid_at_held_out_towers").exists()
