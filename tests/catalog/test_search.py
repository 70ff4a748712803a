"""The catalogue search (portal.catalog.search) on the five real records: every dataset is found from
the words of its title in either language, with a typo, by abbreviation, by a box and by a period; facets
count in both languages; the page and the API take the same filters; the map draws a box in Chromium."""

from __future__ import annotations

import re

import pytest
from django.utils import translation

from portal.catalog import search
from portal.catalog.models import Dataset, SearchDocument, Tag
from products.registry import PRODUCTS
from tests.conftest import wait_until

pytestmark = pytest.mark.django_db

ET, SM, FT, TWS, SM1 = (PRODUCTS[k].dataset_id for k in ("et_fusion", "sm_mlda", "freeze_thaw", "tws_rec", "sm_1km"))
ALL = {ET, SM, FT, TWS, SM1}


@pytest.fixture(autouse=True)
def fresh_answers(monkeypatch):
    """Tests roll their writes back (no commit, so no new search generation): no cached answer crosses tests."""
    monkeypatch.setattr(search, "_cache_down_until", 0.0)  # the cache is up here
    search._bump_generation()
    yield
    search._bump_generation()


def ids(**query) -> list[str]:
    return [d.id for d in search.search(search.parse({k: [v] for k, v in query.items()})).datasets]


def api(client, **query) -> dict:
    response = client.get("/api/datasets/", query)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize("dataset_id", sorted(ALL))
def test_every_record_is_found_first_by_its_title_in_either_language(dataset_id):
    d = Dataset.objects.get(id=dataset_id)
    for title in (d.title_en, d.title_cn):
        assert ids(q=title)[0] == dataset_id, title


@pytest.mark.parametrize("dataset_id", sorted(ALL))
def test_a_misspelt_title_word_still_finds_the_record(dataset_id):
    d = Dataset.objects.get(id=dataset_id)
    word = max(re.findall(r"[A-Za-z]{7,}", d.title_en), key=len)
    typo = word[:3] + word[4:]  # one letter dropped: "evapotranspration", "Reconstuction", ...
    result = search.search(search.parse({"q": [typo]}))
    assert dataset_id in [r.id for r in result.datasets], (typo, result.corrected)
    assert result.corrected or result.fallback  # the page says the words were corrected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ET", {ET}),
        ("SM", {SM, SM1}),
        ("TWS", {TWS}),
        ("TWSA", {TWS}),
        ("GRACE", {TWS}),
        ("FT", {FT}),
        ("LightGBM", {ET, SM}),
        ("土壤水分", {SM, SM1}),
        ("土壤 水分", {SM, SM1}),
        ("冻融", {FT}),
        ("蒸散发", {ET}),
        ("evapotranspration", {ET}),
        ("soil moisture global", {SM, SM1}),
        ("ＧＲＡＣＥ", {TWS}),  # full-width letters
    ],
)
def test_words_abbreviations_and_typos_find_exactly_the_records_that_hold_them(query, expected):
    assert set(ids(q=query)) == expected


def test_et_no_longer_matches_every_et_al():
    # "et" of "et al." is in many abstracts: the abbreviation counts only in titles and keywords
    Dataset.objects.create(
        id="cites-others",
        title_en="Snow depth of the Alps",
        abstract_en="<p>As in Zhang et al. (2020), snow depth is mapped.</p>",
    )
    Dataset.objects.create(
        id="et-in-abstract",
        title_en="Flux tower records",
        abstract_en="<p>Latent heat and evapotranspiration at towers.</p>",
    )
    search.index_datasets(["cites-others", "et-in-abstract"])
    assert SearchDocument.objects.filter(dataset_id="cites-others").exists()
    found = ids(q="ET")
    assert "cites-others" not in found and {ET, "et-in-abstract"} <= set(found)
    assert "cites-others" in ids(q="Zhang")


