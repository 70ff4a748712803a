"""The OpenAPI schema documents the subset, series, job, observation and EDR endpoints; Swagger UI is self-hosted."""

from __future__ import annotations

import re

import pytest
import yaml

pytestmark = pytest.mark.django_db


def test_the_schema_documents_every_download_endpoint(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    paths = schema["paths"]
    for path in (
        "/api/datasets/{id}/subset/",
        "/api/datasets/{id}/point/",
        "/api/datasets/{id}/area/",
        "/api/jobs/",
        "/api/jobs/{id}/",
        "/api/jobs/{id}/download/",
        "/api/jobs/{id}/script/",
        "/api/jobs/{id}/retry/",
        "/api/observations/",
        "/api/edr/collections/{collection_id}/position",
    ):
        assert path in paths, path
    subset = {p["name"]: p for p in paths["/api/datasets/{id}/subset/"]["get"]["parameters"]}
    assert {"bbox", "polygon", "time", "variables", "f", "estimate", "time_stride"} <= set(subset)
    assert "antimeridian" in subset["bbox"]["description"]
    point = {p["name"]: p for p in paths["/api/datasets/{id}/point/"]["get"]["parameters"]}
    assert point["lon"]["required"] and point["lat"]["required"]
    assert "202" in paths["/api/datasets/{id}/subset/"]["get"]["responses"]


def test_swagger_ui_loads_only_the_portals_own_assets(client):
    html = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in html.lower()
    external = [u for u in re.findall(r'(?:src|href)="([^"]+)"', html) if u.startswith(("http:", "https:", "//"))]
    assert external == []
