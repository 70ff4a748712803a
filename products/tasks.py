"""Celery tasks: thin wrappers over :mod:`products.services`, which enqueues them by name (``products.generate``).

The claim is :func:`products.services.execute_run`'s conditional UPDATE (a duplicate delivery does
nothing); the time limits end a run that hangs (soft: the run is marked failed with the reason).
"""

from celery import shared_task
from django.db import OperationalError

from . import services


@shared_task(
    name=services.GENERATE_TASK,
    bind=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    soft_time_limit=3000,
    time_limit=3600,
    acks_late=True,
)
def generate_product(self, run_id: int) -> str:
    """Carry out GenerationRun ``run_id`` (claimed atomically: a duplicate delivery does nothing).

    Returns
    -------
    str
        The run's final status (``succeeded``, ``failed``, or unchanged when it was already claimed).
    """
    return services.execute_run(run_id).status
