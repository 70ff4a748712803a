from django.apps import AppConfig


class SubsetsConfig(AppConfig):
    name = "portal.subsets"
    label = "subsets"
    verbose_name = "Subset downloads"

    def ready(self) -> None:
        from . import tasks  # noqa: F401  registers the Celery tasks (services enqueue them by name: portal.queue)
