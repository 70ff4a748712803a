"""Chunk-by-chunk gridded prediction (products.methods.chunked) and the ET grid (products.generators.et_grid).

No database. The small cubes here are SYNTHETIC forcing (smooth made-up fields, NaN over a made-up
ocean), written in the GLDAS-2.1 variable layout; the model is LightGBM with the ET fusion
features and defaults (fewer trees) fitted on synthetic rows. The real GLDAS sample of 2016-01-01
(``gldas_testdata``) holds soil moisture only, no forcing: the tests check that the ET grid
refuses it with the missing variables named, and run the ET grid on the real GLDAS grid and land
mask (cells with soil moisture) with synthetic forcing.
"""

from __future__ import annotations

import os
from pathlib import Path

import lightgbm
import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ingestion.readers.base import ReaderError
from products.generators import et_fusion, et_grid
from products.methods import chunked

GLDAS_DAY = Path("gldas_testdata/img2ts_test/netcdf/2016/001")


# --- synthetic inputs --------------------------------------------------------------------------


def synthetic_model(n_estimators: int = 40, seed: int = 0) -> lightgbm.LGBMRegressor:
    """LightGBM on SYNTHETIC rows with the ET fusion features (plausible ranges, made-up ET)."""
    rng = np.random.default_rng(seed)
    n = 4000
    lat = rng.uniform(-60, 80, n)
    month = rng.integers(1, 13, n)
    tmax = rng.uniform(-30, 40, n)
    frame = pd.DataFrame(
        {
            "tmin": tmax - rng.uniform(2, 15, n),
            "tmax": tmax,
            "ssrd": rng.uniform(0, 30, n),
            "vpd": rng.uniform(0, 40, n),
            "precip": rng.exponential(2.5, n),
            "lat": lat,
            "time": pd.to_datetime({"year": 2016, "month": month, "day": 1}),
        }
    )
    et_fusion.add_calendar_features(frame)
    et = (
        0.12 * frame["ssrd"] * np.clip(frame["tmax"] + 5, 0, None) / 30
        + 0.05 * frame["vpd"]
        + 0.2 * np.log1p(frame["precip"])
        + rng.normal(0, 0.2, n)
    ).clip(lower=0)
    params = {**et_fusion.DEFAULT_PARAMS, "n_estimators": n_estimators, "random_state": seed}
    return lightgbm.LGBMRegressor(**params).fit(frame[list(et_fusion.FEATURES)], et)


def synthetic_forcing(lat, lon, times, land, seed: int = 1) -> xr.Dataset:
    """SYNTHETIC sub-daily forcing (GLDAS-2.1 names and units) on (time, lat, lon), NaN where not ``land``."""
    rng = np.random.default_rng(seed)
    lat2, lon2 = np.meshgrid(lat, lon, indexing="ij")
    hours = (pd.DatetimeIndex(times).hour.to_numpy()[:, None, None] + lon2[None] / 15.0) % 24  # local solar hour
    sun = np.clip(np.cos((hours - 12) / 24 * 2 * np.pi), 0, None)
    summer = np.cos(np.deg2rad(lat2 + 23))  # January: southern summer
    noise = rng.normal(0, 1, (len(times), *lat2.shape))
    tair = 250 + 45 * summer + 4 * sun + noise
    fields = {
        "Tair_f_inst": (tair, "K"),
        "SWdown_f_tavg": (900 * sun * np.clip(summer, 0.05, None) + 5 * np.abs(noise), "W m-2"),
        "Rainf_f_tavg": (rng.exponential(3e-5, tair.shape) * (noise > 0.3), "kg m-2 s-1"),
        "Qair_f_inst": (0.003 + 0.012 * np.clip(summer, 0, None) ** 2 + 0.0005 * np.abs(noise), "kg kg-1"),
        "Psurf_f_inst": (101000 - 8000 * np.abs(np.sin(np.deg2rad(lon2 * 3)))[None] + 50 * noise, "Pa"),
    }
    data = {}
    for name, (values, units) in fields.items():
        values = np.where(land[None], values, np.nan).astype("float32")
        data[name] = (("time", "lat", "lon"), values, {"units": units})
    return xr.Dataset(
        data,
        coords={"time": np.asarray(times, dtype="datetime64[ns]"), "lat": lat, "lon": lon},
        attrs={"title": "SYNTHETIC forcing in the GLDAS-2.1 layout (test data)"},
    )


def small_land(shape, seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.linspace(0, 3, shape[0]), np.linspace(0, 5, shape[1]), indexing="ij")
    field = np.sin(y * 2 + 0.5) + np.cos(x * 1.7) + 0.3 * rng.normal(size=shape)
    return field > 0.2


@pytest.fixture(scope="module")
def model():
    return synthetic_model()


