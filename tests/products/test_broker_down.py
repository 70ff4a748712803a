"""A regeneration requested while the broker is down: a clear error, and the run failed, not stuck "queued"."""

from __future__ import annotations

import socket

import pytest

from portal.celery import app
from products.models import GenerationRun
from products.registry import PRODUCTS
from products.services import RunError, request_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker_down(settings):
    """Point the Celery app (it reads Django's settings) at a port where nothing listens, then back;
    its connection pools are rebuilt each time."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
    app._pool = None
    app.amqp._producer_pool = None
    try:
        yield
    finally:
        app._pool = None
        app.amqp._producer_pool = None


def test_a_run_requested_with_the_broker_down_fails_with_the_reason(broker_down, django_capture_on_commit_callbacks):
    with pytest.raises(RunError, match="task queue is unavailable"):
        with django_capture_on_commit_callbacks(execute=True):
            request_run("et_fusion")
    run = GenerationRun.objects.latest("created_at")
    assert (run.product, run.status) == ("et_fusion", GenerationRun.Status.FAILED)
    assert "request the run again" in run.error and run.finished_at is not None
    assert run.dataset_id == PRODUCTS["et_fusion"].dataset_id
