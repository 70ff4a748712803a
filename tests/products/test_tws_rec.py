"""TWS reconstruction: known answers for anomalies, detrending, filters, regions and the water balance;
the model on a synthetic twin and on a small cube in the JPL mascon layout; `generate tws_rec` end to end
on real GRDC basins."""

from __future__ import annotations

import json
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from django.conf import settings
from django.core.management import call_command

from products.generators import tws_rec

SMALL = {"n_estimators": 60}


def monthly(start: str, n: int) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=n, freq="MS", name="time")


# --- anomalies, baseline, gaps, detrending ----------------------------------------------------------


def test_the_anomaly_is_relative_to_the_2004_2009_mean_of_the_months_present():
    index = monthly("2002-04-01", 120)
    values = pd.Series(np.arange(120.0), index=index)
    values["2005-03-01"] = np.nan  # a gap inside the baseline does not enter the mean
    values["2012-01-01"] = np.nan  # a gap outside stays a gap
    anomaly = tws_rec.baseline_anomaly(values)
    base = values["2004-01-01":"2009-12-01"].dropna()
    assert anomaly["2004-01-01"] == pytest.approx(values["2004-01-01"] - base.mean())
    assert anomaly["2004-01-01":"2009-12-01"].mean() == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(anomaly["2005-03-01"]) and np.isnan(anomaly["2012-01-01"])


def test_deseasonalising_removes_the_baseline_climatology_of_each_calendar_month():
    index = monthly("2003-01-01", 96)
    season = 10.0 * np.sin(2 * np.pi * (index.month - 1) / 12)
    values = pd.DataFrame({"a": season + 3.0, "b": season * 2}, index=index)
    values.loc["2006-07-01", "a"] = 1000.0  # one odd July in the baseline: July's climatology is (5 * x + 1000) / 6
    values.loc["2007-07-01", "a"] = np.nan
    out = tws_rec.deseasonalise(values)
    july = season[index.month == 7][0] + 3.0
    expected_clim = (4 * july + 1000.0) / 5
    assert out.loc["2004-07-01", "a"] == pytest.approx(july - expected_clim)
    assert np.isnan(out.loc["2007-07-01", "a"])
    np.testing.assert_allclose(out["b"].to_numpy(), 0.0, atol=1e-9)


def test_gap_filled_storage_values_become_gaps():
    obs = pd.DataFrame(
        {
            "station": ["A"] * 3,
            "variable": ["tws_jpl"] * 3,
            "time": pd.to_datetime(["2017-06-01", "2017-07-01", "2018-06-01"]),
            "value": [1.0, 2.0, 3.0],
            "quality_flag": ["", "gap_filled", "x,gap_filled"],
        }
    )
    kept = tws_rec.mask_gaps(obs)
    assert kept["value"].tolist() == [1.0]
    table = tws_rec.to_arrays(kept, ["tws_jpl"], start="2017-05-01", end="2018-07-01")["tws_jpl"]
    assert len(table) == 15 and table["A"].notna().sum() == 1


def test_detrending_removes_a_known_line_in_decimal_years():
    index = monthly("2002-01-01", 60)
    years = tws_rec.decimal_year(index)
    line = pd.Series(2.5 * (years - 2002) + 7, index=index)
    slope, intercept = tws_rec.linear_trend(line)
    assert slope == pytest.approx(2.5) and intercept == pytest.approx(7 - 2.5 * 2002)
    wave = np.sin(np.arange(60) * 2 * np.pi / 12)
    series = line + wave
    series.iloc[5] = np.nan
    out = tws_rec.detrend(series)
    ok = np.arange(60) != 5
    expected = wave[ok] - np.polyval(np.polyfit(years[ok], wave[ok], 1), years[ok])  # the wave less its own line
    assert np.isnan(out.iloc[5])
    np.testing.assert_allclose(out.dropna().to_numpy(), expected, atol=1e-9)
    assert tws_rec.linear_trend(out)[0] == pytest.approx(0.0, abs=1e-9)


