"""Render times of the map previews against reading the same window raw from the map-chunked store.

Not a test (not collected): run ``PYTHONPATH=. .venv/bin/python tests/maps/bench_render.py``. A SYNTHETIC
global 0.25-degree grid of 30 days (random values) is written to NetCDF and its cube stores built; for each
day, the window under the pixels is read raw, then read and rendered (colourised, PNG-encoded, written:
a cold request), then the written PNG read back (a warm request, as portal.maps.services.render_png's file
cache). Prints the median and 95th percentile of each. The same code path as the service minus Django.
"""

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from portal.maps import render
from portal.subsets import store

tmp = Path(tempfile.mkdtemp())
lat = np.arange(-89.875, 90, 0.25)
lon = np.arange(-179.875, 180, 0.25)
days = 30
rng = np.random.default_rng(0)
vals = (rng.random((days, lat.size, lon.size)) * 0.5).astype("float32")
ds = xr.Dataset(
    {"sm": (("time", "lat", "lon"), vals, {"units": "m3 m-3"})},
    coords={
        "time": pd.date_range("2015-01-01", periods=days),
        "lat": ("lat", lat, {"units": "degrees_north"}),
        "lon": ("lon", lon, {"units": "degrees_east"}),
    },
)
nc = tmp / "grid.nc"
ds.to_netcdf(nc)
paths = store.build_stores(nc)
style = render.choose_style("sm", {"units": "m3 m-3"})


def window(t, bbox, w, h, do_render):
    s = store.open_store(paths["map"])
    rows, cols = render.resample_plan(lat, lon, bbox, w, h)
    ur, uc = np.unique(rows[rows >= 0]), np.unique(cols[cols >= 0])
    block = np.asarray(s["sm"].isel(time=t, lat=slice(ur[0], ur[-1] + 1), lon=slice(uc[0], uc[-1] + 1)).values, float)
    if not do_render:
        return block
    field = render.gather(block, rows, cols, ur, uc)
    return render.encode_png(render.colourise(field, style, 0, 0.5))


def q(x):
    return f"median {statistics.median(x) * 1000:.1f} ms, p95 {np.percentile(x, 95) * 1000:.1f} ms"


cases = [((-180, -90, 180, 90), 720, 360), ((70, 20, 110, 50), 256, 256)]
for bbox, w, h in cases:
    raw, cold, warm = [], [], []
    for t in range(days):
        a = time.perf_counter()
        window(t, bbox, w, h, False)
        raw.append(time.perf_counter() - a)
        a = time.perf_counter()
        png = window(t, bbox, w, h, True)
        f = tmp / f"{t}.png"
        f.write_bytes(png)
        cold.append(time.perf_counter() - a)
        a = time.perf_counter()
        f.read_bytes()
        warm.append(time.perf_counter() - a)
    print(bbox, w, h, "| raw read:", q(raw), "| render cold:", q(cold), "| warm (cached file):", q(warm))
