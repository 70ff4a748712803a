"""Celery tasks: thin wrappers over products.services."""
from celery import shared_task
from django.db import OperationalError

from . import services


@shared_task(bind=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3,
             soft_time_limit=3000, time_limit=3600, acks_late=True)
def generate_product(self, run_id: int) -> str:
    """Carry out GenerationRun ``run_id`` (claimed atomically: a duplicate delivery does nothing)."""
    return services.execute_run(run_id).status
