"""Benchmark: the windowed 1 km soil-moisture generator against holding the whole grid in memory (baseline).

SYNTHETIC data throughout: the analytic predictors of :class:`products.generators.twins.sm_1km.Twin` (LST,
NDVI, albedo, elevation, computable for any window) on a set of square 1 km tiles side by side
(``BENCH_SM1KM_TILE`` cells a side, default 1200 like a MODIS tile), a made-up 0.25 degree coarse
field, and a LightGBM residual model with :data:`sm_1km.DEFAULT_PARAMS` (200 trees) fitted on
synthetic rows, so predict costs what the real model costs. The values mean nothing.

Measured in the same run:

* baseline: one tile done the whole-grid way: the feature cube of the tile at once, one
  ``predict`` over every cell, one packed array (what a global day would need 43200 x 21600 cells of);
* pipeline: :func:`sm_1km.write_product` (windows of ``BENCH_SM1KM_CHUNK`` cells, default 240,
  reading, features, predict, packing, writing NetCDF-4 and GeoTIFF, atomic move) on 1 tile and on
  each count of ``BENCH_SM1KM_TILES`` (comma-separated, default ``1,4``).

Printed: cells/s and its ratio to the baseline, peak traced memory (tracemalloc: NumPy/Python
allocations; LightGBM, HDF5 and GDAL internals are not traced) as a ratio to the baseline's and to the
1-tile pipeline's (flat when memory does not grow with the grid), the baseline's bytes per cell
scaled to a global day, and the process's max RSS (``resource.getrusage``, monotonic over the
process, so only indicative). ``BENCH_SM1KM_DAYS`` (default 1) days per run. No timed
assertions: only that pipeline and baseline agree on the same tile. Run with ``make bench``, e.g.
``BENCH_SM1KM_TILE=240 BENCH_SM1KM_TILES=1,4 .venv/bin/pytest tests/bench/test_bench_sm1km.py -s -q``.
"""

from __future__ import annotations

import functools
import os
import resource
import time
import tracemalloc

import lightgbm
import numpy as np
import pandas as pd
import xarray as xr

from products.generators import sm_1km
from products.generators.twins import sm_1km as sm_1km_twin

TILE = int(os.environ.get("BENCH_SM1KM_TILE", 1200))
TILES = [int(n) for n in os.environ.get("BENCH_SM1KM_TILES", "1,4").split(",")]
CHUNK = int(os.environ.get("BENCH_SM1KM_CHUNK", 240))
DAYS = int(os.environ.get("BENCH_SM1KM_DAYS", 1))
GLOBAL_CELLS = 43200 * 21600


def synthetic_model() -> lightgbm.LGBMRegressor:
    """SYNTHETIC rows with the features of :data:`sm_1km.FEATURES`; the default parameters (200 trees)."""
    rng = np.random.default_rng(0)
    n = 20_000
    frame = pd.DataFrame(
        {
            "coarse": rng.uniform(0.05, 0.45, n),
            "lst": rng.normal(300, 5, n),
            "ndvi": rng.uniform(0, 0.9, n),
            "albedo": rng.uniform(0.1, 0.3, n),
            "elevation": rng.uniform(0, 2000, n),
        }
    )
    for p in sm_1km.PREDICTORS:
        frame[f"{p}_anom"] = frame[p] - frame[p].mean() + rng.normal(0, frame[p].std() * 0.3, n)
    residual = 0.03 * frame["ndvi_anom"] / 0.3 - 0.002 * frame["lst_anom"] + rng.normal(0, 0.01, n)
    return lightgbm.LGBMRegressor(**{**sm_1km.DEFAULT_PARAMS, "random_state": 0}).fit(
        frame[list(sm_1km.FEATURES)], residual
    )


