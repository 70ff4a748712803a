"""The STAC API on a real gunicorn: pystac validates every object offline, pystac-client browses and searches.

Data: the five imported records, the session's ET version (no grid: its extent comes from the
files' ACDD attributes) and the SYNTHETIC grid versions of ``stac_versions`` (conftest).
"""

from __future__ import annotations

import json

import numpy as np
import pystac
import pytest
import requests
import xarray as xr
from django.conf import settings
from pystac_client import Client

from portal.stac.validation import validate

from .conftest import SM1KM, TWS

pytestmark = pytest.mark.django_db
ET = "e22aef74-4534-4624-8e2e-f4eab129675b"
DATACUBE = "https://stac-extensions.github.io/datacube/v2.2.0/schema.json"


@pytest.fixture(scope="module")
def api(portal_url, stac_versions):
    """The STAC API's root URL on the live server, with the SYNTHETIC versions published."""
    return portal_url + "/api/stac/"


@pytest.fixture(scope="module")
def everything(api) -> list[dict]:
    """Every Item the server returns, from one search of up to 1000."""
    page = requests.get(api + "search", params={"limit": 1000}, timeout=60).json()
    assert "next" not in {link["rel"] for link in page["links"]}
    return page["features"]


def _ids(items) -> set[str]:
    return {i.id if hasattr(i, "id") else i["id"] for i in items}


def test_landing_collections_and_items_validate_offline(api, stac_versions, everything):
    landing = requests.get(api, timeout=30)
    assert landing.headers["Content-Type"] == "application/json"
    root = landing.json()
    validate(root)
    assert "https://api.stacspec.org/v1.0.0/item-search" in root["conformsTo"]
    assert not any("filter" in c for c in root["conformsTo"])  # no Filter: not implemented
    rels = {(link["rel"], link.get("method")) for link in root["links"]}
    assert {("search", "GET"), ("search", "POST"), ("data", None), ("conformance", None)} <= rels

    client = Client.open(api)
    collections = {c.id: c for c in client.get_collections()}
    assert set(collections) == {
        ET,
        SM1KM,
        TWS,
        "f52826e1-c61c-4b79-a43c-4ece3a8eca18",
        "ieee-dataport-spatiotemporal-seamless-global-surface-soil-moisture",
    }
    for collection_id in collections:
        document = requests.get(f"{api}collections/{collection_id}", timeout=30).json()
        assert validate(document)  # core collection schema (and scientific where a DOI or citation exists)
        assert document["portal:share_type"] in ("open-access", "login-access", "protected")
        assert {"self", "root", "parent", "items"} <= {link["rel"] for link in document["links"]}
    assert collections[TWS].extra_fields["portal:share_type"] == "login-access"

    # the collection's extent covers its items: the Tibet grids and the Pacific grid across the antimeridian
    sm = requests.get(f"{api}collections/{SM1KM}", timeout=30).json()
    ((west, south, east, north),) = sm["extent"]["spatial"]["bbox"][:1]
    assert south <= -20 and north >= 38
    start, end = sm["extent"]["temporal"]["interval"][0]
    assert start <= "2015-01-01T00:00:00Z" and (end is None or end >= "2017-01-03T00:00:00Z")

    # every Item validates against core and each extension it declares, offline
    # ET v1, three SM1KM versions, two TWS grids (and whatever other tests of the suite published before)
    assert len(everything) >= 6
    for item in everything:
        schemas = validate(item)
        assert len(schemas) == 1 + len(item["stac_extensions"])
    # the language follows Accept-Language
    chinese = requests.get(f"{api}collections/{ET}", headers={"Accept-Language": "zh-hans"}, timeout=30).json()
    english = requests.get(f"{api}collections/{ET}", headers={"Accept-Language": "en"}, timeout=30).json()
    assert chinese["title"] != english["title"] and any("\u4e00" <= ch <= "\u9fff" for ch in chinese["title"])


