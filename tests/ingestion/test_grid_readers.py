"""Gridded readers: real sample files, files written here in documented product layouts, bad input.

No database. Values are checked against the raw files read another way (netCDF4, ecCodes, pyhdf,
h5py, PROJ through rasterio).
"""

import os
import shutil
from pathlib import Path

import eccodes
import h5py
import netCDF4
import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from affine import Affine
from pyhdf.SD import SD, SDC
from rasterio.warp import transform as proj_transform

from ingestion.readers import amsr2, era5, esacci, geotiff, gldas, grace, grids, gridtools, modis, smap
from ingestion.readers.base import ReaderError
from ingestion.readers.units import normalise_units

DATA = Path(os.environ.get("SHARED_DATA_DIR", "/work/shared/data"))
GLDAS_NC_DIR = DATA / "gldas_testdata/img2ts_test/netcdf/2016/001"
GLDAS_NC = GLDAS_NC_DIR / "GLDAS_NOAH025_3H.A20160101.0300.021.nc4"
GLDAS_GRB_DIR = DATA / "gldas_testdata/img2ts_test/grib/2015/001"
GLDAS_GRB = GLDAS_GRB_DIR / "GLDAS_NOAH025SUBP_3H.A2015001.0600.001.2015037193230.grb"
ERA5_GRIB = DATA / "xarray_data/era5-2mt-2019-03-uk.grib"
ERA5_NC = DATA / "ecmwf_models_testdata/ERA5_example_downloaded_raw_2010-01-01.nc"
ERA5_CITIES = DATA / "xclim_era5_cities/daily_surface_cancities_1990-1993.nc"
MODIS_HDF = DATA / "modis_lsttools/MOD11A1.hdf"
REAL_FILES = {
    GLDAS_NC: "gldas",
    GLDAS_GRB: "gldas",
    ERA5_GRIB: "era5",
    ERA5_NC: "era5",
    ERA5_CITIES: "era5",
    MODIS_HDF: "modis",
}


@pytest.fixture(scope="module", autouse=True)
def real_data():
    missing = [p for p in REAL_FILES if not p.is_file()]
    assert not missing, f"real sample files not found (set SHARED_DATA_DIR): {missing}"


def grib_nearest(path, message: int, lat: float, lon: float) -> float:
    """ecCodes' own nearest-point lookup in the n-th (1-based) message of a GRIB file."""
    with open(path, "rb") as f:
        for _ in range(message):
            h = eccodes.codes_grib_new_from_file(f)
            if _ < message - 1:
                eccodes.codes_release(h)
    try:
        return eccodes.codes_grib_find_nearest(h, lat, lon)[0]["value"]
    finally:
        eccodes.codes_release(h)


def assert_cf_grid(ds):
    assert ds["lat"].attrs["units"] == "degrees_north" and ds["lon"].attrs["units"] == "degrees_east"
    if ds["lat"].dims == ("lat",):
        assert (np.diff(ds["lat"].values) > 0).all()
        assert (np.diff(ds["lon"].values) > 0).all()
    assert ds["lon"].min() >= -180 and ds["lon"].max() < 180
    if "time" in ds.coords:
        assert ds["time"].dtype == np.dtype("datetime64[ns]")
    for name, var in ds.data_vars.items():
        if var.dtype.kind != "M":  # datetime variables keep their units in the encoding
            assert normalise_units(var.attrs["units"]) == var.attrs["units"], name
        assert not var.variable._in_memory, f"{name} was loaded eagerly"


# --- real files -------------------------------------------------------------------------------


def test_gldas_netcdf_opens_on_the_025_degree_grid_with_the_values_of_the_file():
    ds = gldas.open_grid(GLDAS_NC)
    assert_cf_grid(ds)
    sm = ds["SoilMoi0_10cm_inst"]
    assert sm.dims == ("time", "lat", "lon") and sm.shape == (1, 600, 1440)
    assert sm.attrs["units"] == "kg m-2" and sm.attrs["standard_name"] == "mass_content_of_water_in_soil_layer"
    with netCDF4.Dataset(GLDAS_NC) as nc:
        raw = nc["SoilMoi0_10cm_inst"][0].filled(np.nan)
        lat, lon = nc["lat"][:], nc["lon"][:]
    i, j = int(np.searchsorted(lat, 47.875)), int(np.searchsorted(lon, 16.375))
    assert np.isfinite(raw[i, j])
    assert float(sm.sel(lat=47.875, lon=16.375).item()) == pytest.approx(float(raw[i, j]))
    np.testing.assert_array_equal(np.isnan(sm.values[0]), np.isnan(raw))  # ocean/Antarctica masked as in the file
    d = gridtools.describe(ds)
    assert d["bbox"] == (-180.0, -60.0, 180.0, 90.0)
    assert d["grid"] == {
        "kind": "regular",
        "dims": ("lat", "lon"),
        "shape": (600, 1440),
        "resolution": (0.25, 0.25),
        "resolution_units": "degree",
        "crs": "EPSG:4326",
    }
    assert d["time"]["start"] == pd.Timestamp("2016-01-01 03:00") and d["time"]["steps"] == 1


def test_gldas_netcdf_files_of_a_day_form_a_3_hourly_series():
    ds = xr.concat([gldas.open_grid(p) for p in sorted(GLDAS_NC_DIR.glob("*.nc4"))], dim="time")
    t = gridtools.describe(ds)["time"]
    assert (t["start"], t["end"], t["steps"]) == (pd.Timestamp("2016-01-01 03:00"), pd.Timestamp("2016-01-01 21:00"), 7)
    assert t["step"] == pd.Timedelta("3h") and t["frequency"] == "3h"


