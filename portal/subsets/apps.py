from django.apps import AppConfig


class SubsetsConfig(AppConfig):
    name = "portal.subsets"
    label = "subsets"
    verbose_name = "Subset downloads"
