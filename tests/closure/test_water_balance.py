"""The closure page and API on SYNTHETIC published TWS and ET versions (through the real publish) and basin
observations in the database: the numbers against an independent computation, the sources named, bad
parameters (400), restricted datasets and networks (401/403), the dataset pages' section."""

from __future__ import annotations

import numpy as np
import pytest
from django.test import Client

from ingestion.models import Observation, Station
from portal.catalog.models import Dataset, DatasetVersion, NetworkAccess
from portal.closure import budget, services
from tests.closure.synthetic import BASINS, MONTHS, et_file, terms, tws_file
from tests.closure.test_budget import by_hand
from tests.conftest import make_user
from tests.publishing import publish_version

pytestmark = pytest.mark.django_db
TWS_ID, ET_ID = services.dataset_ids()


@pytest.fixture
def uncached(monkeypatch):
    """No closure answer is kept in the cache (timeout 0) during the test. (Not ``cache.clear()``: Redis's
    FLUSHDB would also empty the other test process's rate-limit counters, whatever their key prefix.)"""
    monkeypatch.setattr(services, "CACHE_SECONDS", 0)


@pytest.fixture
def published(django_db_setup, uncached):
    """Both versions published (inside the test's transaction) and P, R of the basins ingested as rows."""
    t = terms(3)
    tws = publish_version(TWS_ID, {services.TWS_FILE: tws_file(t)}, notes="synthetic")
    et = publish_version(ET_ID, {services.ET_FILE: et_file(t)}, notes="synthetic")
    rows = []
    for basin in BASINS:
        station = Station.objects.create(network=services.NETWORK, code=basin, name=basin)
        for variable, key in (("p_era5land", "p"), ("r_era5land", "r")):
            for time, value in t[key][basin].items():
                rows.append(
                    Observation(
                        station=station, variable=variable, time=time.tz_localize("UTC"), value=value, units="mm"
                    )
                )
    Observation.objects.bulk_create(rows)
    client = Client()
    client.force_login(make_user("closure@example.org"))
    yield {"terms": t, "tws": tws, "et": et, "client": client}


def test_the_api_gives_every_basin_and_region_with_the_numbers_and_sources(published):
    t = published["terms"]
    answer = published["client"].get("/api/water-balance/").json()
    storage, et = answer["sources"]["storage"], answer["sources"]["et"]
    assert (storage["dataset_id"], storage["version"], storage["file"], storage["variable"]) == (
        TWS_ID,
        published["tws"].number,
        "tws_rec_basins.nc",
        "tws_jpl",
    )
    assert storage["sha256"] == published["tws"].files.get().sha256
    assert (et["dataset_id"], et["version"], et["file"], et["variable"]) == (
        ET_ID,
        published["et"].number,
        "et_basin_reconstruction.nc",
        "et_era5land",
    )
    assert answer["sources"]["p"] == {
        "network": "GRDC-MRB",
        "variable": "p_era5land",
        "kind": "ingested basin observations",
    }
    assert answer["choices"]["et"] == ["et_era5land", "et_gleam"]  # the reconstructions are not offered
    assert answer["choices"]["storage"] == ["tws_jpl", "tws_jpl_rec"]  # nor a standard error
    rows = {row["name"]: row for row in answer["basins"]}
    assert set(rows) == set(BASINS) and rows["B1"]["region"] == "North"
    for basin in BASINS:
        _, stats = by_hand(*(t[k][basin].to_numpy() for k in ("p", "et", "r", "s")))
        for key in budget.STATISTICS:
            assert rows[basin][key] == pytest.approx(stats[key], rel=1e-9), (basin, key)
    assert [r["name"] for r in answer["regions"]] == ["North", "South", "All basins"]
    assert "series" not in answer


def test_one_basin_series_and_another_et_product(published):
    t = published["terms"]
    answer = published["client"].get("/api/water-balance/", {"basin": "B2", "et": "et_gleam"}).json()
    assert answer["sources"]["et"]["variable"] == "et_gleam"
    series = answer["series"]
    assert series["name"] == "B2" and series["kind"] == "basin" and len(series["time"]) == len(MONTHS)
    res, _ = by_hand(*(x["B2"].to_numpy() for x in (t["p"], t["et_gleam"], t["r"], t["s"])))
    got = np.array([np.nan if v is None else v for v in series["residual"]])
    np.testing.assert_allclose(got, res, rtol=1e-9, equal_nan=True)
    region = published["client"].get("/api/water-balance/", {"region": "All basins"}).json()["series"]
    assert region["kind"] == "region" and region["name"] == "All basins"


