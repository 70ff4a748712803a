"""The Celery path with a real worker process, on the session's test database."""

from __future__ import annotations

import time

import pytest

from products.models import GenerationRun
from products.services import request_run
from tests.conftest import FEW_SITES, et_test_parameters

pytestmark = pytest.mark.worker


def _wait_for(run_id: int, timeout: float) -> GenerationRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = GenerationRun.objects.get(id=run_id)
        if not run.is_active:
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} still {run.status} after {timeout} s")


def test_a_queued_run_is_carried_out_by_a_real_worker(celery_worker, django_db_blocker):
    with django_db_blocker.unblock():  # autocommit: the worker sees the run, on_commit fires at once
        run = request_run("et_fusion", parameters={**et_test_parameters(), "sites": FEW_SITES[:6]})
        try:
            assert GenerationRun.objects.get(id=run.id).status in ("queued", "running")
            done = _wait_for(run.id, timeout=240)
            if celery_worker.poll() is not None:
                pytest.fail(celery_worker.log_path.read_text())
            assert done.status == "succeeded", done.error
            assert done.version is not None and done.version.files.filter(name="et_fusion_timeseries.nc").exists()
            assert done.validation_results.filter(split="validation", scope="pooled").count() == 1
            assert "published" in done.log and done.timings.get("tower_model", 0) > 0
        finally:
            version = GenerationRun.objects.get(id=run.id).version
            GenerationRun.objects.filter(id=run.id).delete()
            if version:
                version.delete()
