"""Benchmark: map preview render times against reading the same window raw from the map-chunked store.

SYNTHETIC data: a global 0.25-degree grid of ``BENCH_MAPS_DAYS`` days (default 30) of random values,
written to NetCDF with its cube stores built (:func:`portal.subsets.store.build_stores`). For each day
and each request (a 720 x 360 global image; a 256 x 256 regional one, as a panning client asks):

* raw: the window under the pixels read from the map store (the baseline);
* cold: the same read, resampled to the pixels, colourised, PNG-encoded and written to a file (what
  :func:`portal.maps.services.render_png` does on a first request, minus Django);
* warm: the written PNG read back (the file cache answering a repeated request).

Printed: median and 95th percentile of each, and cold/raw and warm/raw as ratios of medians, and the peak
resident memory of this process so far (:mod:`tests.bench.memory`; the grid is built in it too). No timed
assertions: only that the image has the requested size and that the cold path read the raw window.
Run with ``make bench`` or ``.venv/bin/pytest tests/bench/test_bench_maps.py -s -q``.
"""

from __future__ import annotations

import io
import os
import statistics
import time

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from PIL import Image

from portal.maps import render
from portal.subsets import store
from tests.bench import memory

DAYS = int(os.environ.get("BENCH_MAPS_DAYS", "30"))
CASES = [((-180, -90, 180, 90), 720, 360), ((70, 20, 110, 50), 256, 256)]


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("maps")
    lat, lon = np.arange(-89.875, 90, 0.25), np.arange(-179.875, 180, 0.25)
    values = (np.random.default_rng(0).random((DAYS, lat.size, lon.size)) * 0.5).astype("float32")
    ds = xr.Dataset(
        {"sm": (("time", "lat", "lon"), values, {"units": "m3 m-3"})},
        coords={"time": pd.date_range("2015-01-01", periods=DAYS), "lat": lat, "lon": lon},
    )
    ds.to_netcdf(tmp / "grid.nc")
    return tmp, lat, lon, store.build_stores(tmp / "grid.nc")["map"]


def _window(cube, lat, lon, t, bbox, w, h):
    rows, cols = render.resample_plan(lat, lon, bbox, w, h)
    used_rows, used_cols = np.unique(rows[rows >= 0]), np.unique(cols[cols >= 0])
    block = np.asarray(
        cube["sm"]
        .isel(time=t, lat=slice(used_rows[0], used_rows[-1] + 1), lon=slice(used_cols[0], used_cols[-1] + 1))
        .values,
        dtype=float,
    )
    return block, (rows, cols, used_rows, used_cols)


def _stats(samples):
    return statistics.median(samples), float(np.percentile(samples, 95))


def test_render_times_against_the_raw_window_read(grid):
    tmp, lat, lon, map_store = grid
    cube = store.open_store(map_store)
    style = render.choose_style("sm", {"units": "m3 m-3"})
    for bbox, w, h in CASES:
        raw, cold, warm = [], [], []
        for t in range(DAYS):
            start = time.perf_counter()
            baseline, _ = _window(cube, lat, lon, t, bbox, w, h)
            raw.append(time.perf_counter() - start)
            start = time.perf_counter()
            block, plan = _window(cube, lat, lon, t, bbox, w, h)
            png = render.encode_png(render.colourise(render.gather(block, *plan), style, 0.0, 0.5))
            (tmp / f"{t}.png").write_bytes(png)
            cold.append(time.perf_counter() - start)
            start = time.perf_counter()
            cached = (tmp / f"{t}.png").read_bytes()
            warm.append(time.perf_counter() - start)
            assert np.array_equal(block, baseline, equal_nan=True)
        assert Image.open(io.BytesIO(cached)).size == (w, h)
        (rm, rp), (cm, cp), (wm, wp) = _stats(raw), _stats(cold), _stats(warm)
        print(
            f"\nmap {w}x{h} {bbox}, {DAYS} days: raw read median {rm * 1e3:.1f} ms p95 {rp * 1e3:.1f}; "
            f"cold render median {cm * 1e3:.1f} ms p95 {cp * 1e3:.1f} (x{cm / rm:.2f} raw); "
            f"warm median {wm * 1e3:.2f} ms p95 {wp * 1e3:.2f} (x{wm / rm:.3f} raw); {memory.summary()} "
            "(the renders run in this process, as in a web worker)"
        )
