"""OGC API - Records under ``/api/records/``: paths as in the standard (no final slash; the same
paths with a final slash are served too)."""

from django.urls import re_path

from . import views

app_name = "records"

_CATALOG = r"(?P<collection_id>[^/\x00]+)"  # no NUL: PostgreSQL text cannot hold it (a 404, not a 500)
_RECORD = r"(?P<record_id>[^/\x00]+)"

_ROUTES = [
    ("conformance", views.conformance, "conformance"),
    ("openapi", views.definition, "openapi"),
    ("collections", views.collections, "collections"),
    (f"collections/{_CATALOG}", views.collection, "collection"),
    (f"collections/{_CATALOG}/items", views.items, "items"),
    (f"collections/{_CATALOG}/items/{_RECORD}", views.item, "item"),
    (f"collections/{_CATALOG}/queryables", views.queryables, "queryables"),
    (f"collections/{_CATALOG}/sortables", views.sortables, "sortables"),
]

urlpatterns = [
    re_path(r"^$", views.landing, name="landing"),
    *(re_path(rf"^{route}$", view, name=name) for route, view, name in _ROUTES),
    *(re_path(rf"^{route}/$", view) for route, view, _ in _ROUTES),
]
