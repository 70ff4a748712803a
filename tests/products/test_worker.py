"""The Celery path with a real worker process, on the session's test database."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.db import connection

from products.models import GenerationRun
from products.services import request_run
from tests.conftest import FEW_SITES

pytestmark = pytest.mark.worker


@pytest.fixture
def celery_worker(django_db_setup, test_broker):
    db = connection.settings_dict
    env = dict(os.environ, DATABASE_URL=f"postgis://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
               CELERY_BROKER_URL=test_broker, DATA_ROOT=str(settings.DATA_ROOT),
               SHARED_DATA_DIR=str(settings.SHARED_DATA_DIR))
    proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool=solo",
                             "--loglevel=INFO", "--without-heartbeat", "--without-mingle", "--without-gossip"],
                            cwd=settings.BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


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
        run = request_run("et_fusion", parameters={"sites": FEW_SITES[:6], "n_splits": 3})
        try:
            assert GenerationRun.objects.get(id=run.id).status in ("queued", "running")
            done = _wait_for(run.id, timeout=240)
            if celery_worker.poll() is not None:
                pytest.fail(celery_worker.stdout.read())
            assert done.status == "succeeded", done.error
            assert done.version is not None and done.version.files.count() == 1
            assert done.validation_results.filter(split="validation", scope="pooled").count() == 1
            assert "published" in done.log and done.timings.get("fit_and_cross_validate", 0) > 0
        finally:
            version = GenerationRun.objects.get(id=run.id).version
            GenerationRun.objects.filter(id=run.id).delete()
            if version:
                version.delete()