def test_statistics_fitted_on_every_month_are_those_of_variants_and_on_training_months_ignore_the_rest():
    rng = np.random.default_rng(4)
    index = monthly("2002-04-01", 18 * 12)
    line, season = 3.0 * (tws_rec.decimal_year(index) - 2010), 20 * np.sin(index.month.to_numpy())
    values = pd.DataFrame({b: line + season + rng.normal(0, 5, len(index)) for b in ("a", "b")}, index=index)
    values.iloc[30:35, 0] = np.nan
    every = tws_rec.apply_target_statistics(values, tws_rec.fit_target_statistics(values, np.ones(len(index), bool)))
    expected = tws_rec.variants(values)
    for name in ("anomaly", "deseasonalised", "dd"):
        pd.testing.assert_frame_equal(every[name], expected[name], check_exact=True)
    fitted = ~index.year.isin([2006, 2007])
    statistics = tws_rec.fit_target_statistics(values, fitted)
    changed = values.copy()
    changed.loc[~fitted] += 500.0  # held-out years: nothing fitted may move
    again = tws_rec.fit_target_statistics(changed, fitted)
    pd.testing.assert_series_equal(statistics.mean, again.mean)
    pd.testing.assert_series_equal(statistics.slope, again.slope)
    assert statistics.reference.startswith("fitted months within the baseline")
    assert tws_rec.fit_target_statistics(values, ~index.year.isin(range(2003, 2011))).reference.startswith("all")
    with pytest.raises(ValueError, match="fitted"):
        tws_rec.fit_target_statistics(values, np.zeros(len(index), bool))


def test_the_exponential_filter_decays_geometrically():
    x = np.zeros((10, 2))
    x[0] = [1.0, 2.0]
    x[4, 1] = np.nan
    out = tws_rec.exponential_filter(x, 3.0)
    np.testing.assert_allclose(out[:, 0], np.exp(-np.arange(10) / 3.0))
    assert np.isnan(out[4, 1]) and out[5, 1] == pytest.approx(2 * np.exp(-5 / 3.0))
    with pytest.raises(ValueError, match="tau"):
        tws_rec.exponential_filter(x, 0)


# --- water balance, regions, matching ------------------------------------------------------------------


def test_the_water_balance_closes_on_a_synthetic_basin_and_reports_a_known_imbalance():
    rng = np.random.default_rng(1)
    index = monthly("2003-01-01", 120)
    net = pd.DataFrame({"closed": rng.normal(0, 20, 120), "leaky": rng.normal(0, 20, 120)}, index=index)
    storage = net.cumsum()
    storage["leaky"] = (net["leaky"] - 5.0).cumsum()  # the fluxes add 5 mm month-1 that storage never sees
    storage.iloc[40:45] = np.nan  # a gap: its months and neighbours drop out
    table = tws_rec.water_balance(storage, net, method="backward")
    closed, leaky = table.loc["closed"], table.loc["leaky"]
    assert closed["n"] == 120 - 1 - 6
    assert closed["r"] == pytest.approx(1.0) and closed["std_ratio"] == pytest.approx(1.0)
    assert closed["mean_imbalance"] == pytest.approx(0.0, abs=1e-9) and closed["rmse"] == pytest.approx(0.0, abs=1e-9)
    assert leaky["mean_imbalance"] == pytest.approx(5.0) and leaky["r"] == pytest.approx(1.0)
    central = tws_rec.water_balance(storage, net)
    assert 0.6 < central.loc["closed", "r"] < 0.8  # (N_t + N_t+1) / 2 against N_t: white noise gives ~0.71
    with pytest.raises(ValueError, match="central"):
        tws_rec.storage_change(storage, method="forward")