def test_items_describe_files_cubes_versions_and_model(api, stac_versions, everything):
    sm = stac_versions["sm"]
    by_id = {i["id"]: i for i in everything}
    first, last = (f"{SM1KM}-v{v.number}" for v in (sm[0], sm[2]))
    item = by_id[first]
    assert item["collection"] == SM1KM and item["properties"]["datetime"] is None
    assert (item["properties"]["start_datetime"], item["properties"]["end_datetime"]) == (
        "2015-01-01T00:00:00Z",
        "2015-01-03T00:00:00Z",
    )
    assert item["bbox"] == [80, 28, 100, 38] and item["geometry"]["type"] == "Polygon"
    assert (
        item["properties"]["version"] == str(sm[0].number) and item["properties"]["portal:share_type"] == "open-access"
    )

    grid = item["assets"]["sm.nc"]
    assert grid["href"].endswith(f"/datasets/{SM1KM}/versions/{sm[0].number}/files/sm.nc")
    assert grid["type"] == "application/x-netcdf" and grid["roles"] == ["data"]
    published = sm[0].files.get(name="sm.nc")  # size and SHA-256 taken by products.services.publish
    assert grid["file:checksum"] == "1220" + published.sha256 and grid["file:size"] == published.size > 0
    dims = grid["cube:dimensions"]
    assert dims["lon"]["axis"] == "x" and dims["lon"]["extent"] == [80.5, 99.5] and dims["lon"]["step"] == 1.0
    assert dims["time"] == {
        "type": "temporal",
        "extent": ["2015-01-01T00:00:00Z", "2015-01-03T00:00:00Z"],
        "step": "P1D",
    }
    assert grid["cube:variables"]["sm"]["unit"] == "m3 m-3"
    assert grid["cube:variables"]["sm"]["dimensions"] == ["time", "lat", "lon"]
    assert item["properties"]["cube:dimensions"] == dims and DATACUBE in item["stac_extensions"]
    zarr = {k: a for k, a in item["assets"].items() if a["type"] == "application/vnd+zarr"}
    assert set(zarr) == {"sm-map.zarr", "sm-series.zarr"}

    rels = {link["rel"]: link["href"] for link in item["links"]}
    assert rels["self"] == f"{api}collections/{SM1KM}/items/{first}"
    assert rels["successor-version"].endswith(f"/items/{SM1KM}-v{sm[1].number}")
    assert rels["latest-version"].endswith(f"/items/{last}")
    opendap = [lk["href"] for lk in item["links"] if "OPeNDAP" in lk.get("title", "")]
    assert opendap == [f"{api.split('/api/stac/')[0]}/opendap/{SM1KM}/v{sm[0].number}/sm.nc"]
    assert not any("EDR" in lk.get("title", "") for lk in item["links"])  # EDR serves the latest version only
    latest = by_id[last]
    edr = [lk["href"] for lk in latest["links"] if "EDR" in lk.get("title", "")]
    assert edr == [f"{api.split('/api/stac/')[0]}/api/edr/collections/{SM1KM}"]
    assert requests.get(edr[0], timeout=30).status_code == 200  # a real EDR collection
    # the Pacific grid crosses the antimeridian: west > east, two polygons
    assert latest["bbox"] == [170, -20, -170, -10] and latest["geometry"]["type"] == "MultiPolygon"

    # a version with two grids: one Item per grid
    tws = stac_versions["tws"]
    assert {f"{TWS}-v{tws.number}-a", f"{TWS}-v{tws.number}-b"} <= set(by_id)
    assert by_id[f"{TWS}-v{tws.number}-b"]["bbox"] == [20, 40, 30, 50]
    assert by_id[f"{TWS}-v{tws.number}-b"]["properties"]["portal:share_type"] == "login-access"

    # the published ET version (no grid): its files' cubes, its model and lineage
    et = by_id[f"{ET}-v1"]
    assert et["properties"]["portal:model"]["product"] == "et_fusion"
    assert et["properties"]["portal:model"]["parameters"]["n_splits"] == 3
    assert "processing:lineage" in et["properties"] and et["properties"]["processing:software"]
    assert all(i["sha256"] for i in et["properties"]["portal:inputs"] if "sha256" in i)
    series = et["assets"]["et_fusion_timeseries.nc"]
    assert series["cube:dimensions"]["time"]["type"] == "temporal"
    assert any(v.get("unit") for v in series["cube:variables"].values())
    assert et["assets"]["et_basin_triple_collocation.csv"]["type"].startswith("text/csv")
    assert not any(a["type"] == "application/vnd+zarr" for a in et["assets"].values())
    assert requests.get(f"{api}collections/{ET}/items/{ET}-v1", timeout=30).json()["id"] == f"{ET}-v1"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_pystac_client_searches(api, stac_versions, method):
    client = Client.open(api)
    sm, tws = stac_versions["sm"], stac_versions["tws"]
    tibet = {f"{SM1KM}-v{sm[0].number}", f"{SM1KM}-v{sm[1].number}"}
    pacific = f"{SM1KM}-v{sm[2].number}"
    grids = [SM1KM, TWS]

    ours = {*tibet, pacific, f"{TWS}-v{tws.number}-a", f"{TWS}-v{tws.number}-b", f"{ET}-v1"}

    def found(**kwargs) -> set[str]:
        """The items of this module among those found (other tests of the suite publish versions too)."""
        return _ids(client.search(method=method, max_items=None, **kwargs).items()) & ours

    assert found(bbox=[85, 30, 90, 32], collections=grids) == tibet
    assert found(bbox=[175, -15, -175, -12], collections=grids) == {pacific}  # across the antimeridian
    assert found(bbox=[150, -15, 160, -12], collections=grids) == set()
    assert found(bbox=[-179, -15, -178, -12], collections=grids) == {pacific}
    assert found(datetime="2016-01-01T00:00:00Z/2016-12-31T23:59:59Z", collections=grids) == {
        f"{SM1KM}-v{sm[1].number}"
    }
    assert found(datetime="2017-06-01T00:00:00Z/..", collections=grids) == {
        f"{TWS}-v{tws.number}-a",
        f"{TWS}-v{tws.number}-b",
    }
    assert found(datetime="../2015-01-02T12:00:00+08:00", collections=[SM1KM]) == {f"{SM1KM}-v{sm[0].number}"}
    assert found(collections=[TWS]) == {f"{TWS}-v{tws.number}-a", f"{TWS}-v{tws.number}-b"}
    assert found(ids=[pacific, f"{ET}-v1"]) == {pacific, f"{ET}-v1"}
    assert found(intersects={"type": "Point", "coordinates": [25, 45]}, collections=grids) == {f"{TWS}-v{tws.number}-b"}

    # paging: the 5 grid items of this module, 2 per page -> 3 pages through 'next' links with a token
    search = client.search(method=method, ids=sorted(ours - {f"{ET}-v1"}), limit=2, max_items=None)
    pages = list(search.pages_as_dicts())
    assert [len(p["features"]) for p in pages] == [2, 2, 1]
    assert all("token" in json.dumps(next(lk for lk in p["links"] if lk["rel"] == "next")) for p in pages[:2])
    assert len(_ids(f for p in pages for f in p["features"])) == 5


