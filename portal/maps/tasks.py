"""Celery task of the map previews (thin: the work is in :mod:`portal.maps.services`).

Registered when Django starts (:class:`portal.maps.apps.MapsConfig` imports this module); run by
Celery beat (``CELERY_BEAT_SCHEDULE``), with soft and hard time limits from settings.
"""

from celery import shared_task
from django.conf import settings

from . import services


@shared_task(
    name="maps.housekeeping",
    soft_time_limit=settings.MAPS_HOUSEKEEPING_SOFT_TIME_LIMIT_SECONDS,
    time_limit=settings.MAPS_HOUSEKEEPING_TIME_LIMIT_SECONDS,
)
def housekeeping() -> dict:
    """:func:`services.housekeeping`: caches of files no version holds removed, missing quicklooks drawn
    (idempotent: two passes at once only draw an image twice, each written atomically)."""
    return services.housekeeping()