@pytest.fixture(scope="module")
def small_cube():
    """SYNTHETIC: two days of 3-hourly forcing (16 steps) on a 30 x 50 grid, about half land."""
    lat, lon = np.arange(-44.5, -14.5, 1.0), np.arange(100.5, 150.5, 1.0)
    times = pd.date_range("2016-01-01", periods=16, freq="3h")
    land = small_land((lat.size, lon.size))
    ds = synthetic_forcing(lat, lon, times, land)
    ds["Tair_f_inst"][5, 3, 4] = np.nan  # one land cell misses one step of day 1: no ET that day
    assert land[3, 4]
    return ds, land


def whole_cube_prediction(ds: xr.Dataset, model) -> np.ndarray:
    """Reference: the drivers of the whole small cube at once, one predict call, NaN elsewhere."""
    forcing = {role: ds[name].values for role, name in et_grid.GLDAS_FORCING.items()}
    drivers = et_grid.daily_drivers(**forcing, day_starts=[0, 8])
    valid = np.all([np.isfinite(v) for v in drivers.values()], axis=0)
    days = pd.DatetimeIndex(["2016-01-01", "2016-01-02"])
    frame = pd.DataFrame({name: values[valid] for name, values in drivers.items()})
    frame["lat"] = np.broadcast_to(ds["lat"].values[None, :, None], valid.shape)[valid]
    frame["time"] = np.broadcast_to(days.values[:, None, None], valid.shape)[valid]
    et_fusion.add_calendar_features(frame)
    out = np.full(valid.shape, np.nan, dtype="float32")
    out[valid] = et_fusion.predict(model, frame)
    return out


def read_et(path) -> xr.Dataset:
    with xr.open_dataset(path) as ds:
        return ds.load()


# --- the generic chunker ------------------------------------------------------------------------


def test_windows_cover_every_cell_exactly_once():
    counts = np.zeros((3, 10, 7), dtype=int)
    for w in chunked.windows(counts.shape, (2, 4, 3)):
        counts[w.key] += 1
    assert (counts == 1).all()
    assert len(chunked.windows((3, 10, 7), (2, 4, 3))) == 2 * 3 * 3
    with pytest.raises(ValueError, match="chunk"):
        chunked.windows((3, 10, 7), (0, 4, 3))


def test_it_rejects_features_that_do_not_match_the_window():
    window = chunked.windows((1, 4, 4), (1, 4, 4))[0]
    with pytest.raises(ValueError, match="valid mask"):
        chunked.predict_window(window, lambda w: (np.zeros((0, 2)), np.zeros((4, 4), bool)), np.sum)
    with pytest.raises(ValueError, match="3 rows for 16 valid cells"):
        chunked.predict_window(window, lambda w: (np.zeros((3, 2)), np.ones((1, 4, 4), bool)), np.sum)


def _spec(shape=(2, 12, 20)) -> chunked.GridSpec:
    days = np.arange(shape[0]).astype("datetime64[D]").astype("datetime64[ns]")
    return chunked.GridSpec(
        name="y",
        time=days,
        lat=np.linspace(-10, 10, shape[1]),
        lon=np.linspace(0, 30, shape[2]),
        attrs={"units": "1", "long_name": "test"},
        global_attrs={"Conventions": "CF-1.8"},
        chunksizes=(1, 8, 8),
    )


def _index_features(window: chunked.Window, fail_at: int | None = None):
    """Features = the flat cell index; cells with an even index are 'land'."""
    if window.index == fail_at:
        raise RuntimeError("reading window failed")
    t, y, x = np.meshgrid(
        np.arange(window.time.start, window.time.stop),
        np.arange(window.lat.start, window.lat.stop),
        np.arange(window.lon.start, window.lon.stop),
        indexing="ij",
    )
    flat = (t * 1000 + y * 100 + x).astype("float64")
    valid = flat % 2 == 0
    return flat[valid][:, None], valid


def _identity(matrix):
    return matrix[:, 0]


def test_apply_chunked_writes_every_valid_cell_and_fill_elsewhere(tmp_path):
    stats = chunked.apply_chunked(_index_features, _identity, _spec(), tmp_path / "y.nc", chunk=(1, 5, 7))
    assert stats.n_windows == 2 * 3 * 3 and stats.n_cells == 2 * 12 * 20 and stats.max_window_cells == 35
    t, y, x = np.meshgrid(np.arange(2), np.arange(12), np.arange(20), indexing="ij")
    expected = (t * 1000 + y * 100 + x).astype("float32")
    expected[expected % 2 == 1] = np.nan
    ds = read_et(tmp_path / "y.nc")
    np.testing.assert_array_equal(ds["y"].values, expected)
    assert stats.n_valid == int(np.isfinite(expected).sum())
    with netCDF4.Dataset(tmp_path / "y.nc") as nc:
        var = nc["y"]
        assert var._FillValue == chunked.FILL_VALUE and var.dtype == np.float32
        assert var.chunking() == [1, 8, 8] and var.filters()["zlib"] and var.filters()["complevel"] == 4
        assert nc.Conventions == "CF-1.8" and nc["time"].units == chunked.TIME_UNITS
    assert oct(os.stat(tmp_path / "y.nc").st_mode & 0o777) == "0o644"


