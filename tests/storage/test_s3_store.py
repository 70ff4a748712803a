"""portal.storage on both backends: local disk and a real S3-compatible server (moto, tests/storage/conftest.py).

The same calls must mean the same on both: files placed whole or not at all, a missing file a clear error
(404 over HTTP, never 500), NetCDF read lazily (by ranges on S3) with the same values, the read-through
copy reused. All data SYNTHETIC.
"""

from __future__ import annotations

import hashlib
import os
import time

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from django.http import Http404
from django.test import RequestFactory

from portal import storage
from portal.files import bytes_sent, stored_file_response


def synthetic_grid(days: int = 4) -> xr.Dataset:
    """A SYNTHETIC (time, lat, lon) grid whose values encode their position."""
    lat, lon = np.arange(-10.5, 10, 1.0), np.arange(20.5, 40, 1.0)
    values = np.arange(days)[:, None, None] * 1e4 + lat[None, :, None] * 100 + lon[None, None, :]
    return xr.Dataset(
        {"sm": (("time", "lat", "lon"), values.astype("float32"), {"units": "m3 m-3", "long_name": "SYNTHETIC"})},
        coords={"time": pd.date_range("2020-01-01", periods=days), "lat": lat, "lon": lon},
        attrs={"title": "SYNTHETIC test grid"},
    )


@pytest.fixture(params=["local", "s3"])
def backend(request, settings, tmp_path):
    """The data root on local disk (``tmp_path/data``) or on the S3 server (a prefix of its own)."""
    if request.param == "local":
        settings.DATA_ROOT = tmp_path / "data"
        settings.DATA_ROOT.mkdir()
        settings.WORK_ROOT = None
    else:
        request.getfixturevalue("s3_root")
    return request.param


def _write(tmp_path, name="grid.nc") -> tuple:
    path = storage.work_root() / "tmp" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    synthetic_grid().to_netcdf(path)
    return path, hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size


def test_work_root_is_the_data_root_on_disk_and_local_scratch_on_s3(backend, settings, tmp_path):
    if backend == "local":
        assert storage.work_root() == settings.DATA_ROOT and not storage.is_remote()
    else:
        assert storage.is_remote() and storage.work_root() == tmp_path / "work"
        assert storage.url("a/b.nc") == f"{settings.DATA_ROOT}/a/b.nc"


def test_a_file_put_is_read_back_with_the_same_bytes_and_values(backend, tmp_path):
    local, digest, nbytes = _write(tmp_path)
    storage.put_file(local, "products/x/v1/grid.nc")
    assert not local.exists()  # moved (disk) or uploaded and removed (S3)
    assert storage.exists("products/x/v1/grid.nc") and storage.is_file("products/x/v1/grid.nc")
    assert storage.size("products/x/v1/grid.nc") == nbytes
    copy = storage.local_path("products/x/v1/grid.nc")
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == digest
    assert storage.local_path("products/x/v1/grid.nc") == copy  # the read-through copy is reused
    with storage.open_dataset("products/x/v1/grid.nc") as ds:  # S3: h5netcdf on range reads
        xr.testing.assert_identical(ds.load(), synthetic_grid())
        assert float(ds["sm"].isel(time=2, lat=3, lon=4)) == pytest.approx(2e4 + (-7.5) * 100 + 24.5)


def test_s3_reads_equal_the_netcdf4_engine_on_the_local_file(s3_root, tmp_path):
    local, _, _ = _write(tmp_path)
    reference = xr.open_dataset(local, engine="netcdf4").load()
    storage.put_file(local, "p/grid.nc")
    with storage.open_dataset("p/grid.nc", mask_and_scale=True) as remote:
        xr.testing.assert_identical(remote.load(), reference)


def test_a_real_netcdf4_file_reads_the_same_over_s3_as_with_netcdf4(s3_root, shared_data):
    source = sorted((shared_data / "gldas_testdata").rglob("*.nc4"))[0]  # real GLDAS Noah 0.25 degree, NetCDF-4
    local = storage.work_root() / "tmp" / source.name
    local.parent.mkdir(parents=True)
    local.write_bytes(source.read_bytes())
    storage.put_file(local, f"cubes/{source.name}")
    reference = xr.open_dataset(source, engine="netcdf4").load()
    with storage.open_dataset(f"cubes/{source.name}") as remote:
        xr.testing.assert_identical(remote.load(), reference)


