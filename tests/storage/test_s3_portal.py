"""The portal end to end with its data root on a real S3-compatible server (moto, tests/storage/conftest.py).

A SYNTHETIC grid version is published through ``products.services.publish`` into ``s3://bucket/prefix``
(committed: a gunicorn web server and a Celery worker, other processes, read it from the bucket with their
own local scratch folders); then a direct subset over HTTP, an EDR position query, an OPeNDAP read with
netCDF-C's DAP client, a subset job run by the worker, and the downloads of the job's result and of the
published file (302 to a pre-signed URL, followed by a real HTTP client to the S3 server).
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from django.conf import settings
from django.test import override_settings
from django.utils import timezone
from PIL import Image

from portal import storage
from portal.subsets import services as subset_services
from portal.subsets.models import SubsetJob
from tests.conftest import web_server
from tests.grids import FT, committed_grid, grid_values

pytestmark = pytest.mark.worker  # committed rows: the web server and the worker must see them


@dataclass
class Portal:
    url: str
    env: dict
    version: object
    prefix: str
    work: Path
    files: dict  # name -> (size, sha256) as recorded


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def get(url: str, *, follow: bool = True):
    """GET ``url``: (status, headers, body); a redirect is answered as is when ``follow`` is False."""
    opener = urllib.request.build_opener() if follow else urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


@pytest.fixture(scope="module")
def s3_portal(s3_server, service_env, django_db_blocker, tmp_path_factory):
    """A committed SYNTHETIC 1-degree grid of 3 days published to the bucket, and a web server on it."""
    prefix = f"portal-{uuid.uuid4().hex[:8]}"
    work = tmp_path_factory.mktemp("s3-work")
    override = override_settings(
        DATA_ROOT=s3_server.root(prefix), DATA_ROOT_S3_ENDPOINT_URL=s3_server.endpoint, WORK_ROOT=work / "tests"
    )
    override.enable()
    env = {
        **service_env,
        **s3_server.env(prefix),
        "WORK_ROOT": str(work / "web"),
        "DOWNLOAD_REDIRECT_MIN_BYTES": "1",  # every download from the bucket: a pre-signed URL
        "SUBSET_SYNC_MAX_BYTES": "10000",
    }
    try:
        with committed_grid(django_db_blocker) as version, web_server(env, workers=1) as url:
            with django_db_blocker.unblock():
                files = {f.name: (f.size, f.sha256) for f in version.files.all()}
            yield Portal(url, env, version, prefix, work, files)
    finally:
        override.disable()


def test_publish_places_the_version_in_the_bucket_and_nothing_on_local_disk(s3_portal, s3_server, session_data_root):
    version = s3_portal.version
    fs = s3_server.filesystem()
    base = f"{s3_server.bucket}/{s3_portal.prefix}/{version.directory}"
    names = {key[len(base) + 1 :] for key in fs.find(base)}
    assert {"grid.nc", "cube/grid/map.zarr/.zmetadata", "cube/grid/series.zarr/.zmetadata"} <= names
    data = fs.cat_file(f"{base}/grid.nc")
    assert (len(data), hashlib.sha256(data).hexdigest()) == s3_portal.files["grid.nc"]
    with storage.open_dataset(f"{version.directory}/grid.nc") as remote:  # range reads, h5netcdf
        published = xr.open_dataset(storage.local_path(f"{version.directory}/grid.nc"), engine="netcdf4")
        with published:
            xr.testing.assert_identical(remote.load(), published.load())  # the stamped product file, both engines
    assert not list((s3_portal.work / "tests" / "tmp").glob("*"))  # the run's work folder went once uploaded
    assert not (session_data_root / version.directory).exists()  # the session's local data root: untouched


def test_a_direct_subset_over_http_is_read_from_the_bucket(s3_portal, tmp_path):
    query = urllib.parse.urlencode({"bbox": "10,20,14,23", "time": "2015-01-02/2015-01-03", "variables": "sm"})
    status, headers, body = get(f"{s3_portal.url}/api/datasets/{FT}/subset/?{query}")
    assert status == 200 and headers["Content-Type"] == "application/x-netcdf", body[:300]
    (tmp_path / "out.nc").write_bytes(body)
    with xr.open_dataset(tmp_path / "out.nc") as out:
        assert list(out["lon"].values) == [10.5, 11.5, 12.5, 13.5] and list(out["lat"].values) == [20.5, 21.5, 22.5]
        expected = grid_values(np.array([1, 2])[:, None, None], out["lat"].values[None, :, None], out["lon"].values)
        np.testing.assert_array_equal(out["sm"].values, expected.astype("float32"))


def test_edr_opendap_and_map_previews_read_the_bucket(s3_portal, s3_server):
    query = urllib.parse.urlencode({"coords": "POINT(10.3 20.8)", "datetime": "2015-01-02/.."})
    status, _, body = get(f"{s3_portal.url}/api/edr/collections/{FT}/position?{query}")
    assert status == 200, body[:300]
    doc = json.loads(body)
    assert doc["domain"]["axes"]["x"]["values"] == [10.5] and doc["domain"]["axes"]["y"]["values"] == [20.5]
    assert doc["ranges"]["sm"]["values"] == [float(grid_values(t, 20.5, 10.5)) for t in (1, 2)]
    number = s3_portal.version.number
    with xr.open_dataset(f"{s3_portal.url}/opendap/{FT}/v{number}/grid.nc", engine="netcdf4") as remote:
        cell = remote["sm"].sel(lat=-44.5, lon=100.5).values
        np.testing.assert_array_equal(cell, grid_values(np.arange(3), -44.5, 100.5).astype("float32"))
    query = urllib.parse.urlencode({"time": "2015-01-02", "bbox": "10,20,14,22", "width": 4, "height": 2})
    status, headers, body = get(f"{s3_portal.url}/api/datasets/{FT}/map.png?{query}")
    assert status == 200 and headers["Content-Type"] == "image/png", body[:300]
    assert Image.open(io.BytesIO(body)).size == (4, 2)
    assert list((s3_portal.work / "web" / "maps-cache").rglob("*.png"))  # images cached on local disk ...
    assert not s3_server.filesystem().find(f"{s3_server.bucket}/{s3_portal.prefix}/maps-cache")  # ... not in S3


def _worker(env: dict, log: Path) -> subprocess.Popen:
    queues = ",".join(options["queue"] for options in settings.WORKER_QUEUES.values())
    command = [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool=solo", "--loglevel=INFO"]
    command += ["--without-heartbeat", "--without-mingle", "--without-gossip", "--queues", queues]
    return subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def test_a_job_runs_on_the_worker_and_its_file_is_fetched_by_a_presigned_url(
    s3_portal, s3_server, tmp_path, django_db_blocker
):
    query = urllib.parse.urlencode({"bbox": "-20,-10,20,10", "f": "netcdf", "variables": "sm"})
    status, _, body = get(f"{s3_portal.url}/api/datasets/{FT}/subset/?{query}")
    assert status == 202, body[:300]
    job = json.loads(body)
    worker_env = {**s3_portal.env, "WORK_ROOT": str(s3_portal.work / "worker")}
    worker = _worker(worker_env, tmp_path / "worker.log")
    try:
        deadline = time.monotonic() + 180
        while (state := json.loads(get(job["url"])[2]))["status"] not in ("done", "failed"):
            assert time.monotonic() < deadline and worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.3)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert state["status"] == "done", state
    key = f"{s3_server.bucket}/{s3_portal.prefix}/jobs/{job['id']}"
    assert len(s3_server.filesystem().find(key)) == 1  # the result is in the bucket ...
    assert not list((s3_portal.work / "worker" / "jobs").glob("*/*"))  # ... and not left on the worker's disk

    status, headers, _ = get(state["download_url"], follow=False)
    assert status == 302 and headers["Location"].startswith(s3_server.endpoint + "/"), headers
    status, headers, data = get(headers["Location"])  # a real HTTP client to the S3 server
    assert status == 200 and len(data) == state["size"] and hashlib.sha256(data).hexdigest() == state["sha256"]
    with django_db_blocker.unblock():  # the job past its expiry: housekeeping deletes the object
        SubsetJob.objects.filter(id=job["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
        assert subset_services.expire_jobs() >= 1 and SubsetJob.objects.get(id=job["id"]).status == "expired"
    assert not s3_server.filesystem().find(key)
    (tmp_path / "job.nc").write_bytes(data)
    with xr.open_dataset(tmp_path / "job.nc") as out:
        assert out.sizes["time"] == 3 and out.sizes["lat"] == 20 and out.sizes["lon"] == 40
        expected = grid_values(np.arange(3)[:, None, None], out["lat"].values[None, :, None], out["lon"].values)
        np.testing.assert_array_equal(out["sm"].values, expected.astype("float32"))


def test_a_published_file_downloads_by_redirect_and_a_missing_key_is_a_404(s3_portal):
    status, headers, body = get(
        f"{s3_portal.url}/datasets/{FT}/versions/{s3_portal.version.number}/files/grid.nc", follow=False
    )
    assert status == 302, body[:300]
    status, _, data = get(headers["Location"])
    assert status == 200 and hashlib.sha256(data).hexdigest() == s3_portal.files["grid.nc"][1]
    store = f"{s3_portal.url}/api/stac/stores/{FT}/v{s3_portal.version.number}/grid.nc/map.zarr"
    assert get(f"{store}/.zmetadata", follow=False)[0] == 302
    assert get(f"{store}/sm/99.99.99", follow=False)[0] == 404
