"""OGC API-EDR at `/api/edr/` on a published SYNTHETIC grid: metadata, position / area / cube queries, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely
import xarray as xr
from django.conf import settings

from portal.catalog.models import Dataset
from portal.subsets import params as subset_params
from portal.subsets import store
from tests.grids import FT, csv_table, grid_values

pytestmark = pytest.mark.django_db

EDR = "/api/edr"
ET = "e22aef74-4534-4624-8e2e-f4eab129675b"  # the ET fusion record (tests/conftest.py publishes it)
COVJSON = "application/prs.coverage+json"


def query(client, kind: str, collection: str = FT, **params):
    return client.get(f"{EDR}/collections/{collection}/{kind}", params)


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def covjson(response) -> dict:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == COVJSON
    return json.loads(body(response))


def source_value(t: int, lat: float, lon: float) -> float:
    """The grid's value at a cell given by its centre, lon in any frame (e.g. 180.5 == -179.5)."""
    return float(np.float32(grid_values(t, lat, (lon + 180) % 360 - 180)))


# --------------------------------------------------------------------------- metadata


def test_the_landing_page_links_to_conformance_collections_and_the_api_definition(client):
    response = client.get(f"{EDR}/")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    links = {link["rel"]: link for link in response.json()["links"]}
    assert links["self"]["href"] == "http://testserver/api/edr/"
    assert links["conformance"]["href"] == "http://testserver/api/edr/conformance"
    assert links["data"]["href"] == "http://testserver/api/edr/collections"
    assert links["service-desc"]["href"] == "http://testserver/api/schema/"
    assert client.get(links["conformance"]["href"]).status_code == 200


def test_conformance_declares_edr_core_collections_and_coveragejson(client):
    classes = client.get(f"{EDR}/conformance").json()["conformsTo"]
    for name in ("core", "collections", "json", "covjson"):
        assert f"http://www.opengis.net/spec/ogcapi-edr-1/1.1/conf/{name}" in classes
    assert "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core" in classes
    assert not any(c.endswith("/conf/html") for c in classes)  # not served
    assert client.get(f"{EDR}/conformance/").json()["conformsTo"] == classes  # a final slash is fine too


def test_a_published_grid_is_a_collection_whose_extent_is_the_grids(client, grid_version):
    collections = client.get(f"{EDR}/collections").json()
    assert collections["links"][0]["rel"] == "self"
    by_id = {c["id"]: c for c in collections["collections"]}
    collection = by_id[FT]
    assert collection == client.get(f"{EDR}/collections/{FT}").json()
    assert collection["title"] == Dataset.objects.get(id=FT).title_en
    extent = collection["extent"]
    assert extent["spatial"]["bbox"] == [[-180.0, -90.0, 180.0, 90.0]]  # cell edges of the 1-degree grid
    assert extent["temporal"]["interval"] == [["2015-01-01T00:00:00Z", "2015-01-03T00:00:00Z"]]
    assert extent["temporal"]["values"] == ["R3/2015-01-01T00:00:00Z/P1D"]
    sm = collection["parameter_names"]["sm"]
    assert sm["type"] == "Parameter" and sm["unit"]["symbol"] == "m3 m-3" and sm["observedProperty"]["label"] == "sm"
    assert set(collection["data_queries"]) == {"position", "area", "cube"}
    position = collection["data_queries"]["position"]["link"]
    assert position["href"] == f"http://testserver/api/edr/collections/{FT}/position"
    assert position["variables"]["query_type"] == "position"
    assert collection["output_formats"] == ["CoverageJSON", "NetCDF", "CSV"] and collection["crs"] == ["OGC:CRS84"]
    assert {"self", "data", "describedby"} <= {link["rel"] for link in collection["links"]}


