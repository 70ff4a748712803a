"""Requests refused at the edge with a 4xx naming the problem: large bodies, NUL bytes, deep JSON, paging."""

from __future__ import annotations

import json

import pytest

from portal.api.parsers import depth

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_cap(settings):
    settings.REQUEST_MAX_BODY_BYTES = 1000
    return 1000


def test_a_body_over_the_cap_is_a_413_json_under_the_api(client, small_cap):
    body = json.dumps({"dataset": "x", "kind": "subset", "params": {"polygon": "1 2, " * 400}})
    response = client.post("/api/jobs/", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["limit"] == 1000 and "larger than 1000 bytes" in response.json()["detail"]
    small = client.post("/api/jobs/", json.dumps({"dataset": "x"}), content_type="application/json")
    assert small.status_code not in (413, 500)


def test_a_body_over_the_cap_is_a_413_page_elsewhere(client, small_cap):
    response = client.post("/accounts/login/", {"login": "a@example.org", "password": "x" * 2000})
    assert response.status_code == 413 and response["Content-Type"].startswith("text/html")
    assert b"larger than 1000 bytes" in response.content


def test_a_content_length_that_is_not_a_number_is_a_400(client):
    response = client.post("/api/jobs/", "{}", content_type="application/json", CONTENT_LENGTH="1e3")
    assert response.status_code == 400 and response.json()["field"] == "Content-Length"


def test_too_many_form_fields_are_a_400_not_a_500(client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 50
    response = client.post("/accounts/login/", {f"f{i}": "1" for i in range(60)})
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/datasets/a%00b/", "path"),
        ("/api/datasets/?q=a%00", "q"),
        ("/api/edr/collections?x%00y=1", "x\x00y"),
        ("/opendap/x/v1/y.nc.das?a=%00", "a"),
    ],
)
def test_a_nul_byte_in_the_path_or_query_is_a_400_naming_where(client, url, field):
    response = client.get(url)
    assert response.status_code == 400
    assert response.json()["field"] == field and "NUL" in response.json()["detail"]


def test_a_nul_byte_on_a_page_is_a_400_page(client):
    for url in ("/datasets/a%00b/", "/datasets/?q=%00"):
        response = client.get(url)
        assert response.status_code == 400 and response["Content-Type"].startswith("text/html"), url
        assert b"NUL byte" in response.content


def test_the_depth_of_json_values():
    assert depth(1) == 0 and depth([]) == 1 and depth({"a": [1, {"b": []}]}) == 4
    assert depth([[[]]] * 3) == 3


@pytest.mark.parametrize(
    "body",
    [
        "[" * 40 + "]" * 40,  # deeper than JSON_MAX_DEPTH (32)
        "[" * 100_000 + "]" * 100_000,  # deeper than Python's recursion limit
        '{"a": ' * 33 + "1" + "}" * 33,
    ],
)
def test_over_deep_json_is_a_400(client, body):
    response = client.post("/api/jobs/", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "nested deeper than 32 levels" in response.json()["detail"]


def test_json_nan_and_garbage_are_a_400(client):
    for body in ('{"dataset": NaN}', '{"dataset": ', b'{"dataset": "\xff"}'):
        response = client.post("/api/jobs/", body, content_type="application/json")
        assert response.status_code == 400 and "JSON parse error" in response.json()["detail"], body


def test_json_within_the_depth_reaches_the_view(client):
    body = {"dataset": "no-such-dataset", "kind": "subset", "params": {"bbox": "0,0,1,1"}}
    response = client.post("/api/jobs/", body, content_type="application/json")
    assert response.status_code in (400, 404) and "JSON parse error" not in json.dumps(response.json())


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "abc"}, "limit"),
        ({"limit": "٣"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "9" * 30}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"offset": "1.5"}, "offset"),
        ({"offset": "99999999999999999999"}, "offset"),
        ({"offset": "1000000001"}, "offset"),
    ],
)
def test_bad_paging_is_a_400_naming_the_parameter(client, params, field):
    response = client.get("/api/datasets/", params)
    assert response.status_code == 400
    assert response.json()["field"] == field and field in response.json()["detail"]


def test_paging_within_the_caps(client):
    everything = client.get("/api/datasets/").json()
    assert everything["count"] >= 3
    page = client.get("/api/datasets/", {"limit": "2", "offset": "1"}).json()
    assert [d["id"] for d in page["results"]] == [d["id"] for d in everything["results"][1:3]]
    assert client.get("/api/datasets/", {"limit": "500", "offset": "1000000000"}).json()["results"] == []
