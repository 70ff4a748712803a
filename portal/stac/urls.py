"""STAC API routes, mounted at ``/api/stac/`` (paths as in the STAC API, no final slash)."""

from django.urls import re_path

from . import views

app_name = "stac"

_SEGMENT = r"[^/\x00]+"  # no NUL: PostgreSQL text cannot hold it (a 404, not a 500)

urlpatterns = [
    re_path(r"^$", views.landing, name="landing"),
    re_path(r"^conformance$", views.conformance, name="conformance"),
    re_path(r"^collections$", views.collections, name="collections"),
    re_path(rf"^collections/(?P<collection_id>{_SEGMENT})$", views.collection, name="collection"),
    re_path(rf"^collections/(?P<collection_id>{_SEGMENT})/items$", views.items, name="items"),
    re_path(rf"^collections/(?P<collection_id>{_SEGMENT})/items/(?P<item_id>{_SEGMENT})$", views.item, name="item"),
    re_path(r"^search$", views.search, name="search"),
    re_path(
        rf"^stores/(?P<dataset_id>{_SEGMENT})/v(?P<number>[0-9]{{1,9}})/(?P<name>{_SEGMENT})/"
        r"(?P<layout>map|series)\.zarr/(?P<key>[^\x00]+)$",
        views.store,
        name="store",
    ),
]
