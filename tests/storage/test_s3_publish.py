"""Publishing into an S3 data root all or nothing (moto's real S3 server, tests/storage/conftest.py).

A version whose upload or commit fails leaves no object in the bucket and no row; one that succeeds leaves
the work folder nowhere. SYNTHETIC grid of tests/grids.py.
"""

from __future__ import annotations

import pytest

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