def test_region_means_are_area_weighted_and_need_most_of_the_area():
    index = monthly("2004-01-01", 3)
    frame = pd.DataFrame(
        {"a": [1.0, 1.0, np.nan], "b": [4.0, np.nan, 4.0], "c": [10.0, 10.0, 10.0], "x": [99.0, 99.0, 99.0]},
        index=index,
    )
    attrs = pd.DataFrame(
        {"continent": ["Europe", "Europe", "Africa", ""], "area_km2": [300.0, 100.0, 50.0, 10.0]},
        index=["a", "b", "c", "x"],
    )
    means, regions = tws_rec.region_means(frame, attrs, min_area_fraction=0.7)
    assert means.loc["2004-01-01", "Europe"] == pytest.approx((300 * 1 + 100 * 4) / 400)
    assert means.loc["2004-02-01", "Europe"] == pytest.approx(1.0)  # 75 % of the area present
    assert np.isnan(means.loc["2004-03-01", "Europe"])  # 25 % present
    assert means.loc["2004-01-01", "All basins"] == pytest.approx((300 + 400 + 500) / 450)
    assert regions.loc["All basins", "basins"] == 3  # x has no region: left out


def test_basins_pair_across_basin_sets_only_by_name_and_similar_area():
    areas = pd.Series({"ODER": 118790.0, "IRRAWADDY": 422916.0, "RHINE": 163122.0})
    other = pd.Series({"ODER RIVER": 107297.0, "IRRAWADDY": 122857.0, "RHINE (RIJN)": 169706.0, "ELBE": 1.0})
    assert tws_rec.match_basins(areas, other).to_dict() == {"ODER": "ODER RIVER", "RHINE": "RHINE (RIJN)"}


# --- the model on a synthetic twin ---------------------------------------------------------------


