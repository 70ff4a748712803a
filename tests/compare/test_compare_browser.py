"""Versions side by side in headless Chromium (Debian's chromium, Playwright) against a real server:
two versions of one record published (committed) through ``products.services.publish``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from products.models import GenerationRun
from tests.compare.test_compare import publish_real
from tests.conftest import wait_until
from tests.grids import FT
from tests.publishing import unpublish

SHOTS = Path(os.environ.get("SCREENSHOT_DIR", "/tmp/h_cmp_shots"))


@pytest.fixture(scope="module")
def committed_pair(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        pair = publish_real(FT, second=False), publish_real(FT, second=True)
    yield pair
    with django_db_blocker.unblock():
        for version in reversed(pair):
            unpublish(version)
        GenerationRun.objects.filter(
            dataset_id=FT, version__isnull=True, parameters__written_by="tests/compare"
        ).delete()


def test_compare_page_draws_the_chart_and_the_map(page, portal_url, committed_pair):
    v1, v2 = committed_pair
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{portal_url}/datasets/{FT}/")
    link = page.locator(f'#compare-versions a[data-a="{v1.number}"][data-b="{v2.number}"]')
    assert link.count() == 1
    # the subset form offers the older version and its requests carry it
    page.select_option("#subset-version", str(v1.number))
    assert page.evaluate("document.getElementById('subset-form').dataset.version") == str(v1.number)
    link.click()
    page.wait_for_selector("#compare-series")
    wait_until(page, "document.body.dataset.compareChart === 'ready'")
    wait_until(page, "document.getElementById('compare-map').complete")
    assert page.evaluate("document.getElementById('compare-map').naturalWidth") > 0
    assert page.evaluate("getComputedStyle(document.getElementById('compare-ramp')).backgroundImage").startswith(
        "linear-gradient"
    )
    assert page.evaluate("document.getElementById('compare-series').chart.data.datasets[0].data.length") == 4
    assert page.locator('#compare-sites-box tr[data-label="S1"][data-verdict="better"]').count() == 1
    page.screenshot(path=str(SHOTS / "compare_en.png"), full_page=True)
    assert page.problems == [] and page.evaluate("window.cspViolations") == []
