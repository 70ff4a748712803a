"""Jobs belong to their owner; quotas on jobs and bytes; the POST form of the direct endpoints.

Django's test client on real PostGIS and the SYNTHETIC grid of conftest.py (the matrix of every
door and actor: tests/access/test_matrix.py).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from django.test import Client

from portal.accounts.tokens import issue
from portal.subsets import services
from portal.subsets.models import DownloadLog, SubsetJob
from tests.conftest import make_user
from tests.grids import FT

pytestmark = pytest.mark.django_db
API = f"/api/datasets/{FT}"
JOB = {"dataset": FT, "kind": "subset", "params": {"bbox": "0,0,3,3", "f": "csv"}}


def post_job(client, body=JOB, path="/api/jobs/"):
    return client.post(path, body, content_type="application/json")


def test_identical_requests_of_two_owners_are_two_jobs_and_of_one_owner_one(grid_version, verified_user):
    alice, bob = Client(), Client()
    alice.force_login(verified_user)
    bob.force_login(make_user("bob@example.org"))
    first, again, other = post_job(alice), post_job(alice), post_job(bob)
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
    assert first.json()["id"] == again.json()["id"] != other.json()["id"]
    anonymous, stranger = Client(), Client()
    anon = post_job(anonymous)
    assert anon.status_code == 201 and anon.json()["id"] not in (first.json()["id"], other.json()["id"])
    assert post_job(anonymous).json()["id"] == anon.json()["id"]  # the same session: the same job
    assert post_job(stranger).json()["id"] != anon.json()["id"]  # another anonymous client: its own
    job = SubsetJob.objects.get(id=anon.json()["id"])
    assert job.user is None and len(job.owner_key) == 64 and job.client == "127.0.0.1"
    # nobody else sees a job: 404, as for a job that does not exist
    for path in ("", "download/", "script/"):
        assert bob.get(f"/api/jobs/{first.json()['id']}/{path}").status_code == 404
        assert stranger.get(f"/api/jobs/{anon.json()['id']}/{path}").status_code == 404
    assert bob.post(f"/api/jobs/{first.json()['id']}/cancel/").status_code == 404
    assert bob.get(f"/jobs/{first.json()['id']}/").status_code == 404
    assert alice.get(f"/jobs/{first.json()['id']}/").status_code == 200
    assert bob.get("/api/jobs/not-a-uuid/").status_code == 404


def test_a_cookieless_script_owns_its_job_by_the_key_in_the_links(grid_version):
    response = Client().post("/api/jobs/", JOB, content_type="application/json")  # no cookie is kept below
    assert response.status_code == 201
    job = response.json()
    key = re.search(r"[?&]key=([A-Za-z0-9_-]+)", response["Location"]).group(1)
    for name in ("url", "page_url", "retry_url", "cancel_url"):
        assert f"key={key}" in job[name], name
    assert Client().get(job["url"]).status_code == 200  # a fresh client with the key
    assert Client().get(f"/api/jobs/{job['id']}/").status_code == 404  # without it
    assert Client().get(f"/api/jobs/{job['id']}/?key={'x' * 43}").status_code == 404  # a wrong key
    page = Client().get(job["page_url"])
    assert page.status_code == 200 and f"cancel/?key={key}" in page.content.decode()  # the page's buttons too
    again = Client().post(f"/api/jobs/?key={key}", JOB, content_type="application/json")
    assert again.status_code == 200 and again.json()["id"] == job["id"]  # submitting again with the key
    cancelled = Client().post(job["cancel_url"])
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert Client().post(job["cancel_url"]).status_code == 409  # already cancelled
    retried = Client().post(job["retry_url"])
    assert retried.status_code == 202 and retried.json()["status"] == "queued" and retried.json()["attempt"] == 2


def test_a_signed_in_users_script_sends_a_token_from_the_environment(grid_version, verified_user):
    client = Client()
    client.force_login(verified_user)
    job_id = post_job(client).json()["id"]
    services.run_job(job_id, 1)
    status = client.get(f"/api/jobs/{job_id}/").json()
    assert "key=" not in status["download_url"]
    for tool, header in (
        ("curl", '-H "Authorization: Bearer $PORTAL_TOKEN"'),
        ("wget", '--header="Authorization: Bearer $PORTAL_TOKEN"'),
    ):
        script = client.get(status["script_url"], {"tool": tool}).content.decode()
        assert header in script and "/accounts/profile/" in script and status["download_url"] in script
    _, plain = issue(verified_user, "script", ["read", "download"], 7)
    scripted = Client(headers={"Authorization": f"Bearer {plain}"}).get(status["download_url"])
    assert scripted.status_code == 200 and b"".join(scripted.streaming_content).startswith(b"time,")


def test_too_many_live_jobs_is_a_429_with_retry_after_and_the_quota(grid_version, settings):
    settings.QUOTA_ANON_CONCURRENT_JOBS = 2
    client = Client()
    for bbox in ("0,0,1,1", "0,0,2,2"):
        assert post_job(client, {**JOB, "params": {"bbox": bbox}}).status_code == 201
    refused = post_job(client, {**JOB, "params": {"bbox": "0,0,4,4"}})
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    body = refused.json()
    assert (
        body["quota"] == "concurrent_jobs" and body["limit"] == 2 and body["used"] == 2 and "cancel" in body["detail"]
    )
    assert SubsetJob.objects.filter(params__bbox="0,0,4,4").count() == 0  # nothing created
    settings.SUBSET_SYNC_MAX_BYTES = 10  # a large GET becomes a job: the same quota
    assert client.get(f"{API}/subset/", {"bbox": "0,0,5,5"}).status_code == 429
    job_id = SubsetJob.objects.filter(params__bbox="0,0,1,1").get().id
    assert client.post(f"/api/jobs/{job_id}/cancel/").status_code == 200  # one fewer live job: room again
    assert post_job(client, {**JOB, "params": {"bbox": "0,0,4,4"}}).status_code == 201


def test_the_days_byte_quota_answers_429_at_every_door_in_its_format(grid_version, settings):
    DownloadLog.objects.all().delete()  # what live servers committed earlier in the session (rolled back after)
    client = Client()
    first = client.get(f"{API}/subset/", {"bbox": "0,0,2,2", "f": "csv"})
    assert first.status_code == 200
    sent = len(b"".join(first.streaming_content))
    settings.QUOTA_ANON_BYTES_PER_DAY = sent + 10  # the next answer passes the quota
    api = client.get(f"{API}/subset/", {"bbox": "0,0,2,2", "f": "csv"})
    assert api.status_code == 429 and api.json()["quota"] == "bytes_per_day" and int(api["Retry-After"]) > 0
    edr = client.get(f"/api/edr/collections/{FT}/cube", {"bbox": "0,0,2,2", "f": "CSV"})
    assert edr.status_code == 429 and edr.json()["code"] == "TooManyRequests" and edr["Retry-After"]
    dods = client.get(f"/opendap/{FT}/v{grid_version.number}/grid.nc.dods?sm[0:2][0:9][0:9]")
    assert dods.status_code == 429 and b"Error {" in dods.content and dods["Retry-After"]
    whole = client.get(f"/datasets/{FT}/versions/{grid_version.number}/files/grid.nc")
    assert whole.status_code == 429 and whole.json()["quota"] == "bytes_per_day"
    stations = client.get("/api/observations/", {"network": "AmeriFlux", "time": "2019-01-01/2019-01-31"})
    assert stations.status_code == 429 and stations.json()["quota"] == "bytes_per_day"
    assert DownloadLog.objects.count() == 1  # only the first answer was sent and logged


def test_the_direct_endpoints_take_a_post_form_for_polygons_too_long_for_a_url(grid_version):
    angles = np.linspace(0, 2 * np.pi, 600)[:-1]
    ring = [(round(10 + 5 * np.cos(a), 6), round(5 * np.sin(a), 6)) for a in angles]
    wkt = "POLYGON((" + ",".join(f"{x} {y}" for x, y in [*ring, ring[0]]) + "))"
    assert len(wkt) > 8192  # above gunicorn's request-line cap
    form = Client().post(f"{API}/subset/", {"polygon": wkt, "f": "csv"})  # multipart form fields
    as_json = Client().post(f"{API}/subset/", {"polygon": wkt, "f": "csv"}, content_type="application/json")
    assert form.status_code == as_json.status_code == 200
    assert b"".join(form.streaming_content) == b"".join(as_json.streaming_content)
    area = Client().post(f"{API}/area/", json.dumps({"polygon": wkt, "f": "csv"}), content_type="application/json")
    assert area.status_code == 200 and b"".join(area.streaming_content).count(b"\n") == 4  # header + 3 days
    bad = Client().post(f"{API}/area/", {"polygon": wkt, "fromat": "csv"}, content_type="application/json")
    assert bad.status_code == 400 and bad.json()["field"] == "fromat"  # the same parser
    assert Client().post(f"{API}/subset/", "[1, 2]", content_type="application/json").json()["field"] == "body"