def test_gldas_grib_maps_pds_85_layers_to_soil_temperature_with_the_values_ecCodes_decodes():
    ds = gldas.open_grid(GLDAS_GRB)
    assert_cf_grid(ds)
    assert sorted(ds.data_vars) == sorted(f"SoilTMP{k}_inst" for k in gldas.LAYERS)
    st = ds["SoilTMP0_10cm_inst"]
    assert st.attrs["units"] == "K" and st.attrs["standard_name"] == "soil_temperature"
    assert st.attrs["grib_parameter"] == 85 and st.attrs["grib_level"] == "0-4"
    assert ds["time"].values[0] == np.datetime64("2015-01-01T06:00")
    for lat, lon in ((47.875, 16.375), (-3.125, -60.125), (64.125, 100.875)):
        assert float(st.sel(lat=lat, lon=lon).item()) == pytest.approx(grib_nearest(GLDAS_GRB, 1, lat, lon), abs=1e-3)
    assert float(ds["SoilTMP100_200cm_inst"].sel(lat=47.875, lon=16.375).item()) == pytest.approx(
        grib_nearest(GLDAS_GRB, 4, 47.875, 16.375), abs=1e-3
    )
    with open(GLDAS_GRB, "rb") as f:
        h = eccodes.codes_grib_new_from_file(f)
        n_missing = eccodes.codes_get(h, "numberOfMissing")
        eccodes.codes_release(h)
    assert int(st.isnull().sum()) == n_missing
    d = gridtools.describe(ds)
    assert d["bbox"] == (-180.0, -60.0, 180.0, 90.0) and d["grid"]["shape"] == (600, 1440)


def test_gldas_grib_layer_order_follows_depth():
    """The top layer follows the diurnal cycle (00 -> 12 UTC) far more than the deepest one."""
    first, noon = (gldas.open_grid(next(GLDAS_GRB_DIR.glob(f"*.{hhmm}.*.grb"))) for hhmm in ("0000", "1200"))
    change = {
        k: float(np.nanmean(np.abs(noon[f"SoilTMP{k}_inst"].values - first[f"SoilTMP{k}_inst"].values)))
        for k in gldas.LAYERS
    }
    assert change["0_10cm"] > change["10_40cm"] > change["40_100cm"] > change["100_200cm"]
    assert change["0_10cm"] > 10 * change["100_200cm"]


def test_era5_grib_opens_as_hourly_2m_temperature_with_the_values_ecCodes_decodes():
    ds = era5.open_grid(ERA5_GRIB)
    assert_cf_grid(ds)
    t2m = ds["t2m"]
    assert t2m.dims == ("time", "lat", "lon") and t2m.shape == (744, 33, 49)
    assert t2m.attrs["units"] == "K" and t2m.attrs["standard_name"] == "air_temperature"
    assert ds["lat"].values[0] == 50.0 and ds["lon"].values[0] == -10.0
    # message 30 is 2019-03-02 05:00 (one message per hour)
    value = float(t2m.sel(time="2019-03-02T05:00", lat=55.0, lon=-3.0).item())
    assert value == pytest.approx(grib_nearest(ERA5_GRIB, 30, 55.0, -3.0), abs=1e-3)
    d = gridtools.describe(ds)
    assert d["bbox"] == (-10.125, 49.875, 2.125, 58.125)
    assert d["time"]["steps"] == 744 and d["time"]["frequency"] == "h"
    assert d["time"]["end"] == pd.Timestamp("2019-03-31 23:00")


def test_era5_netcdf_rotates_longitudes_and_reverses_latitudes_lazily():
    ds = era5.open_grid(ERA5_NC)
    assert_cf_grid(ds)
    assert ds["lon"].values[0] == -180.0 and ds["lon"].values[-1] == 175.0 and ds["lat"].values[0] == -90.0
    assert ds["swvl1"].attrs["units"] == "m3 m-3" and ds["lsm"].attrs["units"] == "1"
    assert ds["lsm"].attrs["standard_name"] == "land_area_fraction"
    with netCDF4.Dataset(ERA5_NC) as nc:
        lat, lon = list(nc["latitude"][:]), list(nc["longitude"][:])
        raw = nc["swvl1"][2, lat.index(50.0), lon.index(350.0)]  # netCDF4 applies the scale factor itself
    assert float(ds["swvl1"].isel(time=2).sel(lat=50.0, lon=-10.0).item()) == pytest.approx(float(raw))
    d = gridtools.describe(ds)
    assert d["bbox"] == (-180.0, -90.0, 180.0, 90.0) and d["grid"]["resolution"] == (5.0, 5.0)
    assert d["time"]["frequency"] == "6h" and d["time"]["steps"] == 4


def test_era5_city_series_open_as_points_with_cf_units():
    ds = era5.open_grid(ERA5_CITIES)
    assert ds.attrs["featureType"] == "timeSeries" and ds["tas"].dims == ("location", "time")
    assert ds["hurs"].attrs["units"] == "1" and ds["tas"].attrs["units"] == "K"
    assert ds["rlds"].attrs["standard_name"] == "surface_downwelling_longwave_flux_in_air"
    with netCDF4.Dataset(ERA5_CITIES) as nc:
        raw = float(nc["tas"][2, 100])
    assert float(ds["tas"].isel(location=2, time=100).item()) == pytest.approx(raw)
    d = gridtools.describe(ds)
    assert d["grid"]["kind"] == "points" and d["grid"]["shape"] == (5,)
    np.testing.assert_allclose(d["bbox"], (-123.15, 44.5, -63.4, 63.75), atol=1e-4)
    assert (d["time"]["start"], d["time"]["steps"], d["time"]["frequency"]) == (pd.Timestamp("1990-01-01"), 1461, "D")