def twin_observations(n_basins: int = 6, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Basins whose storage is a known linear reservoir of P - ET - R (tau 4 months) plus a trend."""
    rng = np.random.default_rng(seed)
    index = monthly("1990-01-01", 31 * 12)
    rows, truth = [], {}
    for i in range(n_basins):
        season = 40 * (1 + i / n_basins) * np.sin(2 * np.pi * (index.month.to_numpy() - 1 + i) / 12)
        p = np.clip(80 + season + rng.normal(0, 25, len(index)), 0, None)
        et = np.clip(50 + 0.5 * season + rng.normal(0, 5, len(index)), 0, None)
        r = 0.3 * p + rng.normal(0, 3, len(index))
        net = p - et - r
        storage = tws_rec.exponential_filter((net - net.mean())[:, None], 4.0)[:, 0]
        truth[f"B{i}"] = storage
        for name, values in (("p_era5land", p), ("et_era5land", et), ("r_era5land", r)):
            rows.append(pd.DataFrame({"station": f"B{i}", "variable": name, "time": index, "value": values}))
        grace = (index >= "2002-04-01") & ~((index >= "2017-07-01") & (index <= "2018-05-01"))
        trend = 1.5 * (tws_rec.decimal_year(index) - 2010)
        for name, noise in (("tws_jpl", 2.0), ("tws_csr", 3.0)):
            values = storage + trend + rng.normal(0, noise, len(index))
            rows.append(
                pd.DataFrame({"station": f"B{i}", "variable": name, "time": index[grace], "value": values[grace]})
            )
    obs = pd.concat(rows, ignore_index=True).assign(quality_flag="")
    return obs, pd.DataFrame(truth, index=index)


@pytest.fixture(scope="module")
def twin_result():
    obs, truth = twin_observations()
    return tws_rec.reconstruct(obs, params=SMALL, seed=1), truth


def test_the_twin_is_reconstructed_on_held_out_years_and_before_grace(twin_result):
    result, truth = twin_result
    cv = result.cv
    assert set(cv.index) == {(s, v, p) for s in tws_rec.SOLUTIONS for v in tws_rec.VARIANTS for p in tws_rec.SPLITS}
    blocks, years = "year_block_held_out", "year_held_out"
    assert cv.loc[("tws_jpl", "anomaly", blocks), "nse"] > 0.8 and cv.loc[("tws_jpl", "dd", blocks), "r"] > 0.8
    assert cv.loc[("tws_jpl", "anomaly", years), "folds"] == 2020 - 2002 + 1  # one per year (2017, 2018 in the gap)
    assert cv.loc[("tws_jpl", "anomaly", blocks), "folds"] == 7  # 2002-04, 2005-07, ..., 2017-19, 2020
    # the features' memory carries neighbouring years into a one-year split: it scores higher than the blocks
    assert cv.loc[("tws_jpl", "dd", years), "r"] > cv.loc[("tws_jpl", "dd", blocks), "r"]
    wide = result.series.unstack("station")
    before = wide["tws_jpl_rec"].loc[:"2001-12-01"]
    assert before.notna().all().all() and before.index[0] == pd.Timestamp("1990-01-01")
    # before GRACE, the reconstruction follows the known storage (less the trend, which it cannot know)
    known = truth.loc["1993-01-01":"2001-12-01"]
    r = [np.corrcoef(before.loc["1993-01-01":, b], known[b])[0, 1] for b in truth.columns]
    assert min(r) > 0.8
    assert wide["tws_jpl"].loc["2017-07-01":"2018-05-01"].isna().all().all()  # the gap stays a gap
    assert wide["tws_jpl_cv"].loc["2017-07-01":"2018-05-01"].isna().all().all()


def test_every_basin_file_says_real_or_synthetic_and_is_cf(twin_result, tmp_path):
    from products.methods.cf import write_netcdf

    result, _ = twin_result
    attrs = pd.DataFrame(
        {"continent": ["Europe"] * 6, "area_km2": np.arange(1.0, 7.0)}, index=[f"B{i}" for i in range(6)]
    )
    path = write_netcdf(tws_rec.to_cf_basins(result, attrs, data_kind="synthetic"), tmp_path / "b.nc")
    with xr.open_dataset(path) as ds:
        assert ds.attrs["Conventions"] == "CF-1.8, ACDD-1.3" and ds.attrs["featureType"] == "timeSeries"
        assert ds.attrs["data_kind"] == "synthetic"
        assert ds["station_name"].attrs["cf_role"] == "timeseries_id"
        assert ds["tws_jpl_rec"].attrs["units"] == "mm" and "time_bnds" in ds
        assert ds["tws_jpl_rec"].dims == ("station", "time")


def test_the_model_rejects_observations_without_a_solution():
    obs, _ = twin_observations(2)
    with pytest.raises(ValueError, match="tws_csr"):
        tws_rec.reconstruct(obs[obs["variable"] != "tws_csr"], params=SMALL)


# --- the gridded path on a cube in the JPL mascon layout -----------------------------------------------


def write_mascon_cube(folder: Path, n_lat: int = 4, n_lon: int = 6, seed: int = 2):
    """A small cube in the JPL RL06 mascon layout (lon 0..360, cm, fill -99999, days since 2002-01-01), a land
    mask, and P/ET/R cubes on the same grid (1995-2012, mm month-1); returns the truth (mm, anomaly)."""
    rng = np.random.default_rng(seed)
    lat = -10.25 + 0.5 * np.arange(n_lat)
    lon = 20.25 + 0.5 * np.arange(n_lon)
    months = monthly("1995-01-01", 18 * 12)
    season = np.sin(2 * np.pi * (months.month.to_numpy() - 1) / 12)[:, None, None]
    amp = 30 + 20 * rng.random((1, n_lat, n_lon))
    p = np.clip(90 + amp * season + rng.normal(0, 20, (len(months), n_lat, n_lon)), 0, None)
    et = 40 + 0.4 * amp * season + rng.normal(0, 4, p.shape)
    r = 0.25 * p
    net = p - et - r
    storage = tws_rec.exponential_filter(net - net.mean(axis=0), 4.0)
    grace = np.flatnonzero(months >= "2002-04-01")
    base = (months >= "2004-01-01") & (months <= "2009-12-01")
    truth = storage - storage[base].mean(axis=0)
    land = np.ones((n_lat, n_lon))
    land[0, 0] = 0
    path = folder / "GRCTellus.JPL.200204_201212.GLO.RL06.1M.MSCNv02CRI.nc"
    mid = months[grace] + pd.Timedelta(days=14)
    with netCDF4.Dataset(path, "w") as nc:
        for name, n in (("time", len(grace)), ("lat", n_lat), ("lon", n_lon), ("bounds", 2)):
            nc.createDimension(name, n)
        nc.createVariable("lat", "f8", ("lat",))[:] = lat
        nc.createVariable("lon", "f8", ("lon",))[:] = lon
        t = nc.createVariable("time", "f8", ("time",))
        t.units = "days since 2002-01-01T00:00:00Z"
        t[:] = (mid - pd.Timestamp("2002-01-01")).days.to_numpy() + 0.5
        v = nc.createVariable("lwe_thickness", "f4", ("time", "lat", "lon"), fill_value=-99999.0, zlib=True)
        v.units = "cm"
        v[:] = (truth[grace] + rng.normal(0, 1.0, truth[grace].shape)) / 10.0
    with netCDF4.Dataset(folder / "LAND_MASK.CRI.nc", "w") as nc:
        nc.createDimension("lat", n_lat)
        nc.createDimension("lon", n_lon)
        nc.createVariable("lat", "f8", ("lat",))[:] = lat
        nc.createVariable("lon", "f8", ("lon",))[:] = lon
        nc.createVariable("land_mask", "f4", ("lat", "lon"))[:] = land
    coords = {"time": months.to_numpy(), "lat": lat, "lon": lon}
    fluxes = {
        name: xr.DataArray(values, dims=("time", "lat", "lon"), coords=coords, name=name, attrs={"units": "mm month-1"})
        for name, values in (("p", p), ("et", et), ("r", r))
    }
    return path, fluxes, xr.DataArray(truth, dims=("time", "lat", "lon"), coords=coords), land


def test_the_gridded_path_reconstructs_a_mascon_cube_chunk_by_chunk(tmp_path):
    from ingestion.readers import grace

    path, fluxes, truth, land = write_mascon_cube(tmp_path)
    mascon = grace.open_grid(path)
    out = tmp_path / "tws_grid.nc"
    info = tws_rec.reconstruct_grid(
        mascon, fluxes["p"], fluxes["et"], fluxes["r"], out, chunk=(3, 4), params=SMALL, data_kind="synthetic"
    )
    assert info["windows"] == 4 and info["in_sample"]["r"] > 0.9
    with xr.open_dataset(out) as ds:
        assert ds.attrs["data_kind"] == "synthetic" and ds.attrs["Conventions"] == "CF-1.8, ACDD-1.3"
        rec = ds["tws_rec"]
        assert rec.dims == ("time", "lat", "lon") and rec.attrs["units"] == "mm"
        assert ds.sizes["time"] == truth.sizes["time"]  # the predictors' span: back to 1995
        assert rec.isel(lat=0, lon=0).isnull().all()  # ocean in the land mask
        land_cells = rec.values[:, land.astype(bool)]
        assert np.isfinite(land_cells).all()
        early = slice(24, 7 * 12)  # 1997-2001: before GRACE, after the filter's spin-up
        r = np.corrcoef(land_cells[early].ravel(), truth.values[:, land.astype(bool)][early].ravel())[0, 1]
        assert r > 0.85
    mascon.close()


def test_the_gridded_path_rejects_predictors_on_another_grid(tmp_path):
    from ingestion.readers import grace

    path, fluxes, _, _ = write_mascon_cube(tmp_path, n_lat=3, n_lon=3)
    shifted = fluxes["p"].assign_coords(lon=fluxes["p"]["lon"] + 1)
    with grace.open_grid(path) as mascon, pytest.raises(ValueError, match="lon differs"):
        tws_rec.reconstruct_grid(mascon, shifted, fluxes["et"], fluxes["r"], tmp_path / "x.nc", params=SMALL)
    assert not (tmp_path / "x.nc").exists()


# --- the pipeline on real basins --------------------------------------------------------------------

TWS_FILES = (
    "TWS_GRACE_JPL_mascons_monthly.csv",
    "TWS_GRACE_CSR_mascons_monthly.csv",
    "TWS_GRACE_ITSG_grid_monthly.csv",
)
BASINS = [
    "AMUR",
    "CONGO",
    "DANUBE",
    "ELBE",
    "GANGES",
    "LENA",
    "MACKENZIE",
    "MEKONG",
    "MISSISSIPPI",
    "MURRAY",
    "NIGER",
    "NILE",
    "OB",
    "ORINOCO",
    "PARANA",
    "RHINE",
    "VOLGA",
    "YUKON",
    "ZAMBEZI",
    "SENEGAL",
    "JAPURA",
]
PARAMS = {"basins": BASINS, "seed": 3, "n_estimators": 60}


@pytest.fixture(scope="module")
def tws_run(django_db_setup, django_db_blocker, shared_data):
    """`generate tws_rec` on 21 real basins."""
    from ingestion.services import ingest
    from products.models import GenerationRun

    folder = shared_data / "lehmannfa_basin_water_budget"
    with django_db_blocker.unblock():
        summary = ingest(
            "basins",
            [
                folder / f
                for f in (*TWS_FILES, "R_ERA5_Land_monthly.csv", "ET_ERA5_Land_monthly.csv", "P_ERA5_Land_monthly.csv")
            ],
        )
        assert not summary.failed
        runs = GenerationRun.objects.filter(product="tws_rec", status="succeeded", parameters=PARAMS)
        if not runs.exists():  # tests/products/test_cf_published.py may have published it already
            call_command("generate", "tws_rec", "--params", json.dumps(PARAMS))
        return runs.latest("created_at")


@pytest.mark.django_db
def test_generate_publishes_basin_and_region_files_with_cf_attributes(tws_run):
    version = tws_run.version
    assert set(version.files.values_list("name", flat=True)) == {
        "tws_rec_basins.nc",
        "tws_rec_regions.nc",
        "tws_water_balance.csv",
    }
    root = Path(settings.DATA_ROOT)
    with xr.open_dataset(root / version.files.get(name="tws_rec_basins.nc").path) as ds:
        assert ds.attrs["data_kind"] == "real" and ds.attrs["featureType"] == "timeSeries"
        assert set(ds["station_name"].values) == set(BASINS)
        assert str(ds["time"].values[0])[:7] == "1981-01"  # ERA5-Land predictors
        assert ds["tws_jpl"].sel(time="2018-01-01").isnull().all()  # the inter-mission gap stays a gap
        rec = ds["tws_jpl_rec"].sel(time=slice("1981-01-01", "2001-12-01"))
        assert np.isfinite(rec).all() and float(abs(rec).max()) < 2000
        assert {"tws_csr_rec", "tws_jpl_dd_rec", "tws_csr_dd_rec", "tws_jpl_cv"} <= set(ds.data_vars)
    with xr.open_dataset(root / version.files.get(name="tws_rec_regions.nc").path) as ds:
        regions = set(ds["region_name"].values)
        assert "All basins" in regions and "Europe" in regions and "Greenland" not in regions
        assert "Greenland" in ds.attrs["regions_not_formed"]
        assert int(ds["n_basins"].sel(region=list(ds["region_name"].values).index("All basins"))) == len(BASINS) - 1
    balance = pd.read_csv(root / version.files.get(name="tws_water_balance.csv").path)
    assert set(balance["series"]) == {"tws_jpl", "tws_csr", "tws_jpl_rec"}
    assert balance.loc[balance["series"] == "tws_jpl", "r"].median() > 0.3
    uses = balance.groupby("series")["use"].first()
    assert uses["tws_jpl"].startswith("validation") and uses["tws_jpl_rec"].startswith("consistency diagnostic")
    roles = " ".join(i["role"] for i in tws_run.inputs)
    assert "basin TWS" in roles and "attributes" in roles
    assert all(i["sha256"] for i in tws_run.inputs)


@pytest.mark.django_db
def test_validation_rows_cover_held_out_years_itsg_and_the_water_balance(tws_run):
    from products.models import ValidationResult

    rows = ValidationResult.objects.filter(version=tws_run.version)
    assert set(rows.values_list("split", flat=True)) == {
        "year_block_held_out",
        "year_held_out",
        "independent_itsg",
        "water_balance",
        "consistency_diagnostic",
    }
    pooled = rows.get(split="year_held_out", variable="tws_jpl_rec", scope="pooled")
    assert pooled.n > 3000 and pooled.nse > 0.3 and pooled.r > 0.6
    blocked = rows.get(split="year_block_held_out", variable="tws_jpl_rec", scope="pooled")
    assert blocked.n == pooled.n and 0.6 < blocked.r < pooled.r  # blocks with a buffer: the lower, honest score
    # only independent storage (GRACE) is validated against the budget; the reconstruction, built from
    # P - ET - R, is a consistency diagnostic under that name
    budget = set(rows.filter(split="water_balance", scope="pooled").values_list("variable", flat=True))
    assert budget == {"dsdt_tws_jpl_vs_p_minus_et_minus_r", "dsdt_tws_csr_vs_p_minus_et_minus_r"}
    diagnostic = set(rows.filter(split="consistency_diagnostic", scope="pooled").values_list("variable", flat=True))
    assert diagnostic == {"dsdt_tws_jpl_rec_vs_p_minus_et_minus_r"}
    sites = rows.filter(split="year_held_out", variable="tws_jpl_rec", scope="site")
    assert sites.count() == len(BASINS) and all(s.station_id for s in sites)
    assert sites.first().station.network == "GRDC-MRB"
    assert rows.filter(split="year_held_out", scope="class", label="Europe").exists()
    itsg = rows.filter(split="independent_itsg", scope="pooled")
    assert {"tws_jpl_rec", "tws_jpl", "tws_csr_rec", "tws_jpl_dd_rec"} <= set(itsg.values_list("variable", flat=True))
    assert itsg.get(variable="tws_jpl").r > itsg.get(variable="tws_jpl_rec").r > 0.4
    assert tws_run.summary["itsg"]["matched_basins"] >= 15
    assert tws_run.summary["held_out_years"]["tws_jpl_anomaly"]["folds"] >= 17
    assert tws_run.summary["held_out_year_blocks"]["tws_jpl_anomaly"]["folds"] >= 6
    assert set(tws_run.summary["water_balance"]) == {"tws_jpl", "tws_csr"}
    assert set(tws_run.summary["consistency_diagnostic"]) == {"tws_jpl_rec"}
    # every TWS series is zero-mean by construction: KGE and beta are reasons, not numbers (issue 16)
    assert not rows.filter(not_meaningful="").exists()
    assert not rows.filter(kge__isnull=False).exists() and not rows.filter(beta__isnull=False).exists()
    assert not rows.filter(r__isnull=True, scope="pooled").exists()
    lineage = tws_run.version.lineage
    assert lineage["parameters"]["itsg_area_tolerance"] == 0.2 and lineage["parameters"]["lightgbm"]["n_estimators"]
    assert "tws baseline, climatology, trend" in lineage["statistics_fitted_on"]


@pytest.mark.django_db
def test_the_dataset_page_shows_held_out_years_itsg_and_water_balance(tws_run, client):
    from products.models import ValidationResult

    html = client.get(f"/datasets/{tws_run.dataset_id}/").content.decode()
    splits = ("year_block_held_out", "year_held_out", "independent_itsg", "water_balance", "consistency_diagnostic")
    for split in splits:
        start = html.index(f'id="validation-{split}"')
        table = html[start : html.index("</table>", start)]
        rows = ValidationResult.objects.filter(version=tws_run.version, split=split, scope="pooled")
        assert rows.exists()
        for row in rows:
            assert f"<td>{row.variable}</td><td>{row.n}</td>" in table
        assert 'class="not-meaningful"' in table and "e+" not in table  # no KGE of -1e10
    assert "zero-mean anomaly" in html and "Statistics fitted on" in html
