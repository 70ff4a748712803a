"""Benchmark: gridded ET generation (features from the cube + predict + NetCDF) against LightGBM predict alone.

SYNTHETIC data throughout: a made-up global day of 3-hourly forcing (8 steps of air temperature,
shortwave, precipitation, specific humidity, surface pressure in the GLDAS-2.1 layout), NaN over a
made-up ocean, stored like the portal's cube store (NetCDF-4, chunks of 1 x 256 x 256, zlib
level 4); a LightGBM model with the ET fusion features and :data:`et_fusion.DEFAULT_PARAMS`
(300 trees, 31 leaves) fitted on synthetic rows, so predict costs what the real model costs. The
values mean nothing; the point is the cost of the path around ``predict``.

Grids: global 0.25 degree (1440 x 600 cells from 60 S, about 0.30 million land cells) and
0.1 degree (3600 x 1500, about 1.9 million land cells). ``BENCH_GRID_RESOLUTIONS`` (degrees,
comma-separated, default ``0.25,0.1``) picks them, e.g. ``0.25,0.5`` for a quick run;
``BENCH_GRID_CHUNK`` (``lat,lon``, default ``256,256``) the window; ``BENCH_GRID_REPEAT`` (default 2)
the repetitions (best time kept).

Measured in the same run on the same cells: the baseline is one
``model.predict(DataFrame)`` call on the whole feature matrix of the land cells (built beforehand,
untimed); the pipeline is :func:`products.generators.et_grid.predict_et_grid` from the cube file
to the finished CF NetCDF (reading, daily drivers, per-window predict, compressed writing, atomic
move). The same with the model compiled to machine code (:mod:`products.methods.compiled_trees`, lleaves;
compiling timed apart, once, then loaded from its cache as a run would): its raw predict and its
pipeline. Prints cells/s, the overhead ratio (goal of issue 4: at most 1.30) and the peak memory
(tracemalloc: NumPy/Python allocations, which hold the windows; HDF5 and LightGBM internals are
not traced) beside the size of the whole feature matrix, and the peak resident set of this process
and of its finished children (``ru_maxrss``). Asserts only that every path predicted the same cells
with the same values (compiled: within float32 rounding). Run with ``make bench``.
"""

from __future__ import annotations

import os
import resource
import time
import tracemalloc

import lightgbm
import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import ndimage

from products.generators import et_fusion, et_grid
from products.methods import chunked, compiled_trees

RESOLUTIONS = [float(r) for r in os.environ.get("BENCH_GRID_RESOLUTIONS", "0.25,0.1").split(",")]
CHUNK = tuple(int(n) for n in os.environ.get("BENCH_GRID_CHUNK", "256,256").split(","))
REPEAT = int(os.environ.get("BENCH_GRID_REPEAT", 2))
LAND_FRACTION = 0.30e6 / (1440 * 600)  # ~0.3 million land cells at 0.25 degree, ~1.9 million at 0.1
DAY = pd.Timestamp("2016-01-01")