def test_modis_lst_opens_scaled_to_kelvin_on_the_sinusoidal_grid():
    ds = modis.open_grid(MODIS_HDF)
    assert_cf_grid(ds)
    assert ds.attrs["crs"] == modis.CRS and ds.attrs["tile"] == "h14v09"
    lst = ds["LST_Day_1km"]
    assert lst.dims == ("time", "y", "x") and lst.dtype == np.float32 and lst.attrs["units"] == "K"
    sd = SD(str(MODIS_HDF), SDC.READ)
    raw, qc = sd.select("LST_Day_1km")[:], sd.select("QC_Day")[:]
    sd.end()
    np.testing.assert_array_equal(np.isnan(lst.values[0]), (raw == 0) | (raw < 7500))
    ok = raw >= 7500
    np.testing.assert_allclose(lst.values[0][ok], raw[ok] * 0.02, rtol=1e-6)
    np.testing.assert_array_equal(ds["QC_Day"].values[0], qc)
    # corners from StructMetadata, cell size 926.625 m
    assert ds["x"].values[0] == pytest.approx(-4447802.079066 + 926.6254331 / 2, abs=1e-3)
    assert ds["y"].values[0] == pytest.approx(-926.6254331 / 2, abs=1e-3)
    # 2-D lat/lon against PROJ's sinusoidal inverse
    idx = (np.array([0, 0, 599, 1199, 1199]), np.array([0, 1199, 600, 0, 1199]))
    lon, lat = proj_transform(modis.CRS, "EPSG:4326", ds["x"].values[idx[1]], ds["y"].values[idx[0]])
    np.testing.assert_allclose(ds["lon"].values[idx], lon, atol=1e-7)
    np.testing.assert_allclose(ds["lat"].values[idx], lat, atol=1e-7)
    d = gridtools.describe(ds)
    np.testing.assert_allclose(d["bbox"], (-40.617, -10.0, -30.0, 0.0), atol=1e-3)
    assert d["grid"]["kind"] == "projected" and d["grid"]["shape"] == (1200, 1200)
    np.testing.assert_allclose(d["grid"]["resolution"], (926.6254331, 926.6254331))
    assert d["time"]["start"] == pd.Timestamp("2019-11-01")


@pytest.mark.parametrize("path", list(REAL_FILES), ids=lambda p: p.name)
def test_open_any_chooses_the_reader_of_each_real_file(path):
    ds = grids.open_any(path)
    assert ds.attrs["reader"] == f"{REAL_FILES[path]} 1.0" and ds.attrs["source_file"] == path.name


def test_open_any_recognises_files_by_content_when_the_name_says_nothing(tmp_path):
    for path, reader in ((GLDAS_GRB, "gldas"), (ERA5_GRIB, "era5"), (ERA5_NC, "era5"), (MODIS_HDF, "modis")):
        renamed = tmp_path / f"renamed_{reader}{path.suffix}"
        shutil.copyfile(path, renamed)
        assert grids.reader_for(renamed).__name__.endswith(reader)


# --- products written here in their documented layouts ------------------------------------------


def write_grace(folder: Path) -> Path:
    path = folder / "GRCTellus.JPL.200204_200206.GLO.RL06.1M.MSCNv03CRI.nc"
    lat, lon = np.arange(-89.75, 90, 0.5), np.arange(0.25, 360, 0.5)
    with netCDF4.Dataset(path, "w") as nc:
        for name, n in (("time", 3), ("lat", 360), ("lon", 720), ("bounds", 2)):
            nc.createDimension(name, n)
        nc.createVariable("lat", "f8", ("lat",))[:] = lat
        nc.createVariable("lon", "f8", ("lon",))[:] = lon
        t = nc.createVariable("time", "f8", ("time",))
        t.units = "days since 2002-01-01T00:00:00Z"
        t[:] = [105.5, 135.0, 166.5]
        nc.createVariable("time_bounds", "f8", ("time", "bounds"))[:] = [[91, 120], [121, 151], [152, 181]]
        nc.createVariable("lon_bounds", "f8", ("lon", "bounds"))[:] = np.stack([lon - 0.25, lon + 0.25], 1)
        for name in ("lwe_thickness", "uncertainty"):
            v = nc.createVariable(name, "f4", ("time", "lat", "lon"), fill_value=-99999.0, zlib=True)
            v.units = "cm"
            v[:] = (np.arange(3)[:, None, None] * 100 + lat[None, :, None] + lon[None, None, :] / 1000).astype("f4")
        v = nc["lwe_thickness"]
        v[0, 0, 0] = -99999.0
    for fname, name, values in (
        ("LAND_MASK.CRI.nc", "land_mask", (lon[None, :] < 180) * np.ones((360, 1))),
        ("CLM4.SCALE_FACTOR.JPL.MSCNv03CRI.nc", "scale_factor", np.full((360, 720), 1.5)),
    ):
        with netCDF4.Dataset(folder / fname, "w") as nc:
            nc.createDimension("lat", 360)
            nc.createDimension("lon", 720)
            nc.createVariable("lat", "f8", ("lat",))[:] = lat
            nc.createVariable("lon", "f8", ("lon",))[:] = lon
            nc.createVariable(name, "f4", ("lat", "lon"))[:] = values
    return path


