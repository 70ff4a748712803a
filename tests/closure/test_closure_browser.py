"""The closure page in headless Chromium on the live server: SYNTHETIC published TWS and ET versions and basin
rows, committed so that the server sees them (removed afterwards, the records' and network's rules restored)."""

from __future__ import annotations

import pytest

from ingestion.models import Observation, Station
from portal.catalog.models import Dataset, NetworkAccess
from portal.closure import services
from tests.closure.synthetic import BASINS, et_file, terms, tws_file
from tests.conftest import wait_until
from tests.publishing import publish_version, unpublish

pytestmark = pytest.mark.browser
TWS_ID, ET_ID = services.dataset_ids()


@pytest.fixture(scope="module")
def committed(django_db_blocker, service_env):
    """Committed (outside any test transaction): the live server is another process."""
    t = terms(5)
    with django_db_blocker.unblock():
        shares = dict(Dataset.objects.filter(id__in=[TWS_ID, ET_ID]).values_list("id", "share_type"))
        network = NetworkAccess.objects.get(network=services.NETWORK).share_type
        versions = [
            publish_version(TWS_ID, {services.TWS_FILE: tws_file(t)}),
            publish_version(ET_ID, {services.ET_FILE: et_file(t)}),
        ]
        # open for this test only, so that an anonymous browser sees the series
        Dataset.objects.filter(id__in=[TWS_ID, ET_ID]).update(share_type=Dataset.ShareType.OPEN)
        NetworkAccess.objects.filter(network=services.NETWORK).update(share_type=Dataset.ShareType.OPEN)
        stations = [Station.objects.create(network=services.NETWORK, code=b, name=b) for b in BASINS]
        Observation.objects.bulk_create(
            Observation(station=s, variable=v, time=time.tz_localize("UTC"), value=value, units="mm")
            for s in stations
            for v, key in (("p_era5land", "p"), ("r_era5land", "r"))
            for time, value in t[key][s.code].items()
        )
    yield versions
    with django_db_blocker.unblock():
        Station.objects.filter(id__in=[s.id for s in stations]).delete()
        # the rules first: unpublishing rebuilds the records' search documents, which must carry them again
        for dataset_id, share in shares.items():
            Dataset.objects.filter(id=dataset_id).update(share_type=share)
        NetworkAccess.objects.filter(network=services.NETWORK).update(share_type=network)
        for version in versions:
            unpublish(version)


def test_the_page_draws_the_chosen_basins_residual_with_the_portals_own_assets(committed, page, portal_url):
    page.goto(f"{portal_url}/water-balance/?basin=B2")
    wait_until(page, "document.getElementById('closure-chart')?.dataset.ready === '1'")
    datasets = page.evaluate("document.getElementById('closure-chart').chart.data.datasets.map(d => d.data.length)")
    assert len(datasets) == 3 and len(set(datasets)) == 1 and datasets[0] == 72
    assert page.locator("#closure-basins tbody tr").count() == len(BASINS)
    assert page.locator("#closure-regions tbody tr").count() == 3  # North, South, All basins
    assert "tws_rec_basins.nc" in page.locator("#closure-sources").inner_text()
    page.screenshot(path="/tmp/closure-page.png", full_page=True)  # to look at
    href = page.locator("#closure-regions a", has_text="North").get_attribute("href")
    page.goto(f"{portal_url}/water-balance/{href}")
    wait_until(page, "document.getElementById('closure-chart')?.dataset.ready === '1'")
    assert "North" in page.locator("#closure-series-title").inner_text()
    assert page.evaluate("window.cspViolations") == [] and page.problems == []