def test_box_and_period_filters_with_antimeridian_and_facets_combined():
    assert set(ids(bbox="80,30,90,35")) == ALL  # the plateau: the four global records and the plateau's own
    assert set(ids(bbox="-100,30,-90,35")) == ALL - {FT}  # North America: not the plateau
    assert set(ids(bbox="170,-10,-170,10")) == ALL - {FT}  # across the antimeridian
    assert set(ids(bbox="106,20,120,24")) == ALL - {FT}  # just east and south of the plateau's box
    assert set(ids(time="1940/1945")) == {TWS}
    assert FT not in ids(time="2021-01-01/..")  # the plateau record ends in 2020
    assert set(ids(time="2015")) == ALL
    params = search.parse(
        {"q": ["soil"], "bbox": ["80,30,90,35"], "time": ["2016/2017"], "temporal_resolution": ["daily"]}
    )
    assert {d.id for d in search.search(params).datasets} == {SM, SM1, FT}


def test_facets_count_in_both_languages_and_filter_with_alternatives():
    result = search.search(search.parse({}))
    facets = {f.name: {v.key: v.count for v in f.values} for f in result.facets}
    assert facets["category"] == {"水文": 4, "冰冻圈": 1}
    assert facets["variable"]["volume_fraction_of_condensed_water_in_soil"] == 2
    assert facets["spatial_resolution"] == {"0.1°": 1, "0.25°": 1, "25 km": 1, "1 km": 1}
    assert facets["format"] == {"NetCDF": 1, "XLSX": 1, "GeoTIFF": 1, "HDF5": 1}
    with translation.override("en"):
        labels = {v.label for f in search.search(search.parse({})).facets if f.name == "keyword" for v in f.values}
    assert {"soil moisture", "evapotranspiration", "global"} <= labels and "全球" not in labels
    with translation.override("zh-hans"):
        labels = {v.label for f in search.search(search.parse({})).facets if f.name == "keyword" for v in f.values}
    assert {"土壤水分", "蒸散发", "全球"} <= labels and "global" not in labels
    # "全球" is a topic and a place tag of the same records: counted once per record, shown once
    assert facets["keyword"]["全球"] == 3
    assert set(ids(category="冰冻圈")) == {FT}
    both = search.search(search.parse({"keyword": ["冻融", "蒸散发"]}))  # alternatives within one facet
    assert {d.id for d in both.datasets} == {FT, ET}


def test_published_facet_follows_publishing(et_run):
    assert ET in ids(published="yes")
    assert ET not in ids(published="no") and TWS in ids(published="no")


def test_sorting_by_title_and_date():
    with translation.override("en"):
        titles = [d.title_en for d in search.search(search.parse({"sort": ["title"]})).datasets]
    assert titles == sorted(titles)
    dates = [d.updated or d.publish_time for d in search.search(search.parse({"sort": ["-date"]})).datasets]
    known = [d for d in dates if d]
    assert known == sorted(known, reverse=True)


def test_snippets_and_titles_mark_the_words_found():
    result = search.search(search.parse({"q": ["soil moisture"]}))
    first = result.datasets[0]
    assert "<mark>soil</mark>" in first.title_marked.lower() and "<mark>" in first.snippet
    evil = search.highlight("<script>alert(1)</script> soil", ["soil"])
    assert "<script>" not in evil and "&lt;script&gt;" in evil