def test_grace_mascons_rotate_to_180_and_carry_their_land_mask_and_scale_factors(tmp_path):
    path = write_grace(tmp_path)
    assert [p.name for p in grace.companions(path)] == ["LAND_MASK.CRI.nc", "CLM4.SCALE_FACTOR.JPL.MSCNv03CRI.nc"]
    ds = grace.open_grid(path)
    assert_cf_grid(ds)
    lwe = ds["lwe_thickness"]
    assert lwe.dims == ("time", "lat", "lon") and lwe.attrs["units"] == "cm"
    assert ds["lon"].values[0] == -179.75 and ds["lon"].values[-1] == 179.75
    # the file's lon 359.75 (value lat + 0.35975) is now lon -0.25
    assert float(lwe.isel(time=1).sel(lat=10.25, lon=-0.25).item()) == pytest.approx(100 + 10.25 + 0.35975, abs=1e-4)
    assert float(lwe.isel(time=0).sel(lat=-89.75, lon=0.25).item()) != float(
        lwe.isel(time=0).sel(lat=-89.75, lon=0.75).item()
    )
    assert np.isnan(lwe.isel(time=0).sel(lat=-89.75, lon=0.25).item())  # the fill value
    assert ds["land_mask"].dims == ("lat", "lon") and float(ds["land_mask"].sel(lat=0.25, lon=-0.25)) == 0.0
    assert float(ds["land_mask"].sel(lat=0.25, lon=0.25)) == 1.0 and float(ds["scale_factor"].mean()) == 1.5
    assert "time_bounds" in ds.coords
    d = gridtools.describe(ds)
    assert d["bbox"] == (-180.0, -90.0, 180.0, 90.0) and d["grid"]["resolution"] == (0.5, 0.5)
    assert d["time"]["start"] == pd.Timestamp("2002-04-16 12:00") and d["time"]["steps"] == 3
    assert d["time"]["frequency"] is None and d["time"]["step"] == pd.Timedelta("30.5D")


def write_smap(folder: Path, date="20150401", shift_lat=0.0) -> Path:
    path = folder / f"SMAP_L3_SM_P_{date}_R18290_001.h5"
    rows, cols = 406, 964
    y, x, lat, lon = smap.ease2_axes((rows, cols))
    lon = np.asarray(proj_transform("EPSG:6933", "EPSG:4326", x, np.zeros(cols))[0])
    lat = np.asarray(proj_transform("EPSG:6933", "EPSG:4326", np.zeros(rows), y)[1]) + shift_lat
    sm = np.full((rows, cols), -9999.0, "f4")
    sm[100, 500], sm[300, 10] = 0.25, 0.4
    with h5py.File(path, "w") as f:
        for group, suffix in smap.GROUPS.items():
            g = f.create_group(group)
            d = g.create_dataset("soil_moisture" + suffix, data=sm + (0.01 if suffix else 0) * (sm > 0))
            d.attrs.update(
                units=np.bytes_("cm**3/cm**3"),
                _FillValue=np.float32(-9999.0),
                valid_min=np.float32(0.02),
                valid_max=np.float32(0.5),
                long_name=np.bytes_("Soil moisture"),
            )
            q = g.create_dataset("retrieval_qual_flag" + suffix, data=np.where(sm > 0, 0, 65534).astype("u2"))
            q.attrs.update(_FillValue=np.uint16(65534), flag_masks=np.bytes_("1s, 2s, 4s, 8s"))
            for name, values in (
                ("latitude", np.repeat(lat[:, None], cols, 1)),
                ("longitude", np.repeat(lon[None, :], rows, 0)),
            ):
                g.create_dataset(name + suffix, data=np.where(sm > 0, values, -9999.0).astype("f4"))
    return path


def test_smap_l3_opens_on_the_ease2_36km_grid(tmp_path):
    ds = smap.open_grid(write_smap(tmp_path))
    assert_cf_grid(ds)
    assert ds.attrs["crs"] == "EPSG:6933" and ds["soil_moisture"].shape == (1, 406, 964)
    sm = ds["soil_moisture"]
    assert sm.attrs["units"] == "m3 m-3" and sm.attrs["standard_name"] == "volume_fraction_of_condensed_water_in_soil"
    # file row 100 is row 305 from the south once latitudes ascend
    assert float(sm[0, 405 - 100, 500]) == pytest.approx(0.25) and float(sm[0, 405 - 300, 10]) == pytest.approx(0.4)
    assert float(ds["soil_moisture_pm"][0, 305, 500]) == pytest.approx(0.26)
    assert int(sm.count()) == 2 and ds["retrieval_qual_flag"].dtype == np.uint16
    assert ds["retrieval_qual_flag"].attrs["units"] == "1"
    # lat/lon against the closed-form EASE-Grid 2.0 forward projection (WGS84 cylindrical equal area, 30 deg)
    a, e2 = 6378137.0, 0.0066943799901413165
    e = np.sqrt(e2)
    k0 = np.cos(np.radians(30)) / np.sqrt(1 - e2 * np.sin(np.radians(30)) ** 2)
    s = np.sin(np.radians(ds["lat"].values))
    q = (1 - e2) * (s / (1 - e2 * s**2) - np.log((1 - e * s) / (1 + e * s)) / (2 * e))
    np.testing.assert_allclose(a * q / (2 * k0), ds["y"].values, atol=0.01)
    np.testing.assert_allclose(a * k0 * np.radians(ds["lon"].values), ds["x"].values, atol=0.01)
    np.testing.assert_allclose(np.diff(ds["x"].values), 36032.220840584)
    d = gridtools.describe(ds)
    assert d["grid"]["kind"] == "projected" and d["grid"]["shape"] == (406, 964)
    np.testing.assert_allclose(d["grid"]["resolution"], (36032.22084, 36032.22084))
    np.testing.assert_allclose(d["bbox"], (-180.0, -85.0445664, 180.0, 85.0445664), atol=1e-6)
    assert d["time"]["start"] == pd.Timestamp("2015-04-01")