def test_a_dataset_without_a_published_grid_is_not_a_collection(client, grid_version):
    other = Dataset.objects.get(id=ET)  # published by the session setup: station series only, no grid
    assert other.versions.exists() and not any(
        store.holds_grid(Path(settings.DATA_ROOT) / f.path)
        for f in other.versions.order_by("-number")[0].files.all()
        if f.name.endswith(".nc")
    )
    ids = {c["id"] for c in client.get(f"{EDR}/collections").json()["collections"]}
    assert FT in ids and other.id not in ids
    response = client.get(f"{EDR}/collections/{other.id}")
    assert response.status_code == 404 and response.json()["code"] == "NotFound"


# --------------------------------------------------------------------------- queries


def test_a_position_query_is_the_nearest_cells_point_series(client, grid_version):
    doc = covjson(query(client, "position", coords="POINT(10.3 20.8)", datetime="2015-01-02/.."))
    assert doc["domain"]["domainType"] == "PointSeries"
    axes = doc["domain"]["axes"]
    assert axes["x"]["values"] == [10.5] and axes["y"]["values"] == [20.5]
    assert axes["t"]["values"] == ["2015-01-02", "2015-01-03"]
    assert doc["ranges"]["sm"]["values"] == [source_value(1, 20.5, 10.5), source_value(2, 20.5, 10.5)]
    assert doc["parameters"]["sm"]["unit"]["symbol"] == "m3 m-3"


def test_a_position_query_near_the_antimeridian_and_an_instant(client, grid_version):
    doc = covjson(
        query(
            client, "position", coords="POINT(-179.9 -0.2)", datetime="2015-01-01T00:00:00Z", **{"parameter-name": "sm"}
        )
    )
    assert doc["domain"]["axes"]["x"]["values"] == [-179.5] and doc["domain"]["axes"]["y"]["values"] == [-0.5]
    assert doc["ranges"]["sm"]["values"] == [source_value(0, -0.5, -179.5)]


def test_a_position_query_as_netcdf_and_as_csv(client, grid_version, tmp_path):
    response = query(client, "position", coords="POINT(100.2 -30.6)", f="NetCDF")
    assert response.status_code == 200 and response["Content-Type"] == "application/x-netcdf"
    (tmp_path / "p.nc").write_bytes(body(response))
    with xr.open_dataset(tmp_path / "p.nc") as out:
        assert float(out["lon"]) == 100.5 and float(out["lat"]) == -30.5
        np.testing.assert_array_equal(out["sm"].values, [source_value(t, -30.5, 100.5) for t in range(3)])
        assert out.attrs["citation"]
    csv = client.get(f"{EDR}/collections/{FT}/position", {"coords": "POINT(100.2 -30.6)"}, HTTP_ACCEPT="text/csv")
    assert csv.status_code == 200 and csv["Content-Type"] == "text/csv; charset=utf-8"
    table = csv_table(body(csv))
    assert list(table["sm"]) == [source_value(t, -30.5, 100.5) for t in range(3)]


TRIANGLE = "POLYGON((10 20, 14.2 20, 10 24.2, 10 20))"  # centres with x + y <= 34 are inside


def test_an_area_query_keeps_the_cells_whose_centres_are_inside_the_polygon(client, grid_version):
    doc = covjson(query(client, "area", coords=TRIANGLE, datetime="2015-01-02"))
    assert doc["domain"]["domainType"] == "Grid"
    axes = doc["domain"]["axes"]
    xs, ys = axes["x"]["values"], axes["y"]["values"]
    assert xs == [10.5, 11.5, 12.5, 13.5] and ys == [20.5, 21.5, 22.5, 23.5] and axes["t"]["values"] == ["2015-01-02"]
    rng = doc["ranges"]["sm"]
    assert rng["axisNames"] == ["t", "y", "x"] and rng["shape"] == [1, 4, 4]
    triangle = shapely.from_wkt(TRIANGLE)
    expected = [source_value(1, y, x) if triangle.contains(shapely.Point(x, y)) else None for y in ys for x in xs]
    assert rng["values"] == expected
    assert expected.count(None) == 6  # the mask really removed cells


