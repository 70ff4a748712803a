from django.apps import AppConfig


class ProductsConfig(AppConfig):
    name = "products"
    verbose_name = "Products"

    def ready(self) -> None:
        from . import tasks  # noqa: F401  registers the Celery tasks (services enqueue them by name: portal.queue)