def synthetic_features(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """SYNTHETIC rows of the ET fusion drivers (plausible ranges, made up) with its calendar features."""
    tmax = rng.uniform(-30, 40, n)
    frame = pd.DataFrame(
        {
            "tmin": tmax - rng.uniform(2, 15, n),
            "tmax": tmax,
            "ssrd": rng.uniform(0, 30, n),
            "vpd": rng.uniform(0, 40, n),
            "precip": rng.exponential(2.5, n),
            "lat": rng.uniform(-60, 80, n),
            "time": pd.to_datetime({"year": 2016, "month": rng.integers(1, 13, n), "day": 1}),
        }
    )
    et_fusion.add_calendar_features(frame)
    return frame


def synthetic_model() -> lightgbm.LGBMRegressor:
    """SYNTHETIC training rows with the ET fusion features; the ET fusion default parameters."""
    rng = np.random.default_rng(0)
    n = 20_000
    frame = synthetic_features(n, rng)
    et = (
        0.12 * frame["ssrd"] * np.clip(frame["tmax"] + 5, 0, None) / 30
        + 0.05 * frame["vpd"]
        + 0.2 * np.log1p(frame["precip"])
        + rng.normal(0, 0.3, n)
    ).clip(lower=0)
    return lightgbm.LGBMRegressor(**{**et_fusion.DEFAULT_PARAMS, "random_state": 0}).fit(
        frame[list(et_fusion.FEATURES)], et
    )


def synthetic_cube(path, resolution: float) -> int:
    """Write a SYNTHETIC global day of 3-hourly forcing (cube-store layout); return the land cells."""
    lat = np.arange(-60 + resolution / 2, 90, resolution)
    lon = np.arange(-180 + resolution / 2, 180, resolution)
    rng = np.random.default_rng(1)
    coarse = rng.normal(size=(30, 72))  # smooth made-up continents
    field = ndimage.zoom(coarse, (lat.size / 30, lon.size / 72), order=1)[: lat.size, : lon.size]
    land = field > np.quantile(field, 1 - LAND_FRACTION)
    lat2 = lat[:, None]
    summer = np.cos(np.deg2rad(lat2 + 23))
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.title = "SYNTHETIC forcing for the generation benchmark (GLDAS-2.1 variable layout)"
        for name, values, units in (
            ("time", None, "hours since 2016-01-01"),
            ("lat", lat, "degrees_north"),
            ("lon", lon, "degrees_east"),
        ):
            nc.createDimension(name, 8 if name == "time" else values.size)
            var = nc.createVariable(name, "f8", (name,))
            var.units = units
            var[:] = np.arange(0, 24, 3) if name == "time" else values
        chunks = (1, min(256, lat.size), min(256, lon.size))
        out = {
            name: nc.createVariable(
                name,
                "f4",
                ("time", "lat", "lon"),
                zlib=True,
                complevel=4,
                chunksizes=chunks,
                fill_value=np.float32(-9999.0),
            )
            for name in et_grid.GLDAS_FORCING.values()
        }
        for role, name in et_grid.GLDAS_FORCING.items():
            out[name].units = et_grid.FORCING_UNITS[role]
        for step in range(8):
            hour = (step * 3 + lon[None, :] / 15.0) % 24
            sun = np.clip(np.cos((hour - 12) / 24 * 2 * np.pi), 0, None)
            wobble = np.sin(np.deg2rad(lon[None, :] * 7 + lat2 * 5 + step * 10))
            values = {
                "Tair_f_inst": 250 + 45 * summer + 4 * sun + 2 * wobble,
                "SWdown_f_tavg": 900 * sun * np.clip(summer, 0.05, None) + 10 * (1 + wobble),
                "Rainf_f_tavg": np.clip(wobble - 0.3, 0, None) * 5e-5,
                "Qair_f_inst": 0.003 + 0.012 * np.clip(summer, 0, None) ** 2 + 0.001 * (1 + wobble),
                "Psurf_f_inst": 101000 - 3000 * (1 + wobble),
            }
            for name, v in values.items():
                out[name][step] = np.where(land, v, -9999.0).astype("float32")
    return int(land.sum())


def feature_matrix(ds: xr.Dataset) -> pd.DataFrame:
    """The land cells' feature matrix, built window by window with the pipeline's own code (untimed)."""
    cube = et_grid.ForcingCube([ds])
    days, starts = cube.days()
    calendar = et_fusion.add_calendar_features(pd.DataFrame({"time": days}))
    parts = []
    for window in chunked.windows((len(days), cube.lat.size, cube.lon.size), (1, *CHUNK)):
        matrix, _ = et_grid.window_features(
            window,
            cube=cube,
            starts=starts,
            month_sin=calendar["month_sin"].to_numpy(),
            month_cos=calendar["month_cos"].to_numpy(),
        )
        parts.append(matrix)
    return pd.DataFrame(np.concatenate(parts), columns=list(et_fusion.FEATURES))


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_gridded_generation_rate_against_raw_predict(tmp_path, resolution):
    model = synthetic_model()
    cube_path = tmp_path / "forcing.nc"
    n_land = synthetic_cube(cube_path, resolution)
    with xr.open_dataset(cube_path) as ds:
        start = time.perf_counter()
        x = feature_matrix(ds)
        features_alone = time.perf_counter() - start
        assert len(x) == n_land
        raw, pipeline = [], []
        for _ in range(REPEAT):
            start = time.perf_counter()
            predicted = model.predict(x)
            raw.append(time.perf_counter() - start)
            start = time.perf_counter()
            out = et_grid.predict_et_grid(model, ds, tmp_path / "et.nc", chunk=CHUNK)
            pipeline.append(time.perf_counter() - start)
        start = time.perf_counter()
        trees = compiled_trees.compile_lightgbm(model, cache_dir=tmp_path / "trees")
        compile_seconds = time.perf_counter() - start
        compiled_raw, compiled_pipeline = [], []
        matrix = x.to_numpy()
        for _ in range(REPEAT):
            start = time.perf_counter()
            predicted_compiled = trees.predict(matrix)
            compiled_raw.append(time.perf_counter() - start)
            start = time.perf_counter()  # the cached forest is loaded (milliseconds) and checked again
            out_compiled = et_grid.predict_et_grid(
                model, ds, tmp_path / "et_compiled.nc", chunk=CHUNK, compiled_trees=True, trees_cache=tmp_path / "trees"
            )
            compiled_pipeline.append(time.perf_counter() - start)
        tracemalloc.start()
        et_grid.predict_et_grid(model, ds, tmp_path / "et_mem.nc", chunk=CHUNK)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        n_cells = ds.sizes["lat"] * ds.sizes["lon"]
    with xr.open_dataset(out) as result, xr.open_dataset(out_compiled) as result_compiled:
        values = result["et"].values[0]
        values_compiled = result_compiled["et"].values[0]
        engine = result_compiled.attrs.get("prediction_engine", "")
    baseline, measured = min(raw), min(pipeline)
    compiled_alone, compiled_measured = min(compiled_raw), min(compiled_pipeline)
    print(
        f"\n[bench generate] SYNTHETIC global {resolution:g} degree day, {n_cells:,} cells, {n_land:,} land cells, "
        f"window {CHUNK[0]}x{CHUNK[1]}, best of {REPEAT}, LightGBM {lightgbm.__version__} n_jobs="
        f"{et_fusion.DEFAULT_PARAMS['n_jobs']}, {os.cpu_count()} CPUs:\n"
        f"  raw LightGBM predict on the feature matrix {baseline:.2f} s ({n_land / baseline:,.0f} cells/s, "
        f"baseline)\n"
        f"  pipeline (cube -> drivers -> predict -> CF NetCDF) {measured:.2f} s ({n_land / measured:,.0f} cells/s)\n"
        f"  ratio {measured / baseline:.2f} of the raw predict time (overhead {100 * (measured / baseline - 1):+.0f} %; "
        f"goal <= +30 %)\n"
        f"  compiled trees ({compiled_trees.versions()}; compiling {compile_seconds:.1f} s once per model and CPU, "
        f"cached): predict alone {compiled_alone:.2f} s ({compiled_alone / baseline:.2f} of LightGBM's), "
        f"largest |difference| from LightGBM {np.nanmax(np.abs(predicted_compiled - predicted)):.2g}\n"
        f"  pipeline with compiled trees {compiled_measured:.2f} s: {compiled_measured / baseline:.2f} of LightGBM's "
        f"raw predict, {compiled_measured / compiled_alone:.2f} of the compiled raw predict\n"
        f"  of which reading + daily drivers alone (untimed above, one pass) {features_alone:.2f} s "
        f"({features_alone / baseline:.2f} of the raw predict time)\n"
        f"  peak traced memory of the pipeline {peak / 2**20:,.0f} MiB; whole feature matrix alone "
        f"{x.to_numpy().nbytes / 2**20:,.0f} MiB; whole forcing day in float64 "
        f"{8 * 5 * n_cells * 8 / 2**20:,.0f} MiB\n"
        f"  peak resident memory (ru_maxrss): this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:,.0f}"
        f" MiB (the generation worker: everything above ran in it), its finished children "
        f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**10:,.0f} MiB"
    )
    assert engine.startswith("lleaves")
    np.testing.assert_allclose(values_compiled, values, rtol=2e-7, equal_nan=True)
    finite = np.isfinite(values)
    assert finite.sum() == n_land
    np.testing.assert_allclose(np.sort(values[finite]), np.sort(predicted.astype("float32")), rtol=1e-6)