def setup(n_tiles: int):
    """A strip of ``n_tiles`` tiles (predictors), its coarse grid and a made-up coarse field."""
    f = sm_1km.FINE_PER_COARSE
    n_coarse = -(-TILE // f)
    twin = sm_1km_twin.Twin(n_coarse, n_coarse * n_tiles, DAYS, 0, seed=5, with_coarse=False)
    rng = np.random.default_rng(2)
    coarse = np.clip(0.25 + 0.08 * rng.normal(size=(DAYS, *twin.coarse_grid.shape)), 0.02, 0.5)
    return twin, coarse


def whole_grid(twin, coarse, model) -> np.ndarray:
    """Baseline: the whole grid's feature cube, one predict, one packed array."""
    grid = twin.grid
    interp = np.stack(
        [sm_1km.bilinear(coarse[t], twin.coarse_grid, grid.lat[:, None], grid.lon[None, :]) for t in range(DAYS)]
    )
    cube = sm_1km.features_from(twin.read(slice(0, DAYS), slice(0, grid.n_lat), slice(0, grid.n_lon)), interp)
    valid = np.isfinite(cube).all(axis=-1)
    values = np.full(valid.shape, np.nan)
    values[valid] = sm_1km.predict_matrix(cube[valid], model=model)
    return sm_1km.encode(values)


def measure(fn):
    tracemalloc.start()
    tracemalloc.reset_peak()
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, seconds, peak


def test_windowed_1km_generation_memory_and_rate_against_the_whole_grid(tmp_path):
    model = synthetic_model()
    twin, coarse = setup(1)
    sm_1km.write_product(
        functools.partial(sm_1km.field_features, values=np.full((1, 32, 32), 0.2)),  # warm-up:
        sm_1km.first_column,
        grid=sm_1km.Grid(1.0, 1.0, 32, 32, sm_1km.FINE_RES),  # imports, GDAL
        times=twin.times[:1],
        nc_path=tmp_path / "w.nc",
        tif_path=tmp_path / "w.tif",
    )
    cells = DAYS * twin.grid.n_lat * twin.grid.n_lon
    packed, base_s, base_peak = measure(lambda: whole_grid(twin, coarse, model))
    base_rate = cells / base_s
    print(f"\nSYNTHETIC 1 km tiles of {twin.grid.n_lat} x {twin.grid.n_lon} cells, {DAYS} day(s), windows {CHUNK}^2")
    print(
        f"baseline (whole tile in memory): {base_rate:,.0f} cells/s, peak traced {base_peak / 2**20:,.1f} MiB "
        f"({base_peak / cells:,.0f} B/cell -> a global day would need {base_peak / cells * GLOBAL_CELLS / 2**30:,.0f} GiB)"
    )
    first_peak = None
    for n_tiles in TILES:
        twin, coarse = setup(n_tiles)
        cells = DAYS * twin.grid.n_lat * twin.grid.n_lon
        features = functools.partial(sm_1km.window_features, source=twin, coarse=coarse, coarse_grid=twin.coarse_grid)
        predict = functools.partial(sm_1km.predict_matrix, model=model)
        stats, seconds, peak = measure(
            functools.partial(
                sm_1km.write_product,
                features,
                predict,
                grid=twin.grid,
                times=twin.times,
                nc_path=tmp_path / f"t{n_tiles}.nc",
                tif_path=tmp_path / f"t{n_tiles}.tif",
                chunk=(CHUNK, CHUNK),
            )
        )
        first_peak = first_peak or peak
        rate = cells / seconds
        size = sum(p.stat().st_size for p in stats.paths)
        print(
            f"pipeline {n_tiles} tile(s) ({cells:,} cells, {stats.n_windows} windows): {rate:,.0f} cells/s "
            f"(x{rate / base_rate:.2f} of baseline), peak traced {peak / 2**20:,.1f} MiB (x{peak / base_peak:.2f} of "
            f"baseline, x{peak / first_peak:.2f} of 1 tile), files {size / 2**20:,.1f} MiB, "
            f"max RSS (ru_maxrss) this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB, "
            f"finished children {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:,.0f} MiB"
        )
        assert stats.n_valid == cells
        if n_tiles == 1:
            with xr.open_dataset(stats.paths[0], mask_and_scale=False) as ds:
                np.testing.assert_allclose(ds["sm"].values, packed, atol=1)  # same cells, same values (packing)
