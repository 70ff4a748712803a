"""Celery application: broker and settings come from Django settings (``CELERY_*``).

Tasks are routed by name to the queues of ``settings.WORKER_QUEUES`` (generation, subset jobs,
housekeeping; anything unrouted to the default queue): ``CELERY_TASK_ROUTES``, ``CELERY_TASK_QUEUES``.
A worker started on one of them (``celery -A portal worker -Q generation``) takes that queue's
concurrency and soft/hard time limits (:func:`queue_options`), so that ``make run`` and a second host
start a queue's worker with the same command and the settings (environment) of that host decide its size.
"""

from __future__ import annotations

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# the worker options a queue sets, as (WORKER_QUEUES key, worker option, Celery setting it falls back to)
QUEUE_WORKER_OPTIONS = (
    ("concurrency", "concurrency", "worker_concurrency"),
    ("soft_time_limit", "soft_time_limit", "task_soft_time_limit"),
    ("time_limit", "time_limit", "task_time_limit"),
)


def queue_options(queues) -> dict | None:
    """The ``settings.WORKER_QUEUES`` entry of the first of ``queues`` (a worker's ``-Q``) that names one.

    Parameters
    ----------
    queues : sequence of str or None
        The queue names a worker consumes, in the order given on its command line (None or empty:
        every queue, as the test suite's worker and a single-process setup run).

    Returns
    -------
    dict or None
        ``{"queue", "concurrency", "soft_time_limit", "time_limit"}`` (seconds) of that queue; None when
        the worker consumes every queue or none of the named ones is in ``WORKER_QUEUES``.
    """
    from django.conf import settings

    by_name = {options["queue"]: options for options in settings.WORKER_QUEUES.values()}
    for name in queues or ():
        if name in by_name:
            return by_name[name]
    return None


@signals.celeryd_init.connect
def apply_queue_options(sender=None, conf=None, options=None, **kwargs) -> None:
    """Give a worker started on a queue (``-Q``) that queue's concurrency and time limits.

    Runs in the worker before it reads its settings (``celeryd_init``); an option given on the command line
    (``--concurrency``, ``--soft-time-limit``, ``--time-limit``) wins over the queue's. A worker consuming
    several queues (``make run``'s ``-Q housekeeping,default``) takes those of the first it names. The time
    limits are the worker's defaults: a task with limits of its own keeps them (Celery's rule).
    """
    chosen = queue_options((options or {}).get("queues"))
    if chosen is None:
        return
    for key, option, setting in QUEUE_WORKER_OPTIONS:
        if (options or {}).get(option) is None:
            conf[setting] = chosen[key]