def test_an_area_query_as_netcdf_holds_the_same_values(client, grid_version, tmp_path):
    response = query(client, "area", coords=TRIANGLE, f="netcdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/x-netcdf"
    (tmp_path / "a.nc").write_bytes(body(response))
    doc = covjson(query(client, "area", coords=TRIANGLE))
    with xr.open_dataset(tmp_path / "a.nc") as out:
        assert out["sm"].shape == (3, 4, 4)
        values = [None if np.isnan(v) else float(v) for v in out["sm"].transpose("time", "lat", "lon").values.ravel()]
        assert values == doc["ranges"]["sm"]["values"]


def test_a_cube_query_across_the_antimeridian(client, grid_version):
    doc = covjson(query(client, "cube", bbox="178,0,-178,2", datetime="2015-01-03"))
    axes = doc["domain"]["axes"]
    xs, ys = axes["x"]["values"], axes["y"]["values"]
    assert xs == [178.5, 179.5, 180.5, 181.5] and ys == [0.5, 1.5] and axes["t"]["values"] == ["2015-01-03"]
    assert doc["ranges"]["sm"]["values"] == [source_value(2, y, x) for y in ys for x in xs]


def test_a_query_above_the_direct_limit_is_a_413_pointing_to_the_jobs_api(client, grid_version, settings):
    settings.SUBSET_SYNC_MAX_BYTES = 1000
    response = query(client, "cube", bbox="170,-90,-170,90", datetime="2015-01-02/..")
    assert response.status_code == 413
    error = response.json()
    assert error["parameter"] == "bbox" and "/api/jobs/" in error["description"]
    job = error["job"]  # the equivalent job request asks for the same subset
    assert job["dataset"] == FT and job["kind"] == "subset"
    same = subset_params.parse_api(job["kind"], job["params"]).request
    assert same.bbox == (170, -90, -170, 90) and same.time == ("2015-01-02", None) and same.format == "coveragejson"
    assert query(client, "cube", bbox="10,20,12,21").status_code == 200


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kind, params, parameter",
    [
        ("position", {"coords": "POINT(10 20"}, "coords"),
        ("position", {"coords": "LINESTRING(0 0, 1 1)"}, "coords"),
        ("position", {"coords": "POINT(10 95)"}, "coords"),
        ("position", {}, "coords"),
        ("position", {"coords": "POINT(10 20)", "datetime": "yesterday"}, "datetime"),
        ("position", {"coords": "POINT(10 20)", "datetime": "2030-01-01/2030-02-01"}, "datetime"),
        ("position", {"coords": "POINT(10 20)", "datetime": "2015-01-03/2015-01-01"}, "datetime"),
        ("position", {"coords": "POINT(10 20)", "parameter-name": "sm,et"}, "parameter-name"),
        ("position", {"coords": "POINT(10 20)", "f": "xlsx"}, "f"),
        ("position", {"coords": "POINT(10 20)", "crs": "EPSG:3857"}, "crs"),
        ("position", {"coords": "POINT(10 20)", "z": "100"}, "z"),
        ("area", {"coords": "POLYGON((0 0, 1 1, 1 0, 0 1, 0 0))"}, "coords"),  # self-intersecting
        ("area", {"coords": "POLYGON((10 89.6, 11 89.6, 11 89.9, 10 89.9, 10 89.6))"}, "coords"),  # no cell centre
        ("area", {}, "coords"),
        ("cube", {}, "bbox"),
        ("cube", {"bbox": "10,20,14"}, "bbox"),
        ("cube", {"bbox": "10,50,20,40"}, "bbox"),
        ("cube", {"bbox": "10,89.6,11,89.9"}, "bbox"),  # empty: between the last row of centres and the pole
        ("cube", {"bbox": "10,20,11,21", "datetime": "2014-12-01/2014-12-31"}, "datetime"),
    ],
)
def test_a_bad_query_is_a_400_naming_the_parameter(client, grid_version, kind, params, parameter):
    response = query(client, kind, **params)
    assert response.status_code == 400, response.content
    error = response.json()
    assert error["parameter"] == parameter and error["description"].startswith(f"{parameter}: ")
    assert error["code"] in ("InvalidParameterValue", "MissingParameterValue")


