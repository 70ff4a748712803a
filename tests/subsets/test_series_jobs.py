"""Point and area series, size estimates, asynchronous jobs (in process), expiry and the download log.

On the SYNTHETIC published grid of tests/grids.py (values encode the cell). The real
Celery worker (and a worker killed mid-job) is in test_job_worker.py.
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from django.conf import settings as settings_module
from django.utils import timezone

from portal.subsets import params, services, tasks
from portal.subsets.models import DownloadLog, SubsetJob
from tests.grids import FT, csv_table, grid_values

pytestmark = pytest.mark.django_db


def get(client, kind, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.get(f"/api/datasets/{FT}/{kind}/?{query}")


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_a_point_series_is_the_nearest_cell_with_its_centre(client, grid_version):
    response = get(client, "point", lon="10.7", lat="-20.2", f="csv")
    assert response.status_code == 200
    table = csv_table(body(response))
    assert list(table["lon"].unique()) == [10.5] and list(table["lat"].unique()) == [-20.5]
    np.testing.assert_allclose(table["sm"], grid_values(np.arange(3), -20.5, 10.5))
    covjson = get(client, "point", lon="10.7", lat="-20.2", f="coveragejson", time="2015-01-02/")
    doc = json.loads(body(covjson))
    assert doc["domain"]["domainType"] == "PointSeries" and doc["ranges"]["sm"]["values"] == [
        pytest.approx(v) for v in grid_values(np.arange(1, 3), -20.5, 10.5)
    ]


def test_an_area_mean_is_the_cos_latitude_weighted_mean(client, grid_version, tmp_path):
    response = get(client, "area", bbox="10,40,14,60", f="netcdf")
    assert response.status_code == 200
    (tmp_path / "a.nc").write_bytes(body(response))
    lat, lon = np.arange(40.5, 60, 1.0), np.arange(10.5, 14, 1.0)
    w = np.cos(np.deg2rad(lat))[:, None] * np.ones(lon.size)
    expected = [(grid_values(t, lat[:, None], lon[None, :]).astype("float32") * w).sum() / w.sum() for t in range(3)]
    with xr.open_dataset(tmp_path / "a.nc") as out:
        np.testing.assert_allclose(out["sm"].values, expected, rtol=1e-6)
        assert out.attrs["citation"] and "POLYGON" in out.attrs["geospatial_bounds"]
    polygon = "POLYGON((10 40, 14 40, 10 44, 10 40))"  # a triangle: only cells whose centres are inside
    tri = csv_table(body(get(client, "area", polygon=polygon, f="csv")))
    inside = [(la, lo) for la in np.arange(40.5, 44, 1.0) for lo in np.arange(10.5, 14, 1.0) if lo - 10 + la - 40 < 4]
    wts = np.array([np.cos(np.deg2rad(la)) for la, _ in inside])
    vals = np.array([grid_values(0, la, lo) for la, lo in inside], dtype="float32")
    assert tri["sm"][0] == pytest.approx((wts * vals).sum() / wts.sum(), rel=1e-6)


def test_series_formats_and_errors(client, grid_version):
    zipped = body(get(client, "point", lon="0", lat="0", f="zarr"))
    with zipfile.ZipFile(io.BytesIO(zipped)) as zf:
        assert ".zmetadata" in zf.namelist()
    assert get(client, "point", lon="0", lat="0", f="geotiff").json()["field"] == "f"
    assert get(client, "point", lon="0").json()["field"] == "lat"
    assert get(client, "point", lon="500", lat="0").json()["field"] == "lon"
    assert get(client, "area", f="csv").json()["field"] == "bbox"  # an area mean needs a region
    assert get(client, "area", bbox="10,20,14,23", time="2030-01-01/").json()["field"] == "time"


def test_the_estimate_says_what_would_happen_without_reading(client, grid_version, settings):
    jobs = SubsetJob.objects.count()
    small = get(client, "subset", bbox="10,20,14,23", estimate="1").json()
    # the values (float32), the coordinates (float64) and their cell bounds (time_bnds, lat_bnds, lon_bnds)
    assert small["mode"] == "direct" and small["estimated_bytes"] == 4 * 3 * 3 * 4 + (3 * 8 + 3 * 8 + 4 * 8) * 3
    settings.SUBSET_SYNC_MAX_BYTES = 10_000
    whole = get(client, "subset", estimate="1").json()
    assert whole["mode"] == "job" and whole["estimated_bytes"] > 10_000
    settings.SUBSET_JOB_MAX_BYTES = 20_000
    refused = get(client, "subset", estimate="1").json()
    assert refused["mode"] == "refused" and "split" in refused["detail"]
    assert get(client, "subset", bbox="10,50,20,40", estimate="1").json()["field"] == "bbox"
    assert SubsetJob.objects.count() == jobs  # an estimate queues nothing


def test_a_large_request_becomes_a_job_with_progress_link_checksum_and_log(client, grid_version, settings, tmp_path):
    settings.SUBSET_SYNC_MAX_BYTES = 10_000
    response = get(client, "subset", bbox="-20,-10,20,10", f="netcdf", variables="sm")
    assert response.status_code == 202
    job = response.json()
    assert job["status"] == "queued" and response["Location"] == job["url"] and job["download_url"] is None
    again = get(client, "subset", bbox="-20,-10,20,10", f="netcdf", variables="sm").json()
    assert again["id"] == job["id"]  # the same request shares the job
    assert client.get(f"/jobs/{job['id']}/").status_code == 200

    done = services.run_job(job["id"], 1)  # what the worker does (the real worker: test_job_worker.py)
    assert done.status == "done" and done.progress == 1.0 and done.expires_at > timezone.now()
    status = client.get(f"/api/jobs/{job['id']}/").json()
    assert status["status"] == "done" and status["sha256"] == done.sha256 and status["size"] == done.size
    data = body(client.get(status["download_url"]))
    assert len(data) == done.size
    (tmp_path / "job.nc").write_bytes(data)
    with xr.open_dataset(tmp_path / "job.nc") as out:
        assert out.sizes == {"time": 3, "lat": 20, "lon": 40, "nv": 2}  # nv: the bounds' vertices
        expected = grid_values(
            np.arange(3)[:, None, None], out["lat"].values[None, :, None], out["lon"].values[None, None, :]
        ).astype("float32")
        np.testing.assert_array_equal(out["sm"].values, expected)
    log = DownloadLog.objects.get(job_id=job["id"])
    assert log.size == done.size and log.kind == "job" and log.params["bbox"] == "-20,-10,20,10"
    assert "?key=" in status["script_url"]  # an anonymous job's links carry its owner key
    script = client.get(status["script_url"] + "&tool=wget").content.decode()
    assert done.sha256 in script and "wget" in script and status["download_url"] in script
    assert "PORTAL_TOKEN" not in script  # anonymous: the key in the link, no token
    assert client.get(status["script_url"] + "&tool=ftp").status_code == 400


def test_direct_downloads_are_logged(client, grid_version):
    before = DownloadLog.objects.count()
    response = get(client, "subset", bbox="10,20,14,23", f="csv")
    size = len(body(response))
    log = DownloadLog.objects.order_by("-id").first()
    assert DownloadLog.objects.count() == before + 1 and log.size == size and log.kind == "subset"
    assert log.format == "csv" and log.dataset_id == FT and log.user is None


def test_job_files_expire(client, grid_version, settings):
    settings.SUBSET_SYNC_MAX_BYTES = 1000
    job_id = get(client, "subset", bbox="-20,-10,20,10").json()["id"]
    job = services.run_job(job_id, 1)
    path = services.job_file(job)
    assert path.is_file()
    SubsetJob.objects.filter(id=job_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.expire_jobs() == 1
    assert not path.exists() and SubsetJob.objects.get(id=job_id).status == "expired"
    assert client.get(f"/api/jobs/{job_id}/download/").status_code == 410


def test_a_job_whose_worker_died_fails_and_can_be_retried(client, grid_version, settings):
    settings.SUBSET_SYNC_MAX_BYTES = 1000
    job_id = get(client, "subset", bbox="-20,-10,20,10").json()["id"]
    # the worker took it, then stopped answering
    SubsetJob.objects.filter(id=job_id).update(status="running", heartbeat_at=timezone.now() - timedelta(hours=1))
    status = client.get(f"/api/jobs/{job_id}/").json()
    assert status["status"] == "failed" and "retry" in status["error"]
    retried = client.post(f"/api/jobs/{job_id}/retry/")
    assert retried.status_code == 202 and retried.json()["status"] == "queued" and retried.json()["attempt"] == 2
    assert client.post(f"/api/jobs/{job_id}/retry/").status_code == 409  # only failed jobs
    assert services.run_job(job_id, 1).status == "queued"  # a stale message of attempt 1 does nothing
    assert services.run_job(job_id, 2).status == "done"


def test_a_message_delivered_twice_runs_the_job_once(client, grid_version, settings, monkeypatch):
    settings.SUBSET_SYNC_MAX_BYTES = 1000
    job_id = get(client, "subset", bbox="-20,-10,20,10").json()["id"]
    written, answer = [], services.answer

    def writing(*args, **kwargs):
        written.append(args)
        # the same message delivered again while the first run writes: the row is claimed already
        assert tasks.run_subset_job(job_id, 1) == "running"
        return answer(*args, **kwargs)

    monkeypatch.setattr(services, "answer", writing)
    assert tasks.run_subset_job(job_id, 1) == "done"
    assert tasks.run_subset_job(job_id, 1) == "done"  # and once more after it finished
    assert len(written) == 1


def test_the_tasks_have_soft_and_hard_time_limits_from_settings():
    assert tasks.run_subset_job.soft_time_limit == settings_module.SUBSET_JOB_SOFT_TIME_LIMIT_SECONDS
    assert tasks.run_subset_job.time_limit == settings_module.SUBSET_JOB_TIME_LIMIT_SECONDS
    assert tasks.housekeeping.soft_time_limit == settings_module.SUBSET_HOUSEKEEPING_SOFT_TIME_LIMIT_SECONDS
    assert tasks.housekeeping.time_limit == settings_module.SUBSET_HOUSEKEEPING_TIME_LIMIT_SECONDS
    for task in (tasks.run_subset_job, tasks.housekeeping):
        assert 0 < task.soft_time_limit < task.time_limit


def test_a_job_that_fails_records_the_reason(client, grid_version, settings):
    settings.SUBSET_SYNC_MAX_BYTES = 1000
    job_id = get(client, "subset", bbox="-20,-10,20,10").json()["id"]
    Path(settings.DATA_ROOT, grid_version.directory, "cube").rename(
        Path(settings.DATA_ROOT, grid_version.directory, "gone")
    )
    Path(settings.DATA_ROOT, grid_version.directory, "grid.nc").unlink()
    job = services.run_job(job_id, 1)
    assert job.status == "failed" and "grid.nc" in job.error
    assert not list((Path(settings.DATA_ROOT) / "jobs" / job_id).glob("*"))  # nothing half-written


def test_jobs_by_post_and_login_access(client, admin_client, grid_version):
    created = client.post(
        "/api/jobs/", {"dataset": FT, "kind": "area", "params": {"bbox": "0,0,10,10"}}, content_type="application/json"
    )
    assert created.status_code == 201 and created.json()["kind"] == "area"
    assert client.post("/api/jobs/", {"dataset": "nope"}, content_type="application/json").json()["field"] == "dataset"
    bad = client.post("/api/jobs/", {"dataset": FT, "params": {"bbox": "1,2"}}, content_type="application/json")
    assert bad.status_code == 400 and bad.json()["field"] == "bbox"
    from portal.catalog.models import Dataset

    Dataset.objects.filter(id=FT).update(share_type=Dataset.ShareType.LOGIN)
    assert client.post("/api/jobs/", {"dataset": FT, "params": {}}, content_type="application/json").status_code == 401
    assert get(client, "point", lon="0", lat="0").status_code == 401
    assert admin_client.get(f"/api/datasets/{FT}/point/?lon=0&lat=0").status_code == 200


def test_the_admin_lists_jobs_and_downloads_read_only(admin_client, client, grid_version):
    b"".join(get(client, "point", lon="0", lat="0").streaming_content)
    page = admin_client.get("/admin/subsets/downloadlog/")
    assert page.status_code == 200 and "point" in page.content.decode()
    assert admin_client.get("/admin/subsets/subsetjob/").status_code == 200
    assert admin_client.get("/admin/subsets/downloadlog/add/").status_code == 403


def test_the_plan_names_the_store_that_reads_the_request_fastest(grid_version):
    f = services.gridded_file(grid_version, None)
    point = services.plan(f, params.parse_api("point", {"lon": "10", "lat": "20"}))
    one_day = services.plan(f, params.parse_api("subset", {"time": "2015-01-02/2015-01-02"}))
    assert point.layout == "series" and one_day.layout == "map"
