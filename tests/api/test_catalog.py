"""The read-only DRF API: list and search through the same query as the pages, detail with lineage."""

from __future__ import annotations

import hashlib

import pytest

from portal.catalog.models import Dataset
from products.models import ValidationResult
from products.registry import PRODUCTS

pytestmark = pytest.mark.django_db

ET = PRODUCTS["et_fusion"].dataset_id
TWS = PRODUCTS["tws_rec"].dataset_id


def test_the_api_lists_every_dataset_with_a_bounded_number_of_queries(client, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        data = client.get("/api/datasets/").json()
    assert data["count"] == Dataset.objects.count() == 5
    tws = next(d for d in data["results"] if d["id"] == TWS)
    assert tws["bbox"] == list(Dataset.objects.get(id=TWS).extent) == [-180.0, -90.0, 180.0, 90.0]


@pytest.mark.parametrize("query", ["蒸散发", "evapotranspiration", "EVAPOTRANSPIRATION", "soil moisture", "冻融"])
def test_the_api_search_agrees_with_the_pages(client, query):
    ids = [d["id"] for d in client.get("/api/datasets/", {"q": query}).json()["results"]]
    page = client.get("/datasets/", {"q": query})
    assert ids == [d.id for d in page.context["result"].datasets]
    assert 0 < len(ids) < 5


def test_a_chinese_query_finds_only_the_et_dataset(client):
    assert [d["id"] for d in client.get("/api/datasets/", {"q": "蒸散发"}).json()["results"]] == [ET]


def test_the_api_detail_carries_versions_files_and_the_stored_validation(client, et_run):
    data = client.get(f"/api/datasets/{ET}/").json()
    version = Dataset.objects.get(id=ET).latest_version()
    latest = next(v for v in data["versions"] if v["number"] == version.number)
    assert latest["lineage"]["run"] == version.lineage["run"]
    assert {f["name"]: f["sha256"] for f in latest["files"]} == dict(version.files.values_list("name", "sha256"))
    pooled = ValidationResult.objects.get(version=version, split="validation", scope="pooled")
    row = next(v for v in latest["validation"] if v["scope"] == "pooled" and v["split"] == "validation")
    assert (row["n"], row["kge"], row["rmse"], row["r"]) == (pooled.n, pooled.kge, pooled.rmse, pooled.r)
    assert all(v["scope"] != "site" for v in latest["validation"])  # per-site rows stay on the page


def test_the_file_url_of_the_api_downloads_the_published_bytes(client, et_run):
    data = client.get(f"/api/datasets/{ET}/").json()
    f = data["versions"][0]["files"][0]
    response = client.get(f["url"])
    assert response.status_code == 200
    assert hashlib.sha256(b"".join(response.streaming_content)).hexdigest() == f["sha256"]


@pytest.mark.parametrize(
    ("url", "status"), [("/api/datasets/no-such-id/", 404), ("/api/datasets/a%00b/", 400)]
)  # NUL: a 400 at the edge
def test_an_unknown_dataset_is_a_4xx(client, url, status):
    assert client.get(url).status_code == status


@pytest.mark.parametrize(
    ("params", "status"),
    [({"q": "x" * 3000}, 200), ({"q": "\x00"}, 400), ({"limit": "abc"}, 400), ({"offset": "-1"}, 400)],
)
def test_bad_list_parameters_are_not_server_errors(client, params, status):
    assert client.get("/api/datasets/", params).status_code == status


def test_the_api_is_read_only(client, admin_client):
    before = Dataset.objects.count()
    assert client.post("/api/datasets/", {"id": "x", "title_en": "x"}).status_code in (401, 403)
    assert admin_client.post("/api/datasets/", {"id": "x", "title_en": "x"}).status_code == 405
    assert admin_client.delete(f"/api/datasets/{ET}/").status_code == 405
    assert Dataset.objects.count() == before
