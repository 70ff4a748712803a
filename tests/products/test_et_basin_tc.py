"""Triple collocation of GLEAM, ERA5-Land and MOD16 ET at the real basins; monthly anomalies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ingestion.readers import basins
from products.generators.et_fusion import TC_PRODUCTS, basin_triple_collocation
from products.methods.anomalies import monthly_anomalies, monthly_climatology
from products.methods.triple_collocation import tc_metrics

FILES = {
    "et_gleam": "ET_GLEAM_monthly.csv",
    "et_era5land": "ET_ERA5_Land_monthly.csv",
    "et_mod16": "ET_MOD16_monthly.csv",
}


@pytest.fixture(scope="module")
def et_products(shared_data) -> pd.DataFrame:
    folder = shared_data / "lehmannfa_basin_water_budget"
    return pd.concat([basins.read(folder / name).observations for name in FILES.values()], ignore_index=True)


def test_anomalies_remove_each_calendar_months_mean():
    index = pd.date_range("2001-01-01", periods=36, freq="MS")
    values = pd.Series(np.tile(np.arange(12.0), 3) + np.repeat([0.0, 1.0, 2.0], 12), index=index)
    values.iloc[5] = np.nan  # a missing month stays missing and does not enter the climatology
    climatology = monthly_climatology(values)
    assert climatology[1] == pytest.approx(1.0) and climatology[6] == pytest.approx(5 + 1.5)
    anomalies = monthly_anomalies(values)
    assert np.isnan(anomalies.iloc[5])
    assert anomalies.iloc[0] == pytest.approx(-1.0) and anomalies.iloc[-1] == pytest.approx(1.0)
    base = monthly_climatology(values, baseline=("2001-01-01", "2001-12-31"))
    assert base[3] == pytest.approx(2.0)


def test_basin_tc_runs_on_every_basin_with_common_months(et_products):
    table = basin_triple_collocation(et_products)
    assert len(table) == et_products["station"].nunique() == 204
    enough = table[~table["too_few_samples"]]
    assert len(enough) > 150 and (enough["n"] >= 100).all()
    for p in TC_PRODUCTS:
        ok = enough[~enough[f"flag_{p}"]]
        assert ((ok[f"tcr_{p}"] > 0) & (ok[f"tcr_{p}"] <= 1)).all()
        assert (ok[f"err_std_{p}"] >= 0).all()
    assert (enough["beta_et_gleam"] == 1).all()  # the reference product


def test_basin_tc_equals_tc_of_anomalies_computed_another_way(et_products):
    table = basin_triple_collocation(et_products).set_index("station")
    basin = table[~table["too_few_samples"]].index[0]
    wide = (
        et_products[et_products["station"] == basin]
        .pivot(index="time", columns="variable", values="value")[list(TC_PRODUCTS)]
        .dropna()
    )
    anomalies = wide - wide.groupby(wide.index.month).transform("mean")
    expected = tc_metrics(*(anomalies[p].to_numpy() for p in TC_PRODUCTS))
    row = table.loc[basin]
    assert row["n"] == expected.n == len(wide)
    for i, p in enumerate(TC_PRODUCTS):
        assert row[f"err_std_{p}"] == pytest.approx(expected.err_std[i], nan_ok=True)
        assert row[f"tcr_{p}"] == pytest.approx(expected.tcr[i], nan_ok=True)


def test_it_refuses_a_table_without_the_three_products(et_products):
    with pytest.raises(ValueError, match="et_mod16"):
        basin_triple_collocation(et_products[et_products["variable"] != "et_mod16"])


def test_each_ecostress_product_is_scored_against_the_towers_on_common_samples(shared_data):
    from ingestion.readers import ecostress
    from products.generators.et_fusion import ECOSTRESS_PRODUCTS, products_against_towers
    from products.methods.metrics import kge, rmse

    path = next((shared_data / "ecov002_calval_tables").rglob("combined_eco_flux_EC_filtered.csv"))
    obs = ecostress.read(path).observations
    table = products_against_towers(obs)
    assert list(table.index) == list(ECOSTRESS_PRODUCTS)
    assert table["n"].nunique() == 1 and table["n"].iloc[0] > 500  # the same samples for every product
    wide = obs.pivot_table(index=["station", "time"], columns="variable", values="value")
    common = wide[["et", *ECOSTRESS_PRODUCTS]].dropna()
    assert table.loc["et_mod16", "kge"] == pytest.approx(kge(common["et_mod16"], common["et"]).kge)
    assert table.loc["et_jet", "rmse"] == pytest.approx(rmse(common["et_jet"], common["et"]))
    assert (table["n_stations"] > 30).all()


def test_the_automl_fusion_is_validated_on_towers_it_never_saw(shared_data):
    from ingestion.readers import ecostress
    from products.generators.et_fusion import ECOSTRESS_PRODUCTS, OFF_TOWER_INPUTS, TOWER_MET, fuse_at_towers
    from products.methods.metrics import summary

    path = next((shared_data / "ecov002_calval_tables").rglob("combined_eco_flux_EC_filtered.csv"))
    result = fuse_at_towers(ecostress.read(path).observations, n_splits=3, inner_splits=2, max_iter=3)
    p = result.predictions
    assert (p["fold"] >= 0).all() and p["et_fused"].notna().all()
    assert p.groupby("station")["fold"].nunique().max() == 1  # a tower is predicted by one outer fold only
    assert list(result.table.index) == ["et_fused", *ECOSTRESS_PRODUCTS]
    assert result.table["n"].nunique() == 1  # every estimate scored on the same samples
    assert result.table.loc["et_fused", "kge"] == pytest.approx(summary(p["et_fused"], p["et"])["kge"])
    assert len(result.best_estimators) == 3 and len(result.best_configs) == 3
    # the headline fusion takes only inputs a grid cell without a tower has (the products, their satellite inputs
    # and the gridded meteorology at the tower's pixel, all in the ECOSTRESS tables): no tower meteorology
    assert result.features == [*ECOSTRESS_PRODUCTS, *OFF_TOWER_INPUTS] and not set(result.features) & set(TOWER_MET)


@pytest.fixture(scope="module")
def basin_table(shared_data) -> pd.DataFrame:
    folder = shared_data / "lehmannfa_basin_water_budget"
    names = [
        "P_ERA5_Land",
        "P_GPCC",
        "P_MSWEP",
        "R_ERA5_Land",
        "ET_ERA5_Land",
        "ET_FLUXCOM",
        "ET_GLDAS21_NOAH36",
        "ET_GLEAM",
        "ET_MOD16",
    ]
    obs = pd.concat([basins.read(folder / f"{n}_monthly.csv").observations for n in names], ignore_index=True)
    keep = sorted(obs["station"].unique())[::6]  # 34 basins keep the test quick
    return obs[obs["station"].isin(keep)]


def test_stage_one_extends_every_product_to_the_predictors_span(basin_table):
    from products.generators.et_fusion import BASIN_ET_PRODUCTS, reconstruct_products

    result = reconstruct_products(basin_table, n_splits=3, params={"n_estimators": 60})
    s = result.series
    p_times = basin_table.loc[basin_table["variable"] == "p_era5land", "time"]
    assert s["time"].min() == p_times.min() and s["time"].max() == p_times.max()
    for product in BASIN_ET_PRODUCTS:
        assert s[f"{product}_rec"].notna().all()  # every month with predictors, every basin
        product_times = basin_table.loc[basin_table["variable"] == product, "time"]
        assert result.cv.loc[product, "product_start"] == max(product_times.min(), p_times.min())
        assert result.cv.loc[product, "r"] > 0.5  # skill at basins the model never saw
    # MOD16 starts in 2000: its reconstruction reaches back to the 1980s
    assert s.loc[s["time"] < "1990-01-01", "et_mod16_rec"].notna().sum() > 100
    assert s.loc[s["time"] < "1990-01-01", "et_mod16"].isna().all()
