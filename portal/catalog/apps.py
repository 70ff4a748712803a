from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class CatalogConfig(AppConfig):
    name = "portal.catalog"
    label = "catalog"
    verbose_name = "Catalog"

    def ready(self):
        from .models import DatasetVersion  # here: the models can be imported once the apps are loaded

        # A version created (products.services.publish, in its transaction) or deleted (the admin, a cascade,
        # a test cleaning up) changes its record's "published" facet, whoever does it.
        post_save.connect(_version_changed, sender=DatasetVersion, dispatch_uid="search-version-saved")
        post_delete.connect(_version_changed, sender=DatasetVersion, dispatch_uid="search-version-deleted")


def _version_changed(sender, instance, **kwargs):
    from . import search  # here: the search imports the models, which this module is loaded before

    search.index_datasets([instance.dataset_id])
