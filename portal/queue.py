"""Handing work to Celery after the database transaction that recorded it commits.

Services record a row (a generation run, a subset job) and call :func:`enqueue_on_commit` with
the task's registered name, so they never import the task modules (which import the services:
``tasks → services``, one way). The task runs only once its row is visible to the worker; a
rolled-back transaction sends nothing (the idea of pretix's ``TransactionAwareTask``).

Each task claims its row with a conditional ``UPDATE ... WHERE status = 'queued'`` and checks the
row count, so a message delivered twice does the work once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from celery import current_app
from django.db import transaction
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)

RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5}


def enqueue_on_commit(task_name: str, args: Sequence, *, on_unavailable: Callable[[Exception], None]) -> None:
    """Send Celery task ``task_name`` with ``args`` once the current transaction commits (at once outside one).

    Parameters
    ----------
    task_name : str
        The task's registered name (``@shared_task(name=...)``); the task modules register
        themselves when Django starts (each app's ``AppConfig.ready``).
    args : sequence
        JSON-serialisable positional arguments of the task.
    on_unavailable : callable
        Called with the exception when the broker cannot be reached after a short, bounded
        retry; it marks the row failed with the reason (so nothing stays queued for ever) and
        may raise to tell the caller.

    Raises
    ------
    KeyError
        No task of that name is registered (a programming error, found by the tests).
    """
    task = current_app.tasks[task_name]  # looked up now: a wrong name fails in the request, not after the commit

    def send() -> None:
        try:
            task.apply_async(tuple(args), retry=True, retry_policy=RETRY_POLICY)
        except (OperationalError, OSError) as exc:
            logger.error("%s%s: the broker is unavailable: %s", task_name, tuple(args), exc)
            on_unavailable(exc)

    transaction.on_commit(send)