def test_an_unknown_collection_is_a_404(client, grid_version):
    for url in (f"{EDR}/collections/no-such-dataset", f"{EDR}/collections/no-such-dataset/position"):
        response = client.get(url, {"coords": "POINT(10 20)"})
        assert response.status_code == 404 and "no-such-dataset" in response.json()["description"]


def test_a_login_access_dataset_needs_a_login_for_queries(client, admin_client, grid_version):
    Dataset.objects.filter(id=FT).update(share_type=Dataset.ShareType.LOGIN)
    response = query(client, "position", coords="POINT(10 20)")
    assert response.status_code == 401 and response.json()["code"] == "NotAuthenticated"
    assert query(client, "cube", bbox="10,20,12,21").status_code == 401
    assert query(admin_client, "position", coords="POINT(10 20)").status_code == 200


def test_a_version_with_two_grids_gives_one_collection_per_grid(client, grid_version):
    from portal.catalog.models import DatasetFile

    folder = Path(settings.DATA_ROOT) / grid_version.directory
    with xr.open_dataset(folder / "grid.nc") as ds:
        (ds * 2).assign_attrs(ds.attrs).to_netcdf(folder / "twin.nc")
    DatasetFile.objects.create(
        version=grid_version, name="twin.nc", path=f"{grid_version.directory}/twin.nc", size=1, sha256="0" * 64
    )
    ids = {c["id"] for c in client.get(f"{EDR}/collections").json()["collections"]}
    assert {f"{FT}.grid", f"{FT}.twin"} <= ids and FT not in ids
    assert client.get(f"{EDR}/collections/{FT}.twin").json()["title"].endswith("(twin.nc)")
    one = covjson(client.get(f"{EDR}/collections/{FT}.grid/position", {"coords": "POINT(10.3 20.8)"}))
    two = covjson(client.get(f"{EDR}/collections/{FT}.twin/position", {"coords": "POINT(10.3 20.8)"}))
    assert two["ranges"]["sm"]["values"] == [2 * v for v in one["ranges"]["sm"]["values"]]
    assert client.get(f"{EDR}/collections/{FT}.nope").status_code == 404


def test_an_earlier_version_is_its_own_collection_and_queries_read_that_version(client, grid_version):
    from tests.grids import publish_grid

    newer = publish_grid(days=5)  # the latest now: 5 days; grid_version keeps 3
    old = f"{FT}@v{grid_version.number}"
    ids = {c["id"] for c in client.get(f"{EDR}/collections").json()["collections"]}
    assert FT in ids and old not in ids  # earlier versions are not listed, only linked
    latest = client.get(f"{EDR}/collections/{FT}").json()
    assert {"rel": "predecessor-version"}.items() <= next(
        link for link in latest["links"] if link["rel"] == "predecessor-version"
    ).items()
    assert any(link["href"].endswith(f"/collections/{old}") for link in latest["links"])
    earlier = client.get(f"{EDR}/collections/{old}").json()
    assert earlier["id"] == old
    assert any(
        link["rel"] == "latest-version" and link["href"].endswith(f"/collections/{FT}") for link in earlier["links"]
    )
    new_days = covjson(query(client, "position", coords="POINT(10.3 20.8)"))["domain"]["axes"]["t"]["values"]
    old_days = covjson(query(client, "position", collection=old, coords="POINT(10.3 20.8)"))["domain"]["axes"]["t"]
    assert len(new_days) == 5 and len(old_days["values"]) == 3 and newer.number > grid_version.number
    for bad in (f"{FT}@v999", f"{FT}@vx", f"{FT}@v"):
        assert client.get(f"{EDR}/collections/{bad}").status_code == 404
        assert query(client, "position", collection=bad, coords="POINT(10.3 20.8)").status_code == 404
