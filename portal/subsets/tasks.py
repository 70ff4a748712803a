"""Celery tasks of the subset service (thin: the work is in :mod:`portal.subsets.services`)."""
from celery import shared_task

from . import services


@shared_task(name="subsets.run_job", acks_late=False)
def run_subset_job(job_id: str, attempt: int) -> str:
    """Run attempt ``attempt`` of subset job ``job_id``; returns its final status.

    ``acks_late=False``: a message is not redelivered after a worker dies mid-job; the job is
    marked failed by :func:`services.reap_stale_jobs` and the user retries it.
    """
    return services.run_job(job_id, attempt).status


@shared_task(name="subsets.housekeeping")
def housekeeping() -> dict:
    """:func:`services.housekeeping` (periodic, Celery beat)."""
    return services.housekeeping()
