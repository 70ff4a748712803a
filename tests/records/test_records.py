"""OGC API - Records at /api/records/ through a real gunicorn, driven by OWSLib's ``ogcapi.records`` client.

The session's test database holds the five real catalogue records (../shared/catalog) and one
published ET version; each is found by a word of its English and of its Chinese title, by box
(the Tibetan Plateau, the antimeridian), by period, by a queryable, by identifier, and paged
through with limit=2 over the next links.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests
from owslib.ogcapi.records import Records

from portal.catalog.models import Dataset

ET_ID = "e22aef74-4534-4624-8e2e-f4eab129675b"  # published by the session (tests/conftest.py)
SSM = "ieee-dataport-spatiotemporal-seamless-global-surface-soil-moisture"
FT = "f52826e1-c61c-4b79-a43c-4ece3a8eca18"  # the Tibetan Plateau (73-105 E, 25-40 N), 2011-2020
SM1KM = "30131436-88d1-4be3-8e3d-14905a29d6d6"
TWS = "6b23bed9-627c-4653-8157-2ddd5b323888"  # CSTR, CC BY 4.0, login access, 1940-2022
FIVE = {ET_ID, SSM, FT, SM1KM, TWS}
GLOBAL = FIVE - {FT}
TITLE_WORDS = {  # record -> (a word of its English title, a word of its Chinese title)
    ET_ID: ("multimodal", "蒸散发"),
    SSM: ("seamless", "无缝"),
    FT: ("Tibetan", "冻融"),
    SM1KM: ("1 km", "公里"),
    TWS: ("Reconstruction", "蓄水量"),
}
CONF = "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf"


@pytest.fixture(scope="module")
def api_url(portal_url) -> str:
    return f"{portal_url}/api/records/"


@pytest.fixture(scope="module")
def records(api_url) -> Records:
    return Records(api_url)


def ids(answer: dict) -> list[str]:
    return [f["id"] for f in answer["features"]]


def test_landing_conformance_catalogue_and_definition(records, api_url):
    rels = {link["rel"]: link for link in records.links}
    assert {"self", "service-desc", "conformance", "data"} <= set(rels)
    assert rels["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    conforms = set(records.conformance()["conformsTo"])
    assert {
        f"{CONF}/core",
        f"{CONF}/record-core",
        f"{CONF}/record-collection",
        f"{CONF}/json",
        f"{CONF}/sorting",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    } <= conforms
    assert f"{CONF}/html" not in conforms  # no HTML encoding here
    assert records.records() == ["datasets"]
    catalogue = records.collection("datasets")
    assert catalogue["itemType"] == "record"
    assert catalogue["extent"]["spatial"]["bbox"] == [[-180, -90, 180, 90]]
    assert catalogue["extent"]["temporal"]["interval"][0][0].startswith("1940-01-01")
    links = {link["rel"]: link for link in catalogue["links"]}
    assert links["items"]["type"] == "application/geo+json"
    sortables = requests.get(links["http://www.opengis.net/def/rel/ogc/1.0/sortables"]["href"], timeout=30)
    assert sortables.headers["Content-Type"] == "application/schema+json"
    assert set(sortables.json()["properties"]) == {"title", "updated"}

    # the service-desc is honest: every path it lists answers as it says
    definition = records.api()
    assert definition["openapi"].startswith("3.0")
    assert definition["servers"][0]["url"] == api_url.rstrip("/")
    for path, item in definition["paths"].items():
        url = definition["servers"][0]["url"] + path.replace("{catalogId}", "datasets").replace("{recordId}", FT)
        answer = requests.get(url, timeout=30)
        assert answer.status_code == 200, (path, answer.text)
        declared = set(item["get"]["responses"]["200"]["content"])
        assert answer.headers["Content-Type"] in declared, (path, answer.headers["Content-Type"])


def test_each_record_by_a_word_of_its_english_and_chinese_title(records):
    for record_id, words in TITLE_WORDS.items():
        for word in words:
            answer = records.collection_items("datasets", q=word)
            assert ids(answer)[:1] == [record_id], (word, ids(answer))
            assert answer["numberMatched"] < len(FIVE), (word, ids(answer))  # the word picks records out
            assert answer["numberReturned"] == len(answer["features"])
    # comma-separated words: each must match (the site's search), in any order
    assert set(ids(records.collection_items("datasets", q="soil,moisture"))) == {SSM, SM1KM}


def test_box_antimeridian_and_period(records):
    plateau = records.collection_items("datasets", bbox=[80, 30, 90, 35])
    assert FT in ids(plateau)
    americas = records.collection_items("datasets", bbox=[-100, 30, -90, 40])
    assert FT not in ids(americas) and GLOBAL <= set(ids(americas))
    # west > east: the box crosses the antimeridian (170 E to 170 W) and misses the plateau ...
    pacific = records.collection_items("datasets", bbox=[170, -10, -170, 10], limit=10)
    assert FT not in ids(pacific) and GLOBAL <= set(ids(pacific))
    # ... and from 100 E eastwards to 170 W it reaches the plateau's eastern edge (105 E)
    assert FT in ids(records.collection_items("datasets", bbox=[100, 20, -170, 45]))
    assert FT in ids(records.collection_items("datasets", bbox=[80, 30, 0, 90, 35, 5000]))  # 3D box: heights ignored

    assert set(ids(records.collection_items("datasets", datetime_="2021-01-01/2021-12-31"))) & FIVE == {ET_ID, SSM, TWS}
    assert set(ids(records.collection_items("datasets", datetime_="../1945-12-31"))) & FIVE == {TWS}
    assert set(ids(records.collection_items("datasets", datetime_="2012-06-01T00:00:00Z"))) & FIVE == {
        ET_ID,
        FT,
        SM1KM,
        TWS,
    }
    assert set(ids(records.collection_items("datasets", datetime_="2023-01-01/.."))) & FIVE == {ET_ID, SSM}


def test_paging_over_next_links_sees_every_record_once(records):
    first = records.collection_items("datasets", limit=2)
    total = first["numberMatched"]
    assert total >= len(FIVE) and first["numberReturned"] == 2
    assert "prev" not in {link["rel"] for link in first["links"]}
    seen, page, pages = [], first, 0
    while True:
        pages += 1
        assert page["type"] == "FeatureCollection" and page["numberReturned"] <= 2 and "timeStamp" in page
        seen += ids(page)
        links = {link["rel"]: link["href"] for link in page["links"]}
        assert links["collection"].endswith("/api/records/collections/datasets")
        if pages > 1:  # back to the previous page's offset (none for the first)
            assert links["prev"].endswith("limit=2" if pages == 2 else f"offset={2 * (pages - 2)}")
        if "next" not in links:
            break
        assert "limit=2" in links["next"]
        answer = requests.get(links["next"], timeout=30)
        assert answer.headers["Content-Type"] == "application/geo+json"
        page = answer.json()
    assert len(seen) == len(set(seen)) == total and FIVE <= set(seen)
    assert pages == -(-total // 2)
    # the same pages by offset, as OWSLib asks for them
    assert ids(records.collection_items("datasets", limit=2, offset=2)) == seen[2:4]


def test_queryables_identifiers_sorting_and_type(records, django_db_blocker):
    queryables = records.collection_queryables("datasets")
    assert set(queryables["properties"]) == {
        "category",
        "keyword",
        "variable",
        "spatial_resolution",
        "temporal_resolution",
        "share_type",
        "format",
        "published",
    }
    assert queryables["properties"]["share_type"]["enum"] == ["open-access", "login-access", "protected"]
    assert ids(records.collection_items("datasets", keyword="冻融")) == [FT]
    with django_db_blocker.unblock():  # ET, and what other tests of the suite published before this one
        published = set(Dataset.objects.filter(versions__isnull=False).values_list("id", flat=True))
    assert ET_ID in published
    assert set(ids(records.collection_items("datasets", published="yes"))) & FIVE == published & FIVE
    assert set(ids(records.collection_items("datasets", published="no"))) & FIVE == FIVE - published
    assert set(ids(records.collection_items("datasets", share_type="login-access"))) & FIVE == {TWS}
    assert set(ids(records.collection_items("datasets", variable="volume_fraction_of_condensed_water_in_soil"))) == {
        SSM,
        SM1KM,
    }
    assert ids(records.collection_items("datasets", keyword="冻融", bbox=[-100, 30, -90, 40])) == []  # filters combine

    assert set(ids(records.collection_items("datasets", ids=f"{FT},{TWS},no-such-record"))) == {FT, TWS}
    for given in ("cstr:11738.11.NCDC.ZENODO.DB6521.2024", "11738.11.NCDC.ZENODO.DB6521.2024"):
        assert ids(records.collection_items("datasets", externalIds=given)) == [TWS]
    assert records.collection_items("datasets", externalIds="doi:10.1234/none")["numberMatched"] == 0

    by_title = ids(records.collection_items("datasets", sortby=("title", "asc"), ids=",".join(FIVE)))
    assert by_title == [SM1KM, ET_ID, TWS, SSM, FT]  # Global 1 km, Global high..., Reconstruction, Spatio..., Surface
    newest = ids(records.collection_items("datasets", sortby=("updated", "desc"), ids=",".join(FIVE)))
    oldest = ids(records.collection_items("datasets", sortby=("updated", "asc"), ids=",".join(FIVE)))
    assert newest[0] == TWS and oldest == newest[::-1]  # TWS updated 2026; SSM has no update: its publication, 2025-01
    assert records.collection_items("datasets", type="dataset")["numberMatched"] >= len(FIVE)
    assert records.collection_items("datasets", type="service")["numberMatched"] == 0


def test_one_record_in_both_languages(records, api_url):
    tws = records.collection_item("datasets", TWS)
    assert tws["type"] == "Feature" and tws["id"] == TWS
    assert f"{CONF}/record-core" in tws["conformsTo"]
    assert tws["geometry"]["type"] == "Polygon" and tws["bbox"] == [-180, -90, 180, 90]
    assert tws["time"] == {"interval": ["1940-01-01", "2022-01-01"]}
    p = tws["properties"]
    assert p["type"] == "dataset"
    assert p["title"].startswith("Reconstruction of Global Land Water Storage")
    assert p["title_zh"].startswith("基于机器学习重建全球陆地蓄水量")
    assert "<" not in p["description"] and "machine learning" in p["description"]
    assert {"terrestrial water storage", "陆地储水"} <= set(p["keywords"])
    schemes = {t["scheme"]: t for t in p["themes"]}
    cf = schemes["https://cfconventions.org/Data/cf-standard-names/93/build/cf-standard-name-table.html"]
    assert [c["id"] for c in cf["concepts"]] == ["land_water_amount"]
    assert p["license"] == "CC-BY-4.0" and "Login access" in p["rights"]
    assert {"scheme": "https://cstr.cn", "value": "11738.11.NCDC.ZENODO.DB6521.2024"} in p["externalIds"]
    assert p["formats"][0] == {"name": "NetCDF", "mediaType": "application/x-netcdf"}
    assert p["created"] == "2024-05-17T14:51:04Z" and p["updated"] == "2026-05-09T08:31:09Z"
    people = {c.get("name"): c for c in p["contacts"]}
    assert set(people["尹家波"]["roles"]) == {"author", "metadataAuthor", "custodian"}
    assert "emails" not in people["尹家波"]  # the web page shows no personal address; the data service's is public
    assert people["敏玉芳"]["emails"] == [{"value": "ncdc@lzb.ac.cn"}]
    links = {(link["rel"], link["type"], link["href"].split("/", 3)[-1]) for link in tws["links"]}
    assert ("alternate", "text/html", f"datasets/{TWS}/") in links
    assert ("describedby", "application/json", f"api/datasets/{TWS}/") in links
    assert ("describedby", "application/json", f"api/stac/collections/{TWS}") in links
    assert ("license", "text/html", "licenses/by/4.0/") in links
    exports = {
        link["href"].rsplit("/", 1)[1]: link["type"]
        for link in tws["links"]
        if link["rel"] == "describedby" and "/metadata/" in link["href"]
    }
    assert set(exports) == {"datacite", "iso19139", "dcat", "schemaorg", "csl", "ris", "bibtex"}
    # every link into the portal (record, page, API record, exports, STAC) answers with the type it names
    for link in tws["links"]:
        if link["href"].startswith(api_url.split("/api/")[0]):
            answer = requests.get(link["href"], timeout=30)
            assert answer.status_code == 200, link
            assert answer.headers["Content-Type"].split(";")[0] == link["type"].split(";")[0], link

    ft = requests.get(f"{api_url}collections/datasets/items/{FT}", headers={"Accept-Language": "zh-Hans"}, timeout=30)
    assert ft.headers["Content-Type"] == "application/geo+json" and ft.headers["Content-Language"] == "zh-hans"
    record = ft.json()
    assert record["properties"]["title"] == "青藏高原地表冻融状态数据集(2011-2020)"
    assert record["bbox"] == [73, 25, 105, 40] and record["time"]["interval"] == ["2011-01-01", "2020-12-31"]
    assert "license" not in record["properties"]  # the record states none: no licence is made up
    own = [t for t in record["properties"]["themes"] if t["scheme"].endswith("/queryables#variable")]
    assert [c["id"] for c in own[0]["concepts"]] == ["surface_freeze_thaw_state"]  # not in the CF table


def test_errors_name_the_parameter(records, api_url):
    items = f"{api_url}collections/datasets/items"
    for query, parameter, words in [
        ({"sort_order": "x"}, "sort_order", "unknown parameter"),
        ({"time": "2020"}, "time", "did you mean 'datetime'"),
        ({"filter": "title='x'"}, "filter", "not offered"),
        ({"bbox": "1,2,3"}, "bbox", "3 numbers"),
        ({"bbox": "0,50,10,40"}, "bbox", "min_lat <= max_lat"),
        ({"bbox": "0,0,east,10"}, "bbox", "ASCII digits"),
        ({"datetime": "2020-13-01"}, "datetime", "not an ISO 8601 date"),
        ({"datetime": "2021-01-01/2020-01-01"}, "datetime", "after the end"),
        ({"limit": "0"}, "limit", "from 1 to"),
        ({"limit": "100000"}, "limit", "from 1 to"),
        ({"offset": "-1"}, "offset", "whole number"),
        ({"sortby": "-title"}, "sortby", "title, updated or -updated"),
        ({"published": "maybe"}, "published", "'yes' or 'no'"),
        ({"f": "html"}, "f", "JSON"),
        ({"ids": FT, "q": "soil"}, "ids", "cannot be combined with q"),
    ]:
        answer = requests.get(items, params=query, timeout=30)
        assert answer.status_code == 400, (query, answer.text)
        assert answer.headers["Content-Type"] == "application/json"
        body = answer.json()
        assert body["code"] == "InvalidParameterValue" and body["parameter"] == parameter, (query, body)
        assert words in body["description"] and body["description"].startswith(f"{parameter}:"), (query, body)
    with pytest.raises(RuntimeError) as raised:  # OWSLib raises the error document's text
        records.collection_items("datasets", bbox=[0, 50, 10, 40])
    assert json.loads(str(raised.value))["parameter"] == "bbox"

    for path, words in [
        ("collections/datasets/items/no-such-record", "no record 'no-such-record'"),
        ("collections/services/items", "no catalogue 'services'"),
        ("collections/services", "no catalogue 'services'"),
        ("collections/services/queryables", "no catalogue"),
    ]:
        answer = requests.get(f"{api_url}{path}", timeout=30)
        assert answer.status_code == 404 and answer.json()["code"] == "NotFound", path
        assert words in answer.json()["description"], answer.json()
    with pytest.raises(RuntimeError):
        records.collection_item("datasets", "no-such-record")
    assert requests.get(f"{api_url}conformance", params={"q": "x"}, timeout=30).status_code == 400
    posted = requests.post(items, data={}, timeout=30)
    assert posted.status_code == 405 and posted.headers["Allow"] == "GET, HEAD" and posted.json()["code"]
    # an empty value counts as absent (Records /req/record-core-query-parameters/empty-value)
    everything = requests.get(items, params={"bbox": "", "datetime": "", "limit": ""}, timeout=30).json()
    assert everything["numberMatched"] >= len(FIVE) and everything["numberReturned"] == min(
        10, everything["numberMatched"]
    )


def test_cf_themes_are_cf_standard_names():
    """Variables the records file under the CF scheme are in the CF table the checkers use (v93); the
    others are the portal's own names."""
    import compliance_checker

    from portal.records.services import PORTAL_VARIABLES
    from products.registry import PRODUCTS

    table = Path(compliance_checker.__file__).parent / "data" / "cf-standard-name-table.xml"
    root = ET.parse(table).getroot()
    assert root.findtext("version_number").strip() == "93"
    names = {entry.get("id") for entry in root.iter("entry")}
    variables = {v for p in PRODUCTS.values() for v in p.variables}
    assert variables - PORTAL_VARIABLES <= names
    assert not PORTAL_VARIABLES & names
