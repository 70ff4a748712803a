from django.apps import AppConfig


class ClosureConfig(AppConfig):
    name = "portal.closure"
    label = "portal_closure"