def test_collection_items_endpoint_pages(api, stac_versions):
    collection = Client.open(api).get_collection(SM1KM)
    items = list(collection.get_items())
    assert {f"{SM1KM}-v{v.number}" for v in stac_versions["sm"]} <= _ids(items)  # (and other tests' versions)
    assert all(isinstance(i, pystac.Item) and i.collection_id == SM1KM for i in items)
    page = requests.get(f"{api}collections/{SM1KM}/items", params={"limit": 1}, timeout=30)
    assert page.headers["Content-Type"] == "application/geo+json"
    next_link = next(lk["href"] for lk in page.json()["links"] if lk["rel"] == "next")
    second = requests.get(next_link, timeout=30).json()
    assert second["numberReturned"] == 1 and second["features"][0]["id"] != page.json()["features"][0]["id"]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "a,b,c,d"}, "bbox"),
        ({"bbox": "0,95,10,96"}, "bbox"),
        ({"bbox": "0,10,10,5"}, "bbox"),
        ({"bbox": "0,0,200,10"}, "bbox"),
        ({"datetime": "yesterday"}, "datetime"),
        ({"datetime": "../.."}, "datetime"),
        ({"datetime": "2016-02-01T00:00:00Z/2016-01-01T00:00:00Z"}, "datetime"),
        ({"datetime": "2016-13-01T00:00:00Z"}, "datetime"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"token": "not-a-token"}, "token"),
        ({"intersects": '{"type": "Circle"}'}, "intersects"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_search_parameters_are_400s_naming_them(api, query, parameter):
    answer = requests.get(api + "search", params=query, timeout=30)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["code"] == "InvalidParameterValue" and body["description"].startswith(f"{parameter}:")


def test_other_errors(api, stac_versions):
    post = requests.post(api + "search", data="{not json", headers={"Content-Type": "application/json"}, timeout=30)
    assert post.status_code == 400 and post.json()["description"].startswith("body:")
    both = requests.post(
        api + "search", json={"bbox": [0, 0, 1, 1], "intersects": {"type": "Point", "coordinates": [0, 0]}}, timeout=30
    )
    assert both.status_code == 400 and "intersects" in both.json()["description"]
    assert requests.post(api + "search", json={"limit": 5000}, timeout=30).json()["description"].startswith("limit:")
    for path in (
        "collections/no-such-dataset",
        "collections/no-such-dataset/items",
        f"collections/{SM1KM}/items/{SM1KM}-v999",
        "collections/x/items/y",
    ):
        missing = requests.get(api + path, timeout=30)
        assert missing.status_code == 404 and missing.json()["code"] == "NotFound", path
    deleted = requests.delete(api + "collections", timeout=30)
    assert deleted.status_code == 405 and deleted.json()["code"] == "MethodNotAllowed"


def test_zarr_store_assets_are_readable_and_access_checked(api, stac_versions):
    import zarr.storage
    from zarr.core.buffer import default_buffer_prototype

    sm = stac_versions["sm"][0]
    item = requests.get(f"{api}collections/{SM1KM}/items/{SM1KM}-v{sm.number}", timeout=30).json()
    root = item["assets"]["sm-series.zarr"]["href"]
    metadata = requests.get(root + "/.zmetadata", timeout=30)
    assert metadata.status_code == 200 and metadata.headers["Content-Type"] == "application/json"
    # read the whole store over HTTP into memory (chunk keys from each array's shape and chunks), open it
    keys = {".zmetadata": metadata.content}
    for name, meta in metadata.json()["metadata"].items():
        keys[name] = json.dumps(meta).encode()
        if name.endswith("/.zarray"):
            array = name[: -len("/.zarray")]
            counts = [-(-n // c) for n, c in zip(meta["shape"], meta["chunks"], strict=True)]
            for index in np.ndindex(*counts):
                chunk = requests.get(f"{root}/{array}/{'.'.join(map(str, index)) or '0'}", timeout=30)
                if chunk.status_code == 200:
                    keys[f"{array}/{'.'.join(map(str, index)) or '0'}"] = chunk.content
    buffers = {k: default_buffer_prototype().buffer.from_bytes(v) for k, v in keys.items()}
    with (
        xr.open_zarr(zarr.storage.MemoryStore(buffers), consolidated=True, zarr_format=2) as served,
        xr.open_dataset(f"{settings.DATA_ROOT}/{sm.directory}/sm.nc") as published,
    ):
        np.testing.assert_array_equal(served["sm"].values, published["sm"].values)

    assert requests.get(root + "/../../../../sm.nc", timeout=30).status_code == 404
    assert requests.get(root + "/no-such-key", timeout=30).status_code == 404
    # a login-access dataset: described to everyone, its store refused to anonymous clients
    tws = stac_versions["tws"]
    login = requests.get(f"{api}collections/{TWS}/items/{TWS}-v{tws.number}-a", timeout=30).json()
    refused = requests.get(login["assets"]["a-map.zarr"]["href"] + "/.zmetadata", timeout=30)
    assert refused.status_code == 401 and refused.json()["code"] == "NotAuthenticated"
    assert requests.get(login["assets"]["a.nc"]["href"], timeout=30).status_code == 401