def test_a_tree_is_placed_whole_with_zarr_metadata_last(backend, tmp_path, monkeypatch):
    tree = storage.work_root() / "tmp" / "run"
    synthetic_grid().to_zarr(tree / "cube" / "map.zarr", zarr_format=2, consolidated=True)
    (tree / "grid.nc").write_bytes(b"SYNTHETIC")
    uploaded = []
    if backend == "s3":
        fs = storage.filesystem()
        original = fs.put_file
        monkeypatch.setattr(
            fs, "put_file", lambda lpath, rpath, **kw: (uploaded.append(rpath), original(lpath, rpath))[1]
        )
    storage.put_tree(tree, "products/x/v2")
    assert not tree.exists()
    assert storage.is_file("products/x/v2/grid.nc") and storage.is_file("products/x/v2/cube/map.zarr/.zmetadata")
    with storage.open_zarr("products/x/v2/cube/map.zarr") as ds:
        np.testing.assert_array_equal(ds["sm"].values, synthetic_grid()["sm"].values)
    if backend == "s3":
        names = [r.rsplit("/", 1)[-1] for r in uploaded]
        first_metadata = min(i for i, n in enumerate(names) if n in storage.ZARR_METADATA)
        assert all(n in storage.ZARR_METADATA for n in names[first_metadata:]), names


def test_an_upload_that_fails_half_way_leaves_nothing_visible(s3_root, tmp_path, monkeypatch):
    tree = storage.work_root() / "tmp" / "run"
    tree.mkdir(parents=True)
    for i in range(4):
        (tree / f"part{i}.bin").write_bytes(b"SYNTHETIC" * (i + 1))
    fs = storage.filesystem()
    original, calls = fs.put_file, []

    def failing(lpath, rpath, **kw):
        calls.append(rpath)
        if len(calls) == 3:
            raise OSError("connection reset (simulated)")
        return original(lpath, rpath, **kw)

    monkeypatch.setattr(fs, "put_file", failing)
    with pytest.raises(OSError, match="simulated"):
        storage.put_tree(tree, "products/x/v3")
    monkeypatch.setattr(fs, "put_file", original)
    assert len(calls) == 3 and not storage.exists("products/x/v3")
    assert not storage.filesystem().find(storage.url("products/x/v3")[len("s3://") :])  # not one object left
    assert sorted(p.name for p in tree.iterdir()) == [f"part{i}.bin" for i in range(4)]  # kept for cleanup


def test_a_missing_file_is_a_clear_error_and_a_404(backend):
    with pytest.raises(FileNotFoundError, match="products/none/v1/grid.nc is not in the data root"):
        storage.size("products/none/v1/grid.nc")
    with pytest.raises(FileNotFoundError):
        storage.local_path("products/none/v1/grid.nc")
    assert not storage.exists("products/none") and not storage.is_file("products/none/v1/grid.nc")
    storage.delete("products/none")  # nothing there is fine
    request = RequestFactory().get("/x")
    with pytest.raises(Http404):
        stored_file_response(request, "products/none/v1/grid.nc", filename="grid.nc", immutable=True)
    with pytest.raises(Http404):
        stored_file_response(request, "../etc/passwd", filename="passwd", immutable=True)


def test_downloads_stream_small_files_and_redirect_large_ones_on_s3(s3_root, s3_server, settings, tmp_path):
    local, digest, nbytes = _write(tmp_path)
    head = local.read_bytes()[:10]
    storage.put_file(local, "jobs/7/grid.nc")
    request = RequestFactory().get("/x", HTTP_RANGE="bytes=0-9")
    settings.DOWNLOAD_REDIRECT_MIN_BYTES = nbytes + 1
    small = stored_file_response(request, "jobs/7/grid.nc", filename="grid.nc", immutable=False, sha256=digest)
    assert small.status_code == 206 and b"".join(small.streaming_content) == head
    settings.DOWNLOAD_REDIRECT_MIN_BYTES = nbytes
    large = stored_file_response(request, "jobs/7/grid.nc", filename="grid.nc", immutable=False, sha256=digest)
    assert large.status_code == 302 and large["Location"].startswith(s3_server.endpoint + "/")
    assert "Signature=" in large["Location"] and "no-store" in large["Cache-Control"]
    assert bytes_sent(large) == nbytes
    import urllib.request

    with urllib.request.urlopen(large["Location"], timeout=30) as answer:  # the pre-signed URL, as a client
        assert hashlib.sha256(answer.read()).hexdigest() == digest
        assert 'filename="grid.nc"' in answer.headers["Content-Disposition"]


def test_health_reports_the_store(backend):
    detail = storage.describe()
    assert ("object storage" in detail) == (backend == "s3") and detail.startswith("writable")


def test_the_read_through_copies_are_pruned_least_recently_used_first(s3_root, settings, tmp_path):
    for i in range(3):
        local = storage.work_root() / "tmp" / f"f{i}.bin"
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(bytes([i]) * 1000)  # SYNTHETIC bytes
        storage.put_file(local, f"jobs/{i}/f.bin")
    copies = [storage.local_path(f"jobs/{i}/f.bin") for i in range(3)]
    for age, copy in zip((300, 100, 200), copies, strict=True):  # f0 least recently used, then f2, then f1
        os.utime(copy, (time.time() - age, time.time() - age))
    assert storage.prune_cache(max_bytes=2500) == 1 and [c.exists() for c in copies] == [False, True, True]
    assert storage.prune_cache(max_bytes=1000) == 1 and [c.exists() for c in copies] == [False, True, False]
    assert storage.local_path("jobs/0/f.bin").read_bytes() == bytes([0]) * 1000  # fetched again when needed