def write_cci(folder: Path) -> Path:
    path = folder / "ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-20150101000000-fv08.1.nc"
    lat, lon = np.arange(89.875, -90, -0.25), np.arange(-179.875, 180, 0.25)
    with netCDF4.Dataset(path, "w") as nc:
        for name, n in (("time", 1), ("lat", 720), ("lon", 1440)):
            nc.createDimension(name, n)
        nc.createVariable("lat", "f4", ("lat",))[:] = lat
        nc.createVariable("lon", "f4", ("lon",))[:] = lon
        t = nc.createVariable("time", "f8", ("time",))
        t.units = "days since 1970-01-01 00:00:00 UTC"
        t[:] = [16436.0]
        sm = nc.createVariable("sm", "f4", ("time", "lat", "lon"), fill_value=-9999.0, zlib=True)
        sm.units = "m3 m-3"
        values = np.full((720, 1440), -9999.0, "f4")
        values[0, 0], values[719, 1439], values[200, 700] = 0.1, 0.2, 0.3
        sm[0] = values
        unc = nc.createVariable("sm_uncertainty", "f4", ("time", "lat", "lon"), fill_value=-9999.0, zlib=True)
        unc.units = "m3 m-3"
        unc[0] = np.where(values > 0, 0.04, -9999.0)
        flag = nc.createVariable("flag", "i1", ("time", "lat", "lon"), zlib=True)
        flag.flag_masks = np.array([1, 2, 4, 8], "i1")
        flag.flag_meanings = (
            "snow_coverage_or_temperature_below_zero dense_vegetation others_no_convergence "
            "soil_moisture_value_exceeds_physical_boundary"
        )
        flag[0] = np.where(values > 0, 0, 4)
        t0 = nc.createVariable("t0", "f8", ("time", "lat", "lon"), fill_value=-9999.0, zlib=True)
        t0.units = "days since 1970-01-01 00:00:00 UTC"
        t0[0] = np.where(values > 0, 16436.25, -9999.0)
    return path


def test_esa_cci_combined_opens_with_ascending_latitudes_and_decoded_observation_times(tmp_path):
    ds = esacci.open_grid(write_cci(tmp_path))
    assert_cf_grid(ds)
    sm = ds["sm"]
    assert sm.shape == (1, 720, 1440) and sm.attrs["units"] == "m3 m-3"
    assert sm.attrs["standard_name"] == "volume_fraction_of_condensed_water_in_soil"
    assert sm.sel(lat=89.875, lon=-179.875).item() == pytest.approx(0.1)  # file row 0 is north
    assert sm.sel(lat=-89.875, lon=179.875).item() == pytest.approx(0.2)
    assert float(sm[0, 719 - 200, 700]) == pytest.approx(0.3) and int(sm.count()) == 3
    assert ds["flag"].attrs["units"] == "1" and ds["flag"].sel(lat=0.125, lon=0.125).item() == 4
    assert ds["t0"].sel(lat=89.875, lon=-179.875).values[0] == np.datetime64("2015-01-01T06:00")
    d = gridtools.describe(ds)
    assert d["bbox"] == (-180.0, -90.0, 180.0, 90.0) and d["grid"]["resolution"] == (0.25, 0.25)
    assert d["time"]["start"] == pd.Timestamp("2015-01-01")


