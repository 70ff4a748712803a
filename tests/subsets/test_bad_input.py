"""Bad input at the subset front doors: a 4xx naming the parameter, and nothing left on disk."""

from pathlib import Path

import pytest
from django.conf import settings

from portal.subsets import core, services
from tests.grids import FT

API = f"/api/datasets/{FT}"


def _tmp_files() -> set[Path]:
    return set((Path(settings.DATA_ROOT) / "tmp").glob("*"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("subset/?bbox=١٠,0,20,10", "bbox"),  # Arabic-Indic digits: Python's float would read them
        ("subset/?bbox=0,0,1e999,10", "bbox"),
        ("subset/?bbox=0,0,10,10&time_stride=٣", "time_stride"),
        ("subset/?bbox=0,0,10,10&time_stride=99999999999999999999", "time_stride"),
        ("subset/?bbox=0,0,10,10&version=١", "version"),
        ("point/?lon=1%00&lat=2", "lon"),
        ("subset/?bbox=0,0,10,10&x%00y=1", "x\x00y"),
    ],
)
def test_bad_numbers_and_nul_bytes_are_a_400_naming_the_parameter(client, grid_version, query, field):
    before = _tmp_files()
    response = client.get(f"{API}/{query}")
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert _tmp_files() == before


@pytest.mark.django_db
def test_a_polygon_of_too_many_vertices_is_refused_before_reading(client, grid_version):
    import numpy as np

    angles = np.linspace(0, 2 * np.pi, core.MAX_POLYGON_VERTICES + 10)[:-1]
    ring = ", ".join(f"{10 + 5 * np.cos(a):.5f} {10 + 5 * np.sin(a):.5f}" for a in angles)
    polygon = f"POLYGON(({ring}, {10 + 5:.5f} {10:.5f}))"
    response = client.post(
        "/api/jobs/", {"dataset": FT, "kind": "subset", "params": {"polygon": polygon}}, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["field"] == "polygon" and "vertices" in response.json()["detail"]


@pytest.mark.django_db
def test_an_overlong_parameter_is_refused(client, grid_version):
    response = client.post(
        "/api/jobs/",
        {"dataset": FT, "kind": "subset", "params": {"polygon": "x" * 300_000}},
        content_type="application/json",
    )
    assert response.status_code == 400 and response.json()["field"] == "polygon"


@pytest.mark.django_db
def test_a_failure_after_the_file_is_written_leaves_no_file(client, grid_version, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("the download log is unavailable")

    monkeypatch.setattr(services, "log_download", broken)
    before = _tmp_files()
    with pytest.raises(RuntimeError, match="download log"):
        client.get(f"{API}/subset/?bbox=0,0,10,10&f=csv")
    assert _tmp_files() == before


def test_housekeeping_removes_only_old_orphaned_temporary_files(tmp_path, settings):
    import os
    import time

    settings.DATA_ROOT = tmp_path
    (tmp_path / "tmp").mkdir()
    old, new = tmp_path / "tmp" / "old.nc", tmp_path / "tmp" / "new.nc"
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert services.remove_orphans(3600) == 1
    assert not old.exists() and new.exists()
    assert services.remove_orphans(0) == 1 and not new.exists()
