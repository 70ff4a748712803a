"""The validation browser in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright), on the
session's real ET version: markers coloured by the chosen metric, a table that sorts, a station's charts."""

from __future__ import annotations

import shutil

import pytest

from products.models import ValidationResult
from tests.conftest import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db]


@pytest.fixture
def et_version(et_run) -> dict:
    """What the page should show (queried before Playwright starts: inside its greenlet the ORM would open a
    connection of its own that outlives the test)."""
    version = et_run.version
    sites = ValidationResult.objects.filter(version=version, scope="site")
    code = sites.filter(split="validation").order_by("label").values_list("label", flat=True).first()
    return {
        "path": f"/datasets/{version.dataset_id}/v{version.number}/validation/",
        "markers": sites.filter(station__geom__isnull=False).count(),
        "rows": sites.count(),
        "code": code,
    }


FILLS = (
    "Array.from(document.querySelectorAll('#validation-map path.validation-marker')).map(p => p.getAttribute('fill'))"
)
COLUMN = (
    "(i) => Array.from(document.querySelectorAll('#station-table tbody tr'))"
    ".map(r => r.cells[i].dataset.value).filter(v => v !== '').map(Number)"
)


def test_the_map_colours_markers_by_the_metric_and_the_table_sorts(et_version, page, portal_url, tmp_path):
    page.goto(portal_url + et_version["path"])
    page.wait_for_selector("#validation-map .leaflet-land-pane path", state="attached")
    assert page.locator("#validation-map path.validation-marker").count() == et_version["markers"] > 3
    kge = page.evaluate(FILLS)
    assert len(set(kge)) > 2  # coloured by value, not one colour
    values = page.evaluate(
        "Array.from(document.querySelectorAll('#validation-map path.validation-marker'))"
        ".map(p => [p.dataset.value, p.getAttribute('fill')])"
    )
    best = max((float(v), f) for v, f in values if v)
    worst = min((float(v), f) for v, f in values if v)
    assert best[1] == "rgb(33, 102, 172)" and worst[1] == "rgb(178, 24, 43)"  # blue best, red worst KGE
    page.select_option("#metric-select", "ubrmse")
    wait_until(page, "window.validationMapMetric === 'ubrmse'")
    assert page.evaluate(FILLS) != kge and page.locator("#validation-legend[data-metric='ubrmse']").count() == 1
    values = page.evaluate(
        "Array.from(document.querySelectorAll('#validation-map path.validation-marker'))"
        ".map(p => [p.dataset.value, p.getAttribute('fill')])"
    )
    assert min((float(v), f) for v, f in values if v)[1] == "rgb(33, 102, 172)"  # smallest error is best

    assert page.locator("#station-table tbody tr").count() == et_version["rows"]
    r_column = 7
    page.click("#station-table th[data-key='r']")
    ascending = page.evaluate(COLUMN, r_column)
    assert ascending == sorted(ascending) and len(ascending) > 3
    page.click("#station-table th[data-key='r']")
    assert page.evaluate(COLUMN, r_column) == sorted(ascending, reverse=True)
    assert page.get_attribute("#station-table th[data-key='r']", "aria-sort") == "descending"
    page.click("#station-table th[data-key='label']")
    labels = page.evaluate("Array.from(document.querySelectorAll('#station-table tbody tr')).map(r => r.dataset.label)")
    assert labels == sorted(labels, key=lambda s: s.lower()) or labels == sorted(labels)
    shot = tmp_path / "validation.png"
    page.screenshot(path=str(shot), full_page=True)
    shutil.copy(shot, "/tmp/portal-validation.png")
    assert page.problems == [] and page.evaluate("window.cspViolations") == []


def test_a_station_page_draws_its_series_and_scatter_with_the_one_to_one_line(et_version, page, portal_url, tmp_path):
    page.goto(f"{portal_url}{et_version['path']}stations/{et_version['code']}/")
    wait_until(page, "window.validationCharts && window.validationCharts.length >= 2")
    scatter = page.evaluate(
        "window.validationCharts.filter(c => c.config.type === 'scatter').map(c => "
        "[c.data.datasets[0].data.length, c.data.datasets[1].data])"
    )
    points, line = scatter[0]
    assert points > 3 and line[0]["x"] == line[0]["y"] and line[1]["x"] == line[1]["y"] > line[0]["x"]
    shot = tmp_path / "station.png"
    page.screenshot(path=str(shot), full_page=True)
    shutil.copy(shot, "/tmp/portal-validation-station.png")
    assert page.problems == [] and page.evaluate("window.cspViolations") == []