def write_amsr2(folder: Path, name="GW1AM2_20150701_01D_EQMA_L3SGT36LA2220220.h5", shape=(720, 1440)) -> Path:
    path = folder / name
    tb = np.full(shape, 65534, "u2")
    tb[0, 0], tb[0, -1], tb[-1, shape[1] // 2] = 25000, 26000, 27000
    with h5py.File(path, "w") as f:
        for pol, offset in (("H", 0), ("V", 1000)):
            d = f.create_dataset(f"Brightness Temperature ({pol})", data=np.where(tb < 65534, tb + offset, tb))
            d.attrs["SCALE FACTOR"] = np.array([0.01], "f4")
            d.attrs["UNIT"] = np.bytes_("K")
        f.attrs["PlatformShortName"] = np.bytes_("GCOM-W1")
    return path


def test_amsr2_l3_brightness_temperatures_are_scaled_and_rotated_to_180(tmp_path):
    ds = amsr2.open_grid(write_amsr2(tmp_path))
    assert_cf_grid(ds)
    tb = ds["tb_h"]
    assert (
        tb.shape == (1, 720, 1440)
        and tb.attrs["units"] == "K"
        and tb.attrs["standard_name"] == "brightness_temperature"
    )
    # file row 0 / column 0 is the cell centred at 89.875 N, 0.125 E
    assert tb.sel(lat=89.875, lon=0.125).item() == pytest.approx(250.0, abs=1e-3)
    assert tb.sel(lat=89.875, lon=-0.125).item() == pytest.approx(260.0, abs=1e-3)  # last column: 359.875 E
    assert tb.sel(lat=-89.875, lon=-179.875).item() == pytest.approx(270.0, abs=1e-3)  # column 720: 180.125 E
    assert ds["tb_v"].sel(lat=89.875, lon=0.125).item() == pytest.approx(260.0, abs=1e-3)
    assert int(tb.count()) == 3
    assert ds.attrs["frequency_ghz"] == 36.5 and ds.attrs["orbit_direction"] == "ascending"
    d = gridtools.describe(ds)
    assert d["bbox"] == (-180.0, -90.0, 180.0, 90.0) and d["grid"]["shape"] == (720, 1440)
    assert d["time"]["start"] == pd.Timestamp("2015-07-01")


def test_amsr2_l3_high_resolution_monthly_file_is_a_01_degree_grid(tmp_path):
    ds = amsr2.open_grid(write_amsr2(tmp_path, "GW1AM2_20150700_01M_EQMD_L3SGT89HA2220220.h5", (1800, 3600)))
    assert gridtools.describe(ds)["grid"]["resolution"] == pytest.approx((0.1, 0.1))
    assert ds["time"].values[0] == np.datetime64("2015-07-01") and ds.attrs["averaging_period"] == "month"
    assert ds["tb_h"].sel(lat=89.95, lon=0.05).item() == pytest.approx(250.0, abs=1e-3)


LATLON_TRANSFORM = Affine(0.5, 0, 10, 0, -0.5, 50)  # 0.5 degree cells, north-west corner at 10 E, 50 N


def write_tiff(
    path: Path,
    crs="EPSG:4326",
    transform=LATLON_TRANSFORM,
    descriptions=("2015-01-01", "2015-01-02"),
    units=("m3 m-3", "m3 m-3"),
) -> Path:
    data = np.arange(2 * 4 * 6, dtype="int16").reshape(2, 4, 6)
    data[0, 0, 0] = -1
    with rasterio.open(
        path, "w", driver="GTiff", width=6, height=4, count=2, dtype="int16", crs=crs, transform=transform, nodata=-1
    ) as dst:
        dst.write(data)
        dst.scales, dst.offsets = (0.001, 0.001), (0.05, 0.05)
        if units:
            dst.units = units
        for i, d in enumerate(descriptions, 1):
            dst.set_band_description(i, d)
        dst.update_tags(variable="sm", standard_name="volume_fraction_of_condensed_water_in_soil")
    return path


def test_geotiff_in_epsg4326_gives_lat_lon_and_dated_bands_become_time(tmp_path):
    ds = geotiff.open_grid(write_tiff(tmp_path / "sm.tif"))
    assert_cf_grid(ds)
    sm = ds["sm"]
    assert sm.dims == ("time", "lat", "lon") and sm.attrs["units"] == "m3 m-3"
    assert list(ds["time"].values) == [np.datetime64("2015-01-01"), np.datetime64("2015-01-02")]
    with rasterio.open(tmp_path / "sm.tif") as src:
        raw = src.read()
    assert np.isnan(float(sm.sel(lat=49.75, lon=10.25).isel(time=0)))  # nodata, top-left cell
    assert float(sm.sel(lat=49.75, lon=10.75).isel(time=0)) == pytest.approx(raw[0, 0, 1] * 0.001 + 0.05)
    assert float(sm.sel(lat=48.25, lon=12.75).isel(time=1)) == pytest.approx(raw[1, 3, 5] * 0.001 + 0.05)
    d = gridtools.describe(ds)
    assert d["bbox"] == (10.0, 48.0, 13.0, 50.0) and d["grid"]["resolution"] == (0.5, 0.5)
    assert d["time"]["steps"] == 2


def test_geotiff_in_a_projected_crs_keeps_x_y_and_band_numbers(tmp_path):
    path = write_tiff(
        tmp_path / "lst.tif",
        crs="EPSG:3035",
        transform=Affine(1000, 0, 4000000, 0, -1000, 3000000),
        descriptions=("day", "night"),
        units=("K", "K"),
    )
    ds = geotiff.open_grid(path)
    assert ds["sm"].dims == ("band", "y", "x") and list(ds["band"].values) == [1, 2]
    assert list(ds["band_description"].values) == ["day", "night"] and ds.attrs["crs"] == "EPSG:3035"
    lon, lat = proj_transform("EPSG:3035", "EPSG:4326", [4000500.0], [2999500.0])
    assert float(ds["lon"][0, 0]) == pytest.approx(lon[0]) and float(ds["lat"][0, 0]) == pytest.approx(lat[0])
    d = gridtools.describe(ds)
    assert d["grid"]["kind"] == "projected" and d["grid"]["resolution"] == (1000.0, 1000.0)
    assert d["bbox"][0] < lon[0] < d["bbox"][2] and d["bbox"][1] < lat[0] < d["bbox"][3]


# --- bad input --------------------------------------------------------------------------------


def write_era5_like(
    path: Path,
    lat=(50.0, 51.0, 52.0),
    lon=(0.0, 1.0, 2.0),
    units="K",
    times=("2020-01-01", "2020-01-02"),
    fmt="NETCDF4",
) -> Path:
    lat, lon = np.asarray(lat, "f8"), np.asarray(lon, "f8")
    ds = xr.Dataset(
        {
            "t2m": (
                ("time", "latitude", "longitude"),
                np.full((len(times), lat.size, lon.size), 280.0, "f4"),
                {"units": units},
            )
        },
        coords={"time": pd.DatetimeIndex(times), "latitude": lat, "longitude": lon},
    )
    ds.to_netcdf(path, format=fmt)
    return path


def assert_rejected(exc_info, path, *words):
    err = exc_info.value
    assert str(err).startswith(Path(path).name), str(err)
    for w in words:
        assert w in str(err), f"{w!r} not in {err}"


@pytest.mark.parametrize("fmt", ["NETCDF4", "NETCDF3_64BIT"])
def test_it_rejects_a_truncated_netcdf(tmp_path, fmt):
    path = write_era5_like(
        tmp_path / "era5_cut.nc",
        lat=np.arange(-89.5, 90),
        lon=np.arange(0.5, 360),
        times=pd.date_range("2020-01-01", periods=4),
        fmt=fmt,
    )
    assert era5.open_grid(path)["t2m"].shape == (4, 180, 360)  # the complete file is fine
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ReaderError) as exc:
        era5.open_grid(path)
    assert_rejected(exc, path, "NetCDF", "truncated", "expected a complete")


