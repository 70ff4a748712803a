"""The detail page in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)."""

from __future__ import annotations

import shutil

import pytest

from products.models import ValidationResult
from products.registry import PRODUCTS
from tests.conftest import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db]


@pytest.fixture
def towers(et_run) -> int:
    """Towers validated in the published ET version (queried before Playwright starts: inside its
    greenlet the ORM would open a connection of its own that outlives the test)."""
    return ValidationResult.objects.filter(version=et_run.version, split="validation", scope="site").count()


def test_the_detail_page_renders_map_and_chart_without_errors(towers, page, portal_url, tmp_path):
    url = f"{portal_url}/datasets/{PRODUCTS['et_fusion'].dataset_id}/"
    page.goto(url)
    wait_until(page, "!!(window.portalChart && window.portalChart.data.datasets.length === 3)")
    page.wait_for_selector("#map .leaflet-land-pane path", state="attached")
    assert page.locator("#map .leaflet-land-pane path").count() >= 1  # Natural Earth land, drawn from world-atlas
    assert page.locator("#map .leaflet-overlay-pane path.leaflet-interactive").count() == towers + 1  # + the bbox
    land = page.locator("#map .leaflet-land-pane svg").bounding_box()
    assert land["width"] > 200 and land["height"] > 100
    points = page.evaluate("window.portalChart.data.datasets[2].data.filter(v => v !== null).length")
    assert points > 12
    box = page.locator("#series-chart").bounding_box()
    assert box["width"] > 300 and box["height"] > 200
    page.select_option("#station-select", "DE-Hai")
    wait_until(page, "window.portalChart.options.plugins.title.text === 'DE-Hai'")
    shot = tmp_path / "detail.png"
    page.screenshot(path=str(shot), full_page=True)
    shutil.copy(shot, "/tmp/portal-detail.png")
    assert shot.stat().st_size > 10_000
    assert page.problems == []


def test_the_list_page_searches_in_chinese(page, portal_url):
    page.goto(f"{portal_url}/")
    page.fill("input[name=q]", "蒸散发")
    with page.expect_navigation():
        page.click("form.search button[type=submit]")
    assert "q=" in page.url
    titles = page.locator(".card h2").all_inner_texts()
    assert len(titles) == 1 and "evapotranspiration" in titles[0].lower()
    assert page.problems == []
