"""The cube stores (portal/subsets/store.py): layouts, values, packing, store choice, atomic builds.

SYNTHETIC cubes only (small, values known); the layout measurement is in tests/bench/test_bench_subsets.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

from portal.subsets import core, store
from products.methods.files import sha256


def _cube(path, nt=40, ny=30, nx=60, packed=True):
    lat = np.linspace(-29, 29, ny)
    lon = np.linspace(-179, 179, nx)
    time = pd.date_range("2001-01-01", periods=nt, freq="D")
    rng = np.random.default_rng(1)
    sm = (
        0.2
        + 0.1 * np.sin(np.arange(nt))[:, None, None]
        + 0.001 * lat[None, :, None]
        + rng.normal(0, 0.01, (nt, ny, nx))
    ).astype("float32")
    sm[:, :3, :5] = np.nan  # "ocean"
    ds = xr.Dataset(
        {
            "sm": (("time", "lat", "lon"), sm, {"units": "m3 m-3", "long_name": "soil moisture"}),
            "site_count": (("lat",), np.arange(ny)),
        },  # not a (time, lat, lon) grid: not stored
        coords={"time": time, "lat": lat, "lon": lon},
    )
    encoding = (
        {"sm": {"dtype": "int16", "scale_factor": 0.0001, "add_offset": 0.0, "_FillValue": -9999}} if packed else {}
    )
    ds.to_netcdf(path, encoding=encoding)
    return path


def test_both_stores_hold_the_published_values_with_the_source_packing(tmp_path):
    (tmp_path / "v1").mkdir()
    nc = _cube(tmp_path / "v1" / "grid.nc")
    paths = store.build_stores(nc, block_values=5000)  # small blocks: many region writes
    assert paths == store.store_paths(nc) and paths["map"] == tmp_path / "v1" / "cube" / "grid" / "map.zarr"
    with xr.open_dataset(nc) as source:
        for layout, path in paths.items():
            with store.open_store(path) as cube:
                assert list(cube.data_vars) == ["sm"]
                np.testing.assert_array_equal(cube["sm"].values, source["sm"].values)  # NaN where NaN
                np.testing.assert_array_equal(cube["time"].values, source["time"].values)
                assert cube["sm"].attrs["units"] == "m3 m-3"
                assert cube.attrs["source_file"] == "grid.nc" and cube.attrs["source_sha256"] == sha256(nc)
            raw = zarr.open_group(str(path), mode="r", zarr_format=2)["sm"]
            assert raw.dtype == np.int16 and raw.attrs["scale_factor"] == 0.0001
            expected = store.layout_chunks({"time": 40, "lat": 30, "lon": 60})[layout]
            assert raw.chunks == (expected["time"], expected["lat"], expected["lon"])


def test_layouts_put_a_map_or_a_full_series_in_one_chunk():
    chunks = store.layout_chunks({"time": 1096, "lat": 720, "lon": 1440})
    assert chunks["map"] == {"time": 1, "lat": 720, "lon": 1440}
    assert chunks["series"]["time"] == 1096 and chunks["series"]["lat"] * chunks["series"]["lon"] * 1096 <= 2**20 * 1.1
    big = store.layout_chunks({"time": 20000, "lat": 21600, "lon": 43200})  # 1 km, 55 years
    assert big["map"] == {"time": 1, "lat": 1024, "lon": 1024} and big["series"]["time"] == store.SERIES_MAX_TIME


def test_the_store_with_fewer_values_to_decompress_is_chosen():
    sizes = {"time": 1096, "lat": 720, "lon": 1440}
    point = {"time": np.arange(1096), "lat": np.array([100]), "lon": np.array([700])}
    one_day = {"time": np.array([5]), "lat": np.arange(720), "lon": np.arange(1440)}
    box_year = {"time": np.arange(365), "lat": np.arange(300, 340), "lon": np.arange(600, 640)}
    assert store.choose_layout(point, sizes) == "series"
    assert store.choose_layout(one_day, sizes) == "map"
    assert store.choose_layout(box_year, sizes) == "series"
    assert (
        store.chunks_touched(box_year, {"time": 1096, "lat": 31, "lon": 31}) == 1 * 2 * 2
    )  # 300//31 = 9 .. 339//31 = 10
    # a box across the antimeridian touches both edges' chunks
    wrap = {"time": np.arange(3), "lat": np.arange(10), "lon": np.r_[np.arange(1430, 1440), np.arange(10)]}
    assert store.chunks_touched(wrap, {"time": 1, "lat": 720, "lon": 720}) == 3 * 1 * 2


def test_selection_indices_are_what_select_reads(tmp_path):
    nc = _cube(tmp_path / "grid.nc", packed=False)
    with xr.open_dataset(nc) as ds:
        request = core.SubsetRequest(bbox=(170, -5, -170, 5), time=("2001-01-03", "2001-01-10"), space_stride=2)
        idx = core.selection_indices(ds, request)
        out = core.select(ds, request)
        np.testing.assert_array_equal(ds["time"].values[idx["time"]], out["time"].values)
        np.testing.assert_array_equal(ds["lat"].values[idx["lat"]], out["lat"].values)
        np.testing.assert_array_equal(ds["lon"].values[idx["lon"]] % 360, out["lon"].values % 360)


def test_a_failed_build_leaves_no_store_and_a_file_without_grid_is_refused(tmp_path, monkeypatch):
    nc = _cube(tmp_path / "grid.nc")

    def broken(ds, path, chunks, along, block):
        (path / "partial").mkdir(parents=True)
        raise OSError("disk full")

    monkeypatch.setattr(store, "_write_store", broken)
    with pytest.raises(OSError, match="disk full"):
        store.build_stores(nc)
    folder = store.store_paths(nc)["map"].parent
    assert not any(p.name.endswith(".zarr") for p in folder.iterdir())
    assert not any(folder.iterdir())  # no temporary folder left either
    flat = tmp_path / "flat.nc"
    xr.Dataset({"x": (("n",), np.arange(3))}).to_netcdf(flat)
    assert not store.holds_grid(flat)
    with pytest.raises(ValueError, match="flat.nc"):
        store.build_stores(flat)