def test_it_rejects_a_real_gldas_netcdf_cut_in_half(tmp_path):
    path = tmp_path / GLDAS_NC.name
    data = GLDAS_NC.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ReaderError) as exc:
        gldas.open_grid(path)
    assert_rejected(exc, path, "cannot read as NetCDF", "truncated file", f"stored_eof = {len(data)}")


def regrid_message(message: bytes, step: float) -> bytes:
    """Clone a GRIB message onto a global regular grid of ``step`` degrees."""
    h = eccodes.codes_new_from_message(message)
    try:
        ni, nj = round(360 / step), round(150 / step)
        eccodes.codes_set(h, "bitmapPresent", 0)
        eccodes.codes_set_long(h, "Ni", ni)
        eccodes.codes_set_long(h, "Nj", nj)
        for key, value in (
            ("iDirectionIncrementInDegrees", step),
            ("jDirectionIncrementInDegrees", step),
            ("latitudeOfFirstGridPointInDegrees", -60 + step / 2),
            ("longitudeOfFirstGridPointInDegrees", -180 + step / 2),
            ("latitudeOfLastGridPointInDegrees", 90 - step / 2),
            ("longitudeOfLastGridPointInDegrees", 180 - step / 2),
        ):
            eccodes.codes_set_double(h, key, value)
        eccodes.codes_set_values(h, np.full(ni * nj, 280.0))
        return eccodes.codes_get_message(h)
    finally:
        eccodes.codes_release(h)


def first_message(path: Path) -> bytes:
    with open(path, "rb") as f:
        h = eccodes.codes_grib_new_from_file(f)
    try:
        return eccodes.codes_get_message(h)
    finally:
        eccodes.codes_release(h)


def test_it_rejects_a_grib_message_on_a_grid_other_than_gldas_025(tmp_path):
    path = tmp_path / "GLDAS_NOAH025SUBP_3H.A2015001.0600.001.half-degree.grb"
    path.write_bytes(regrid_message(first_message(GLDAS_GRB), 0.5))
    with pytest.raises(ReaderError) as exc:
        gldas.open_grid(path)
    assert_rejected(exc, path, "field 'Ni'", "Ni=720", "expected 1440", "GLDAS 0.25 degree")


@pytest.mark.parametrize("reader, source", [(gldas, GLDAS_GRB), (era5, ERA5_GRIB)], ids=["gldas", "era5"])
def test_it_rejects_a_grib_file_whose_messages_have_inconsistent_grids(tmp_path, reader, source):
    path = tmp_path / f"mixed_grids_{source.name}"
    message = first_message(source)
    path.write_bytes(message + regrid_message(message, 0.5))
    with pytest.raises(ReaderError) as exc:
        reader.open_grid(path)
    assert_rejected(exc, path, "inconsistent grids", "message 2", "field 'Ni'")


