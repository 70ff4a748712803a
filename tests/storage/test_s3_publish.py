"""Writing into an S3 data root (moto's real S3 server, tests/storage/conftest.py): versions all or nothing, the
input cube store.

A version whose upload or commit fails leaves no object in the bucket and no row; one that succeeds leaves
the work folder nowhere (SYNTHETIC grid of tests/grids.py). A registered input grid's chunked cube goes to the
bucket and the generators get a local copy of it (a real GLDAS file).
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from ingestion.models import GridFile
from ingestion.readers.grids import open_any
from ingestion.services import cube_for, ingest
from portal import storage
from portal.catalog.models import DatasetVersion
from tests.grids import FT, publish_grid

pytestmark = pytest.mark.django_db


def _objects(s3_server, prefix: str) -> list[str]:
    return s3_server.filesystem().find(f"{s3_server.bucket}/{prefix}/products")


def test_a_version_is_uploaded_whole_and_its_work_folder_removed(s3_root, s3_server, settings):
    version = publish_grid(FT, days=2, step=10.0)
    names = {key.rsplit(f"{version.directory}/", 1)[-1] for key in _objects(s3_server, s3_root)}
    assert (
        "grid.nc" in names and "cube/grid/map.zarr/.zmetadata" in names and "cube/grid/series.zarr/.zmetadata" in names
    )
    assert storage.size(version.files.get().path) == version.files.get().size
    assert not list((settings.WORK_ROOT / "tmp").glob("*"))


def test_a_commit_that_fails_after_the_upload_leaves_no_object_and_no_row(s3_root, s3_server, monkeypatch):
    real = storage.put_tree

    def upload_then_fail(local, relative):
        real(local, relative)
        assert _objects(s3_server, s3_root)  # uploaded ...
        raise RuntimeError("the database went away (simulated)")

    monkeypatch.setattr(storage, "put_tree", upload_then_fail)
    before = DatasetVersion.objects.filter(dataset_id=FT).count()
    with pytest.raises(RuntimeError, match="simulated"):
        publish_grid(FT, days=2, step=10.0)
    assert _objects(s3_server, s3_root) == []  # ... and deleted again
    assert DatasetVersion.objects.filter(dataset_id=FT).count() == before


def test_an_upload_that_fails_leaves_no_object_and_no_row(s3_root, s3_server, monkeypatch):
    fs = storage.filesystem()
    real, calls = fs.put_file, []

    def fail_on_the_third(lpath, rpath, **kwargs):
        calls.append(rpath)
        if len(calls) == 3:
            raise OSError("connection reset (simulated)")
        return real(lpath, rpath, **kwargs)

    monkeypatch.setattr(fs, "put_file", fail_on_the_third)
    before = DatasetVersion.objects.filter(dataset_id=FT).count()
    with pytest.raises(OSError, match="simulated"):
        publish_grid(FT, days=2, step=10.0)
    assert len(calls) == 3 and _objects(s3_server, s3_root) == []
    assert DatasetVersion.objects.filter(dataset_id=FT).count() == before


def test_an_input_cube_is_stored_in_the_bucket_and_read_through_a_local_copy(s3_root, s3_server, shared_data):
    source = sorted((shared_data / "gldas_testdata").rglob("*.nc4"))[0]
    ingest("grid", source)
    grid = GridFile.objects.get(path=str(source))
    cube = cube_for(grid)
    assert grid.cube_path == f"cubes/{grid.sha256}.nc" and storage.is_file(grid.cube_path)
    assert cube.is_relative_to(storage.work_root() / "s3-cache") and cube.stat().st_size == storage.size(grid.cube_path)
    with xr.open_dataset(cube) as stored, open_any(source) as original:
        name = "SoilMoi0_10cm_inst"
        np.testing.assert_array_equal(stored[name].values, original[name].values)
        assert stored.attrs["source_sha256"] == grid.sha256
    assert cube_for(grid) == cube  # the object and the copy are reused
    assert not list((storage.work_root() / "tmp").glob("*"))  # the partial went up and away