@pytest.mark.parametrize("fail_at", [0, 3, 17])
def test_a_failure_midway_leaves_no_output_and_keeps_the_previous_file(tmp_path, fail_at):
    import functools

    target = tmp_path / "y.nc"
    with pytest.raises(RuntimeError, match="reading window failed"):
        chunked.apply_chunked(
            functools.partial(_index_features, fail_at=fail_at), _identity, _spec(), target, chunk=(1, 5, 7)
        )
    assert list(tmp_path.iterdir()) == []  # neither the output nor a temporary file
    target.write_bytes(b"previous version")
    with pytest.raises(RuntimeError):
        chunked.apply_chunked(
            functools.partial(_index_features, fail_at=fail_at), _identity, _spec(), target, chunk=(1, 5, 7)
        )
    assert target.read_bytes() == b"previous version" and list(tmp_path.iterdir()) == [target]


# --- the ET grid on a small synthetic cube --------------------------------------------------------


def test_the_chunked_et_grid_equals_predicting_the_whole_cube_at_once(tmp_path, model, small_cube):
    ds, land = small_cube
    path = et_grid.predict_et_grid(model, ds, tmp_path / "et.nc", chunk=(7, 11), attrs={"data_kind": "synthetic"})
    assert path == tmp_path / "et.nc"
    out = read_et(path)
    expected = whole_cube_prediction(ds, model)
    np.testing.assert_array_equal(out["et"].values, expected)
    assert out["et"].dims == ("time", "lat", "lon") and out["et"].dtype == np.float32
    assert list(out["time"].values) == list(pd.DatetimeIndex(["2016-01-01", "2016-01-02"]).values)
    assert (out["time_bnds"].values[:, 1] - out["time_bnds"].values[:, 0] == np.timedelta64(1, "D")).all()
    assert out["et"].attrs["units"] == "kg m-2 d-1"
    assert out["et"].attrs["standard_name"] == "water_evapotranspiration_flux"
    assert out.attrs["Conventions"] == "CF-1.8, ACDD-1.3" and out.attrs["data_kind"] == "synthetic"
    assert list(out.attrs["forcing_steps_per_day"]) == [8, 8]
    np.testing.assert_array_equal(out["lat"].values, ds["lat"].values)


def test_cells_without_land_or_a_complete_day_of_forcing_are_fill(tmp_path, model, small_cube):
    ds, land = small_cube
    et = read_et(et_grid.predict_et_grid(model, ds, tmp_path / "et.nc", chunk=(8, 8)))["et"].values
    ocean = ~land
    assert np.isnan(et[:, ocean]).all()
    assert np.isnan(et[0, 3, 4]) and np.isfinite(et[1, 3, 4])  # one missing step blanks only that day
    finite = np.isfinite(et)
    finite[0, 3, 4] = True
    assert (finite[:, land]).all()
    with netCDF4.Dataset(tmp_path / "et.nc") as nc:
        nc.set_auto_mask(False)
        raw = nc["et"][:]
        assert (raw[:, ocean] == chunked.FILL_VALUE).all() and nc["et"]._FillValue == chunked.FILL_VALUE


@pytest.mark.parametrize("chunk,days_per_chunk", [((2, 3), 1), ((3, 50), 2), ((30, 50), 2), ((64, 64), 1)])
def test_the_et_grid_does_not_depend_on_the_chunk_size(tmp_path, model, small_cube, chunk, days_per_chunk):
    ds, _ = small_cube
    reference = read_et(et_grid.predict_et_grid(model, ds, tmp_path / "ref.nc", chunk=(7, 11)))["et"].values
    other = read_et(et_grid.predict_et_grid(model, ds, tmp_path / "et.nc", chunk=chunk, days_per_chunk=days_per_chunk))[
        "et"
    ].values
    np.testing.assert_array_equal(other, reference)


def test_one_file_per_step_and_worker_processes_give_the_same_grid(tmp_path, model, small_cube):
    ds, _ = small_cube
    reference = read_et(et_grid.predict_et_grid(model, ds, tmp_path / "ref.nc"))["et"].values
    paths = []
    for i in range(ds.sizes["time"]):  # one file per 3-hourly step, as GLDAS ships them
        paths.append(tmp_path / f"step{i:02d}.nc")
        ds.isel(time=[i]).to_netcdf(paths[-1])
    per_file = [xr.open_dataset(p) for p in paths]
    try:
        out = et_grid.predict_et_grid(model, per_file, tmp_path / "files.nc", chunk=(9, 13), workers=2)
    finally:
        for f in per_file:
            f.close()
    np.testing.assert_array_equal(read_et(out)["et"].values, reference)