def test_the_api_takes_the_same_filters_and_answers_facet_counts(client, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        data = api(client, q="soil", bbox="80,30,90,35", time="2016/2017")
    with django_assert_max_num_queries(3):  # the same search again: the cached answer, then the page's records
        assert api(client, q="soil", bbox="80,30,90,35", time="2016/2017") == data
    assert {r["id"] for r in data["results"]} == {SM, SM1, FT} and data["count"] == 3
    facets = {f["name"]: {v["value"]: v["count"] for v in f["values"]} for f in data["facets"]}
    assert sum(facets["category"].values()) == 3
    assert all("<mark>" in r["snippet"] for r in data["results"])
    assert api(client, q="evapotranspration")["corrected"] == "evapotranspiration"
    paged = api(client, limit=2)
    assert paged["count"] == 5 and len(paged["results"]) == 2 and "offset=2" in paged["next"]
    assert api(client, facets="0")["facets"] == []
    refused = client.get("/api/datasets/", {"facets": "yes"})  # the schema says 0 or 1 (schemathesis found it)
    assert refused.status_code == 400 and refused.json()["field"] == "facets"
    assert api(client, keyword=["冻融", "蒸散发"])["count"] == 2


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"categories": "x"}, "categories"),
        ({"formaat": "x"}, "formaat"),
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "0,10,5,-10"}, "bbox"),
        ({"time": "2020-13"}, "time"),
        ({"time": "2020/2010"}, "time"),
        ({"sort": "random"}, "sort"),
        ({"published": "maybe"}, "published"),
        ({"q": ["a", "b"]}, "q"),
    ],
)
def test_an_unknown_or_malformed_filter_is_a_400_naming_it(client, params, field):
    for url in ("/api/datasets/", "/datasets/"):
        response = client.get(url, params)
        assert response.status_code == 400, (url, params)
        assert field in response.content.decode()
    assert client.get("/api/datasets/", {"categories": "x"}).json()["field"] == "categories"


def test_the_list_page_shows_facets_corrections_and_pages(client):
    html = client.get("/datasets/", {"q": "evapotranspration"}).content.decode()
    assert "Showing results for" in html and "evapotranspiration" in html
    html = client.get("/datasets/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert 'data-facet="keyword"' in html and "土壤水分" in html
    html = client.get("/datasets/", {"keyword": "冻融"}).content.decode()
    assert 'class="selected"' in html and html.count('class="card"') == 1


@pytest.mark.browser
def test_drawing_a_box_on_the_list_page_map_filters_the_records(page, portal_url):
    page.goto(f"{portal_url}/datasets/")
    page.click(".search-map-box summary")
    page.wait_for_selector("#search-map .leaflet-land-pane path", state="attached")
    page.click("#search-map .leaflet-pm-icon-rectangle")
    box = page.locator("#search-map").bounding_box()
    # a small rectangle in the middle of the map, around 0°, 0° (the map shows -180..180, -60..85)
    x, y = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.6
    page.mouse.click(x, y)
    with page.expect_navigation():
        page.mouse.click(x + 40, y - 30)
    assert "bbox=" in page.url
    wait_until(page, "document.querySelectorAll('.card').length > 0")
    cards = page.locator(".card").count()
    assert cards == 4  # the four global records; not the Tibetan Plateau's
    assert page.locator("#clear-bbox").count() == 1
    assert page.evaluate("window.cspViolations") == [] and page.problems == []


def test_renaming_a_keyword_in_the_admin_updates_its_records_search_documents(admin_client):
    tag = Tag.objects.filter(name="冻融").first()
    assert FT not in ids(q="frost heave")
    response = admin_client.post(
        f"/admin/catalog/tag/{tag.pk}/change/", {"kind": tag.kind, "name": tag.name, "name_en": "frost heave"}
    )
    assert response.status_code == 302
    assert ids(q="frost heave") == [FT]
    with translation.override("en"):
        labels = {
            v.key: v.label for f in search.search(search.parse({})).facets if f.name == "keyword" for v in f.values
        }
    assert labels["冻融"] == "frost heave"


def test_creating_and_deleting_a_version_moves_the_published_facet():
    from portal.catalog.models import DatasetVersion

    version = DatasetVersion.objects.create(dataset_id=TWS, number=99, directory="products/tws_rec/v99")
    assert TWS in ids(published="yes")  # a version created (by publish or anyone) re-indexes its record
    version.delete()
    assert TWS in ids(published="no") and TWS not in ids(published="yes")
