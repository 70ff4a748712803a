"""Celery tasks of the subset service (thin: the work is in :mod:`portal.subsets.services`).

The services enqueue them by name (:func:`portal.queue.enqueue_on_commit`) and never import this
module; :class:`portal.subsets.apps.SubsetsConfig` imports it when Django starts, which registers
the tasks. Each has a soft and a hard time limit from settings: the soft one raises
``SoftTimeLimitExceeded`` in the task (a job records it as its failure), the hard one kills it.
"""

from celery import shared_task
from django.conf import settings

from . import services


@shared_task(
    name="subsets.run_job",
    acks_late=False,
    soft_time_limit=settings.SUBSET_JOB_SOFT_TIME_LIMIT_SECONDS,
    time_limit=settings.SUBSET_JOB_TIME_LIMIT_SECONDS,
)
def run_subset_job(job_id: str, attempt: int) -> str:
    """Run attempt ``attempt`` of subset job ``job_id``; returns its final status.

    :func:`services.run_job` claims the job with a conditional UPDATE (queued with this attempt →
    running), so a message delivered twice runs the job once. ``acks_late=False``: a message is
    not redelivered after a worker dies mid-job; the job is marked failed by
    :func:`services.reap_stale_jobs` and the user retries it.
    """
    return services.run_job(job_id, attempt).status


@shared_task(
    name="subsets.housekeeping",
    soft_time_limit=settings.SUBSET_HOUSEKEEPING_SOFT_TIME_LIMIT_SECONDS,
    time_limit=settings.SUBSET_HOUSEKEEPING_TIME_LIMIT_SECONDS,
)
def housekeeping() -> dict:
    """:func:`services.housekeeping` (periodic, Celery beat).

    It claims no row: each of its steps is one conditional UPDATE (stale running jobs → failed)
    or deletes files and marks jobs expired by id, so two passes at once do no harm.
    """
    return services.housekeeping()
