from django.apps import AppConfig


class MapsConfig(AppConfig):
    name = "portal.maps"
    label = "portal_maps"

    def ready(self) -> None:
        from . import tasks  # noqa: F401  registers the Celery task (beat runs it by name)
