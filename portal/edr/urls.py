"""OGC API - Environmental Data Retrieval, mounted at ``/api/edr/``.

Paths as in the standard (no final slash); the same paths with a final slash are served too but
left out of the OpenAPI document.
"""

from django.urls import re_path

from . import views

app_name = "edr"

_ID = r"(?P<collection_id>[^/\x00]+)"  # no NUL: PostgreSQL text cannot hold it (a 404, not a 500)

_ROUTES = [
    ("conformance", views.Conformance, "conformance"),
    ("collections", views.Collections, "collections"),
    (f"collections/{_ID}", views.Collection, "collection"),
    (f"collections/{_ID}/position", views.Position, "position"),
    (f"collections/{_ID}/area", views.Area, "area"),
    (f"collections/{_ID}/cube", views.Cube, "cube"),
]

urlpatterns = [
    re_path(r"^$", views.LandingPage.as_view(), name="landing"),
    *(re_path(rf"^{route}$", view.as_view(), name=name) for route, view, name in _ROUTES),
    *(re_path(rf"^{route}/$", view.as_view(schema=None)) for route, view, _ in _ROUTES),
]