def test_it_rejects_a_truncated_grib_file(tmp_path):
    path = tmp_path / "era5_cut.grib"
    data = ERA5_GRIB.read_bytes()
    path.write_bytes(data[: len(data) // 2 + 100])
    with pytest.raises(ReaderError) as exc:
        era5.open_grid(path)
    assert_rejected(exc, path, "cannot be decoded", "expected complete GRIB messages")


@pytest.mark.parametrize(
    "coords, field, found",
    [
        ({"lat": (50.0, 70.0, 95.0)}, "lat", "found 95"),
        ({"lon": (0.0, 200.0, 400.0)}, "lon", "found 400"),
        ({"lon": (-200.0, 0.0, 10.0)}, "lon", "found -200"),
    ],
)
def test_it_rejects_coordinates_out_of_range(tmp_path, coords, field, found):
    path = write_era5_like(tmp_path / "era5_range.nc", **coords)
    with pytest.raises(ReaderError) as exc:
        era5.open_grid(path)
    assert_rejected(exc, path, f"field '{field}'", "expected degrees in", found)


@pytest.mark.parametrize(
    "coords, field",
    [
        ({"lat": (50.0, 52.0, 51.0)}, "lat"),
        ({"lon": (0.0, 2.0, 1.0)}, "lon"),
        ({"times": ("2020-01-02", "2020-01-01")}, "time"),
    ],
)
def test_it_rejects_non_monotonic_coordinates(tmp_path, coords, field):
    path = write_era5_like(tmp_path / "era5_order.nc", **coords)
    with pytest.raises(ReaderError) as exc:
        era5.open_grid(path)
    assert_rejected(exc, path, f"field '{field}'", "strictly")


def test_it_rejects_duplicate_longitudes_after_wrapping(tmp_path):
    path = write_era5_like(tmp_path / "era5_dup.nc", lon=(-180.0, 0.0, 180.0))
    with pytest.raises(ReaderError) as exc:
        era5.open_grid(path)
    assert_rejected(exc, path, "field 'lon'", "duplicates")
    assert era5.open_grid(write_era5_like(tmp_path / "era5_ok.nc", lon=(-180.0, 0.0, 179.0)))["lon"].size == 3


@pytest.mark.parametrize("units", ["furlongs", "", "degrees Kelvin please"])
def test_it_rejects_unknown_units(tmp_path, units):
    path = write_era5_like(tmp_path / "era5_units.nc", units=units)
    with pytest.raises(ReaderError) as exc:
        era5.open_grid(path)
    assert_rejected(exc, path, "field 't2m.units'", "expected UDUNITS units")


def test_it_rejects_units_that_differ_from_the_product(tmp_path):
    path = write_era5_like(tmp_path / "era5_degc.nc", units="degC")
    with pytest.raises(ReaderError) as exc:
        era5.open_grid(path)
    assert_rejected(exc, path, "field 't2m.units'", "expected 'K'")
    cci = write_cci(tmp_path)
    with netCDF4.Dataset(cci, "a") as nc:
        nc["sm"].units = "percent"
    with pytest.raises(ReaderError) as exc:
        esacci.open_grid(cci)
    assert_rejected(exc, cci, "field 'sm.units'", "expected 'm3 m-3'")


def test_it_rejects_a_geotiff_without_units(tmp_path):
    path = write_tiff(tmp_path / "nounits.tif", units=None)
    with pytest.raises(ReaderError) as exc:
        geotiff.open_grid(path)
    assert_rejected(exc, path, "field 'sm.units'", "no units attribute")
    assert geotiff.open_grid(path, units="m3 m-3")["sm"].attrs["units"] == "m3 m-3"


@pytest.mark.parametrize(
    "reader, name",
    [
        (gldas, "GLDAS_NOAH025_3H.A20160101.0300.021.nc4"),
        (gldas, "GLDAS_NOAH025SUBP_3H.A2015001.0600.001.grb"),
        (era5, "era5-2mt.grib"),
        (era5, "ERA5_2010.nc"),
        (modis, "MOD11A1.A2019305.h14v09.061.hdf"),
        (geotiff, "sm.tif"),
        (grace, "GRCTellus.JPL.200204_202001.GLO.RL06.1M.MSCNv03CRI.nc"),
        (smap, "SMAP_L3_SM_P_20150401_R18290_001.h5"),
        (esacci, "ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-2015.nc"),
        (amsr2, "GW1AM2_20150701_01D_EQMA_L3SGT36LA2220220.h5"),
        (grids, "anything.nc"),
    ],
)
def test_it_rejects_an_empty_file(tmp_path, reader, name):
    path = tmp_path / name
    path.touch()
    with pytest.raises(ReaderError) as exc:
        (reader.open_any if reader is grids else reader.open_grid)(path)
    assert_rejected(exc, path, "empty file (0 bytes)")


def test_it_rejects_a_truncated_hdf4_tile(tmp_path):
    path = tmp_path / MODIS_HDF.name
    data = MODIS_HDF.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ReaderError) as exc:
        modis.open_grid(path).load()
    assert_rejected(exc, path)


def test_it_rejects_smap_coordinates_off_the_ease2_grid(tmp_path):
    path = write_smap(tmp_path, shift_lat=0.3)
    with pytest.raises(ReaderError) as exc:
        smap.open_grid(path)
    assert_rejected(exc, path, "field 'Soil_Moisture_Retrieval_Data_AM/latitude'", "EASE-Grid 2.0")


def test_it_rejects_a_gldas_netcdf_on_another_grid(tmp_path):
    path = tmp_path / "GLDAS_NOAH025_3H.A20160101.0300.021.nc4"
    xr.Dataset(
        {"SoilMoi0_10cm_inst": (("time", "lat", "lon"), np.zeros((1, 150, 360), "f4"), {"units": "kg m-2"})},
        coords={
            "time": [np.datetime64("2016-01-01T03:00", "ns")],
            "lat": np.arange(-59.5, 90),
            "lon": np.arange(-179.5, 180),
        },
    ).to_netcdf(path)
    with pytest.raises(ReaderError) as exc:
        gldas.open_grid(path)
    assert_rejected(exc, path, "360 x 150 cells", "expected the GLDAS 0.25 degree")


def test_it_rejects_amsr2_files_on_an_unknown_grid_or_with_an_unknown_name(tmp_path):
    path = write_amsr2(tmp_path, shape=(180, 360))
    with pytest.raises(ReaderError) as exc:
        amsr2.open_grid(path)
    assert_rejected(exc, path, "field 'Brightness Temperature (H)'", "expected 720 x 1440")
    renamed = tmp_path / "amsr2_tb.h5"
    shutil.copyfile(write_amsr2(tmp_path), renamed)
    with pytest.raises(ReaderError) as exc:
        amsr2.open_grid(renamed)
    assert_rejected(exc, renamed, "JAXA pattern")


def test_it_rejects_a_file_no_reader_recognises(tmp_path):
    path = tmp_path / "notes.nc"
    path.write_text("not a grid\n")
    with pytest.raises(ReaderError) as exc:
        grids.open_any(path)
    assert_rejected(exc, path, "no gridded reader recognises")


@pytest.mark.parametrize(
    "units, expected",
    [
        ("m**3 m**-3", "m3 m-3"),
        ("cm**3/cm**3", "m3 m-3"),
        ("(0 - 1)", "1"),
        ("W/m^2", "W m-2"),
        ("kg m-2 s-1", "kg m-2 s-1"),
        ("kg/m^2/s", "kg m-2 s-1"),
        ("hrs", "h"),
        ("degC", "degC"),
        ("%", "%"),
        ("days since 2002-01-01T00:00:00Z", "days since 2002-01-01T00:00:00Z"),
        ("furlongs", None),
        ("", None),
        (None, None),
        ("K K", "K K"),
        ("m/s/s", "m s-1 s-1"),
    ],
)
def test_units_are_normalised_to_udunits_or_refused(units, expected):
    assert normalise_units(units) == expected
