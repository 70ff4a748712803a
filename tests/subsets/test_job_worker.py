"""Subset jobs carried out by a real Celery worker; a worker killed mid-job leaves a failed job, not a stuck one.

On the committed SYNTHETIC grid ``live_grid`` (0.5 degree, 20 days) of tests/grids.py.
"""

from __future__ import annotations

import time

import pytest

from portal.subsets import params as subset_params
from portal.subsets import services
from portal.subsets.models import SubsetJob

pytestmark = pytest.mark.worker  # no django_db transaction: the worker must see committed jobs


def _submit(version, **params):
    f = services.gridded_file(version, None)
    query = subset_params.parse_api("subset", params)
    job, created = services.submit_job(f, query, services.plan(f, query))
    assert created
    return job.id


def _wait(job_id, statuses, timeout):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        job = SubsetJob.objects.get(id=job_id)
        seen.append((job.status, job.progress))
        if job.status in statuses:
            return job, seen
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {job.status} after {timeout} s")


def test_a_worker_runs_a_job_and_reports_progress(live_grid, start_worker, django_db_blocker):
    start_worker()
    with django_db_blocker.unblock():  # autocommit: the worker sees the job, on_commit fires at once
        job_id = _submit(live_grid, f="csv", time="2015-01-01/2015-01-12")  # ~3 M rows: several seconds
        job, seen = _wait(job_id, {"done", "failed"}, 240)
        assert job.status == "done", job.error
        assert any(status == "running" and 0 < progress < 1 for status, progress in seen), seen[-5:]
        assert services.job_file(job).stat().st_size == job.size and len(job.sha256) == 64
        SubsetJob.objects.filter(id=job_id).delete()


def test_a_killed_worker_leaves_a_failed_job_that_a_retry_finishes(
    live_grid, start_worker, django_db_blocker, settings
):
    settings.SUBSET_JOB_STALE_SECONDS = 3  # the worker writes a heartbeat every 0.5 s (service_env)
    worker = start_worker()
    with django_db_blocker.unblock():
        job_id = _submit(live_grid, f="csv")  # the whole grid, ~5 M rows
        _wait(job_id, {"running"}, 120)
        worker.kill()  # SIGKILL mid-job: no chance to record anything
        worker.wait(timeout=10)
        time.sleep(settings.SUBSET_JOB_STALE_SECONDS + 1)
        assert SubsetJob.objects.get(id=job_id).status == "running"  # nothing else noticed ...
        assert services.reap_stale_jobs() == 1  # ... until the reaper (status reads, beat) looks
        job = SubsetJob.objects.get(id=job_id)
        assert job.status == "failed" and "no heartbeat" in job.error
        services.retry_job(job)
        start_worker()
        job, _ = _wait(job_id, {"done", "failed"}, 300)
        assert job.status == "done" and job.attempt == 2, job.error
        SubsetJob.objects.filter(id=job_id).delete()


def test_a_running_job_cancelled_stops_at_its_next_heartbeat_and_leaves_no_file(
    live_grid, start_worker, django_db_blocker, settings
):
    from pathlib import Path

    start_worker()
    with django_db_blocker.unblock():
        job_id = _submit(live_grid, f="csv", time="2015-01-01/2015-01-19")  # ~5 M rows: many seconds
        try:
            _wait(job_id, {"running"}, 120)
            time.sleep(1.0)  # under way: some chunks written
            job = services.cancel_job(SubsetJob.objects.get(id=job_id))
            assert job.status == "cancelled"
            folder = Path(settings.DATA_ROOT) / "jobs" / str(job_id)
            deadline = time.monotonic() + 30  # the worker notices at its next heartbeat (0.5 s) and cleans up
            while folder.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not folder.exists(), list(folder.glob("*"))
            job = SubsetJob.objects.get(id=job_id)
            assert job.status == "cancelled" and not job.result_path and job.size is None
        finally:
            SubsetJob.objects.filter(id=job_id).delete()


def test_a_queued_job_cancelled_never_runs(live_grid, start_worker, django_db_blocker, settings):
    from pathlib import Path

    with django_db_blocker.unblock():
        job_id = _submit(live_grid, f="csv", bbox="0,0,1,1")  # queued: no worker yet
        try:
            assert services.cancel_job(SubsetJob.objects.get(id=job_id)).status == "cancelled"
            worker = start_worker()
            deadline = time.monotonic() + 60  # the worker takes the message and finds the job cancelled
            while "nothing to do" not in worker.log_path.read_text() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert "nothing to do (cancelled" in worker.log_path.read_text()
            job = SubsetJob.objects.get(id=job_id)
            assert job.status == "cancelled" and job.started_at is None
            assert not (Path(settings.DATA_ROOT) / "jobs" / str(job_id)).exists()
        finally:
            SubsetJob.objects.filter(id=job_id).delete()