def test_it_refuses_forcing_with_other_units_and_leaves_nothing(tmp_path, model, small_cube):
    ds, _ = small_cube
    bad = ds.copy()
    bad["Tair_f_inst"] = bad["Tair_f_inst"].assign_attrs(units="degC")
    with pytest.raises(ReaderError, match="expected units 'K'") as info:
        et_grid.predict_et_grid(model, bad, tmp_path / "et.nc")
    assert info.value.field == "Tair_f_inst.units"
    assert list(tmp_path.iterdir()) == []


def test_daily_drivers_follow_the_documented_conversions():
    tair = np.array([[270.0], [280.0], [290.0]])  # K, 3 steps, 1 cell
    swdown, rainf = np.array([[100.0], [200.0], [300.0]]), np.array([[1e-5], [0.0], [2e-5]])
    qair, psurf = np.full((3, 1), 0.005), np.full((3, 1), 100000.0)
    out = et_grid.daily_drivers(tair, swdown, rainf, qair, psurf, day_starts=[0])
    assert out["tmin"][0, 0] == pytest.approx(270 - 273.15) and out["tmax"][0, 0] == pytest.approx(290 - 273.15)
    assert out["ssrd"][0, 0] == pytest.approx(200 * 0.0864)
    assert out["precip"][0, 0] == pytest.approx(1e-5 * 86400)
    e_a = 0.005 * 100000 / (0.622 + 0.378 * 0.005) / 1000  # kPa
    es = et_fusion.saturation_vapour_pressure(tair[:, 0] - 273.15)
    assert out["vpd"][0, 0] == pytest.approx(10 * np.mean(np.maximum(es - e_a, 0)))


# --- the real GLDAS day ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gldas_files() -> list[Path]:
    root = Path(os.environ.get("SHARED_DATA_DIR", "/work/shared/data")) / GLDAS_DAY
    files = sorted(root.glob("GLDAS_NOAH025_3H.A20160101.*.nc4"))
    assert len(files) == 7, f"expected the 7 real GLDAS files of 2016-01-01 in {root}"
    return files


def test_the_real_gldas_sample_has_no_forcing_and_is_refused_by_name(tmp_path, model, gldas_files):
    with pytest.raises(ReaderError, match="no forcing variable") as info:
        et_grid.predict_et_grid(model, gldas_files, tmp_path / "et.nc")
    assert info.value.field == "Tair_f_inst"
    assert "SoilMoi0_10cm_inst" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_global_map_on_the_real_gldas_grid_and_land_mask(tmp_path, model, gldas_files):
    """Real GLDAS grid and land (cells with soil moisture on 2016-01-01); SYNTHETIC forcing in GLDAS files."""
    with xr.open_dataset(gldas_files[0]) as real:
        lat, lon = real["lat"].values.astype("float64"), real["lon"].values.astype("float64")
        land = np.isfinite(real["SoilMoi0_10cm_inst"].values[0])
    assert lat.size == 600 and lon.size == 1440 and 200_000 < land.sum() < 300_000
    times = pd.date_range("2016-01-01", periods=8, freq="3h")
    forcing = synthetic_forcing(lat, lon, times, land)
    paths = []
    for i, t in enumerate(times):  # written as GLDAS-2.1 files, read back through the GLDAS reader
        paths.append(tmp_path / f"GLDAS_NOAH025_3H.A{t:%Y%m%d.%H%M}.021.nc4")
        step = forcing.isel(time=[i])
        step["lat"].attrs, step["lon"].attrs = {"units": "degrees_north"}, {"units": "degrees_east"}
        step.to_netcdf(paths[-1], encoding={v: {"zlib": True, "_FillValue": -9999.0} for v in step.data_vars})
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    path = et_grid.predict_et_grid(model, paths, out_dir / "et_20160101.nc", attrs={"data_kind": "synthetic forcing"})
    et = read_et(path)["et"]
    assert et.shape == (1, 600, 1440)
    values = et.values[0]
    assert np.isfinite(values[land]).all() and np.isnan(values[~land]).all()
    assert 0 <= np.nanmin(values) and np.nanmax(values) < 15  # mm d-1
    south, north = values[lat < -10], values[lat > 50]
    assert np.nanmean(south) > np.nanmean(north)  # January: southern summer, northern winter
    assert [p.name for p in out_dir.iterdir()] == ["et_20160101.nc"]
