from django.apps import AppConfig


class ValidationConfig(AppConfig):
    name = "portal.validation"
    label = "portal_validation"
