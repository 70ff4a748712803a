from django.apps import AppConfig


class MapsConfig(AppConfig):
    name = "portal.maps"
    label = "portal_maps"
