"""The dataset page's map can show any published version (``?map_version=``), says when it is superseded,
and falls back to the latest on a value that names no version (a page never answers 400 or 500 for it)."""

from __future__ import annotations

import json
import re

import pytest

from tests.grids import FT, publish_grid

pytestmark = pytest.mark.django_db


def _config(html: str) -> dict:
    return json.loads(re.search(r'<script id="map-config" type="application/json">(.*?)</script>', html, re.S).group(1))


def test_the_page_map_shows_the_chosen_version(client, django_db_setup):
    earlier = publish_grid(FT, days=4)
    latest = publish_grid(FT, days=2)
    page = client.get(f"/datasets/{FT}/").content.decode()
    assert _config(page)["version"] == latest.number and 'name="map_version"' in page
    chosen = client.get(f"/datasets/{FT}/", {"map_version": earlier.number}).content.decode()
    config = _config(chosen)
    assert config["version"] == earlier.number and len(config["layers"][0]["times"]) == 4
    assert config["latest"] == latest.number and latest.number in config["choices"]
    section = chosen.split('id="map-preview"')[1].split("</section>")[0]
    assert f'data-superseded-by="{latest.number}"' in section
    for bad in ("abc", "999999", "-1", "1' or 1=1"):
        response = client.get(f"/datasets/{FT}/", {"map_version": bad})
        assert response.status_code == 200 and _config(response.content.decode())["version"] == latest.number
