"""The dataset page's map preview in headless Chromium against a real server, on the committed SYNTHETIC
0.5-degree grid of 20 days (``live_grid``): the map draws the image, the date changes it, a click shows the
clicked cell's series as a chart with the cell's centre and a download link."""

from __future__ import annotations

import shutil
import urllib.parse

import pytest

from tests.conftest import wait_until
from tests.grids import FT, committed_grid, grid_values

pytestmark = [pytest.mark.browser, pytest.mark.django_db]

IMAGE = "#map-preview-map img.map-data"


def _loaded(page) -> str:
    wait_until(
        page,
        f"(() => {{ const i = document.querySelector('{IMAGE}'); return i && i.complete && i.naturalWidth > 0; }})()",
    )
    return page.locator(IMAGE).get_attribute("src")


@pytest.fixture(scope="module")
def latest_grid(django_db_setup, django_db_blocker):
    """The same grid as ``live_grid``, made the LATEST freeze/thaw version for this module (the page maps the
    latest version; product tests of the same worker may have published real ones after ``live_grid``)."""
    with committed_grid(django_db_blocker, FT, days=20, step=0.5) as version:
        yield version


def test_the_map_draws_the_day_and_a_click_shows_the_series(page, portal_url, latest_grid, tmp_path):
    page.goto(f"{portal_url}/datasets/{FT}/")
    page.wait_for_selector("#map-preview-map .leaflet-land-pane path", state="attached")
    first = urllib.parse.parse_qs(urllib.parse.urlparse(_loaded(page)).query)
    assert first["time"] == ["2015-01-20"] and first["variable"] == ["sm"]  # the last step by default
    box = page.locator(IMAGE).bounding_box()
    assert box["width"] > 300 and box["height"] > 100
    wait_until(page, "document.querySelector('#map-legend').dataset.units === 'm3 m-3'")
    assert "m3 m-3" in page.locator("#map-legend").inner_text()

    page.fill("#map-controls input[name=date]", "2015-01-05")
    page.dispatch_event("#map-controls input[name=date]", "change")
    wait_until(page, "document.querySelector('#map-preview-map img.map-data').src.includes('time=2015-01-05')")
    second = urllib.parse.parse_qs(urllib.parse.urlparse(_loaded(page)).query)
    assert second["time"] == ["2015-01-05"] and second["bbox"] == first["bbox"]
    assert page.locator("#map-controls input[name=step]").input_value() == "4"

    # click the map's centre: the cell there, its series in the chart, the download link
    map_box = page.locator("#map-preview-map").bounding_box()
    page.locator("#map-preview-map").click(position={"x": map_box["width"] / 2, "y": map_box["height"] / 2})
    wait_until(page, "document.querySelector('#map-series-cell').textContent !== ''")
    assert "°" in page.locator("#map-series-cell").inner_text(), page.locator("#map-series-cell").inner_text()
    wait_until(page, "!!(window.portalMapChart && window.portalMapChart.data.datasets[0].data.length === 20)")
    cell = page.locator("#map-series-cell")
    lat, lon = float(cell.get_attribute("data-lat")), float(cell.get_attribute("data-lon"))
    assert abs(lat) < 10 and abs(lon) < 20 and (lat - 0.25) % 0.5 == 0 and (lon - 0.25) % 0.5 == 0
    values = page.evaluate("window.portalMapChart.data.datasets[0].data")
    assert values[4] == pytest.approx(grid_values(4, lat, lon), rel=1e-6)
    href = page.locator("#map-series-download").get_attribute("href")
    assert "/point/?" in href and "f=csv" in href
    assert page.locator("#map-series-chart").bounding_box()["height"] > 200

    shot = tmp_path / "map.png"
    page.screenshot(path=str(shot), full_page=True)
    shutil.copy(shot, "/tmp/portal-map-preview.png")
    assert page.evaluate("window.cspViolations") == []
    assert page.problems == []