@pytest.mark.parametrize(
    "query, parameter",
    [
        ({"basin": "nowhere"}, "basin"),
        ({"region": "Atlantis"}, "region"),
        ({"basin": "B1", "region": "North"}, "basin"),
        ({"et": "et_era5land_rec"}, "et"),
        ({"storage": "precip"}, "storage"),
        ({"p": "p_unknown"}, "p"),
        ({"bbox": "1,2,3,4"}, "bbox"),
    ],
)
def test_bad_parameters_are_400_naming_them(published, query, parameter):
    response = published["client"].get("/api/water-balance/", query)
    assert response.status_code == 400
    assert response.json()["parameter"] == parameter and parameter in response.json()["detail"]
    page = published["client"].get("/water-balance/", query)
    assert page.status_code == 400 and parameter in page.content.decode()


def _share(dataset_id: str, share: str) -> None:
    Dataset.objects.filter(id=dataset_id).update(share_type=share, licence_acceptance=False)


@pytest.mark.parametrize("restricted", ["tws", "et"])
def test_a_restricted_dataset_does_not_leak(published, restricted):
    _share(TWS_ID, Dataset.ShareType.OPEN)
    _share(ET_ID, Dataset.ShareType.OPEN)
    _share(TWS_ID if restricted == "tws" else ET_ID, Dataset.ShareType.PROTECTED)
    # anonymous: 401; a verified user who never applied: 403; neither sees a number
    for client, code in ((Client(), 401), (published["client"], 403)):
        for query in ({}, {"basin": "B1"}):
            api = client.get("/api/water-balance/", query)
            assert api.status_code == code and "basins" not in api.json() and "series" not in api.json()
            page = client.get("/water-balance/", query).content.decode()
            assert 'id="closure-series"' not in page and 'id="closure-basins"' not in page


def test_the_tws_records_own_rule_holds_anonymous_users_out(published):
    # the TWS record is login-access in the catalog (ds_share_type): anonymous users read nothing
    assert Dataset.objects.get(id=TWS_ID).share_type == Dataset.ShareType.LOGIN
    response = Client().get("/api/water-balance/")
    assert response.status_code == 401 and response.json()["need"] == "login"


def test_the_series_of_a_closed_network_does_not_leak(published):
    _share(TWS_ID, Dataset.ShareType.OPEN)
    _share(ET_ID, Dataset.ShareType.OPEN)
    # GRDC-MRB carries no licence (portal/catalog/migrations/0003_access_rules.py): login-access
    assert NetworkAccess.objects.get(network="GRDC-MRB").share_type == Dataset.ShareType.LOGIN
    for query in ({"basin": "B1"}, {"region": "North"}):
        api = Client().get("/api/water-balance/", query)
        assert api.status_code == 401 and "GRDC-MRB" in api.json()["detail"] and "series" not in api.json()
        page = Client().get("/water-balance/", query)
        assert page.status_code == 401 and 'id="closure-series"' not in page.content.decode()
    # the statistics are aggregates (as the TWS product's own validation rows): open once both records are
    assert Client().get("/api/water-balance/").status_code == 200


@pytest.mark.django_db
def test_without_a_published_version_the_answer_is_404(uncached):
    # other tests of the session may have published TWS versions (committed): none here, in this transaction;
    # both records open, so that the answer is about the missing version, not about access
    DatasetVersion.objects.filter(dataset_id=TWS_ID).delete()
    Dataset.objects.filter(id__in=[TWS_ID, ET_ID]).update(share_type=Dataset.ShareType.OPEN)
    response = Client().get("/api/water-balance/")
    assert response.status_code == 404 and "tws_rec" in response.json()["detail"]
    assert Client().get("/water-balance/").status_code == 404


def test_the_page_lists_basins_regions_and_charts_the_chosen_one(published):
    html = published["client"].get("/water-balance/", {"basin": "B3"}).content.decode()
    for text in (
        'id="closure-basins"',
        'id="closure-regions"',
        'id="closure-chart"',
        'id="closure-series"',
        "tws_rec_basins.nc",
        "et_basin_reconstruction.nc",
        "p_era5land",
        "r_era5land",
        "?basin=B4",
    ):
        assert text in html, text
    zh = published["client"].get("/water-balance/", headers={"accept-language": "zh-hans"}).content.decode()
    assert "水量平衡" in zh


def test_the_tws_and_et_pages_link_to_the_closure_and_others_do_not(published):
    for dataset_id in (TWS_ID, ET_ID):
        html = Client().get(f"/datasets/{dataset_id}/").content.decode()
        assert 'id="water-balance-closure"' in html and 'href="/water-balance/"' in html
    other = Dataset.objects.exclude(id__in=[TWS_ID, ET_ID]).first()
    assert 'id="water-balance-closure"' not in Client().get(f"/datasets/{other.id}/").content.decode()
