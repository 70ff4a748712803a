from django.apps import AppConfig


class CompareConfig(AppConfig):
    name = "portal.compare"
    label = "portal_compare"
