from django.apps import AppConfig
from django.db.models.signals import post_delete


class CatalogConfig(AppConfig):
    name = "portal.catalog"
    label = "catalog"
    verbose_name = "Catalog"

    def ready(self):
        from .models import DatasetVersion

        # Publishing re-indexes in its own transaction (products.services.publish); a version deleted
        # (the admin, a cascade, a test cleaning up) must take the "published" facet with it, whoever deletes it.
        post_delete.connect(_version_deleted, sender=DatasetVersion, dispatch_uid="search-version-deleted")


def _version_deleted(sender, instance, **kwargs):
    from . import search

    search.index_datasets([instance.dataset_id])
