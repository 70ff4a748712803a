"""A broker outage, on a Redis server of the test's own: job submission answers 503 and leaves no job "queued"."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request

from tests.conftest import web_server
from tests.grids import FT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(50):
        if (
            subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True).stdout.strip()
            == "PONG"
        ):
            return proc
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def _post(url: str, body: dict | None = None) -> tuple[int, dict, dict]:
    data = json.dumps(body).encode() if body is not None else b""
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read()), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), dict(e.headers)


def test_a_broker_outage_answers_503_and_a_retry_queues_the_job_once_it_is_back(
    service_env, live_grid, django_db_blocker
):
    from django.conf import settings

    from portal.subsets.models import SubsetJob

    port = _free_port()
    broker = _redis(port)
    env = dict(service_env, CELERY_BROKER_URL=f"redis://127.0.0.1:{port}/0")
    created = []
    # the session's grid by its number: a product test on this worker may have published a later version
    grid = {"version": str(live_grid.number), "file": "grid.nc"}
    try:
        with web_server(env) as url:
            status, job, _ = _post(
                f"{url}/api/jobs/", {"dataset": FT, "kind": "subset", "params": {"bbox": "0,0,5,5", "f": "csv", **grid}}
            )
            assert status == 201 and job["status"] == "queued", job
            created.append(job["id"])
            assert (
                subprocess.run(
                    ["redis-cli", "-p", str(port), "llen", settings.WORKER_QUEUES["subsets"]["queue"]],
                    capture_output=True,
                    text=True,
                ).stdout.strip()
                == "1"
            )  # the message reached the broker, on the subset jobs' queue

            broker.terminate()
            broker.wait(timeout=10)
            status, body, headers = _post(
                f"{url}/api/jobs/", {"dataset": FT, "kind": "subset", "params": {"bbox": "0,0,6,6", "f": "csv", **grid}}
            )
            assert status == 503 and headers.get("Retry-After") == "60", body
            assert "queue is unavailable" in body["detail"]
            created.append(body["job"]["id"])
            assert body["job"]["status"] == "failed"  # not stuck "queued"
            with django_db_blocker.unblock():
                assert SubsetJob.objects.get(id=body["job"]["id"]).status == SubsetJob.Status.FAILED

            broker = _redis(port)  # the broker is back: the failed job is retried and queued
            status, again, _ = _post(body["job"]["retry_url"])  # the anonymous job's link carries its key
            assert status == 202 and again["status"] == "queued", again
    finally:
        broker.kill()
        with django_db_blocker.unblock():
            SubsetJob.objects.filter(id__in=created).delete()
