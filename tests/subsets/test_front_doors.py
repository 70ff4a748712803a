"""Every front door of the subset service refuses the same mistakes the same way, naming the parameter."""

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from django.conf import settings

from portal.catalog.models import DatasetFile, DatasetVersion
from portal.subsets import store
from tests.grids import FT

API = f"/api/datasets/{FT}"
EDR = f"/api/edr/collections/{FT}"


def _body(response) -> dict:
    return json.loads(b"".join(response.streaming_content) if response.streaming else response.content)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "sent", "field"),
    [
        (f"{API}/subset/?bbox=0,0,10,10&format=csv", "format", "f"),
        (f"{API}/point/?lon=1&lat=2&datetime=2015-01-01", "datetime", "time"),
        (f"{API}/area/?bbox=0,0,10,10&varaibles=sm", "varaibles", "variables"),
        (f"{API}/subset/?bbox=0,0,10,10&estimate=1&bboxx=1", "bboxx", "bbox"),
    ],
)
def test_the_api_refuses_unknown_parameters_naming_them(client, grid_version, url, sent, field):
    response = client.get(url)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["field"] == sent
    assert f"did you mean {field!r}" in body["detail"]


@pytest.mark.django_db
def test_a_job_with_an_unknown_parameter_is_refused_and_none_is_queued(client, grid_version):
    from portal.subsets.models import SubsetJob

    before = SubsetJob.objects.count()
    response = client.post(
        "/api/jobs/",
        {"dataset": FT, "kind": "subset", "params": {"bbox": "0,0,1,1", "fmt": "csv"}},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["field"] == "fmt"
    assert SubsetJob.objects.count() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "sent", "hint"),
    [
        ("position?coords=POINT(1 2)&parameter_names=sm", "parameter_names", "parameter-name"),
        ("cube?bbox=0,0,10,10&time=2015-01-01", "time", "datetime"),
        ("area?coords=POLYGON((0 0,10 0,10 10,0 0))&format=NetCDF", "format", "f"),
    ],
)
def test_edr_refuses_unknown_parameters_naming_the_edr_one(client, grid_version, query, sent, hint):
    response = client.get(f"{EDR}/{query}")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["parameter"] == sent
    assert f"did you mean {hint!r}" in body["description"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "parameter"),
    [
        (f"{API}/subset/?bbox=0,0,10,10&time=2015-01-01T00:00:00Q/", "time"),
        (f"{API}/point/?lon=1&lat=2&time=yesterday", "time"),
        (f"{API}/area/?bbox=0,0,10,10&time=2015-02-30", "time"),
        (f"{EDR}/cube?bbox=0,0,10,10&datetime=2015-01-01T00:00:00Q", "datetime"),
        (f"{EDR}/position?coords=POINT(1 2)&datetime=..", "datetime"),
    ],
)
def test_a_bad_time_is_refused_everywhere_naming_the_parameter(client, grid_version, url, parameter):
    response = client.get(url)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body.get("field", body.get("parameter")) == parameter


@pytest.mark.django_db
def test_a_time_with_an_offset_selects_the_same_steps_as_utc(client, grid_version, tmp_path):
    # 2015-01-02T06:00+08:00 is 2015-01-01T22:00Z: the first day's step (midnight) is before it, the second's after
    shifted = client.get(
        f"{API}/subset/?bbox=0,0,2,2&f=csv&time=2015-01-01T00:00:00%2B08:00/2015-01-02T06:00:00%2B08:00"
    )
    utc = client.get(f"{API}/subset/?bbox=0,0,2,2&f=csv&time=2014-12-31T16:00:00Z/2015-01-01T22:00:00Z")
    assert shifted.status_code == utc.status_code == 200
    assert b"".join(shifted.streaming_content) == b"".join(utc.streaming_content)


@pytest.mark.django_db
def test_a_format_error_names_f(client, grid_version):
    response = client.get(f"{API}/point/?lon=1&lat=2&f=geotiff")
    assert response.status_code == 400
    assert response.json()["field"] == "f"


def _add_second_variable(version):
    """Rewrite the synthetic grid with a second variable (``sm2``) and rebuild its cube stores."""
    f = DatasetFile.objects.get(version=version, name="grid.nc")
    path = Path(settings.DATA_ROOT) / f.path
    with xr.open_dataset(path) as ds:
        two = ds.load()
    two["sm2"] = two["sm"] * np.float32(2)
    two.to_netcdf(path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)
    for layout in store.store_paths(path).values():
        import shutil

        shutil.rmtree(layout, ignore_errors=True)
    store.build_stores(path)


@pytest.mark.django_db
def test_a_geotiff_of_several_variables_is_refused_at_the_estimate(client, grid_version):
    _add_second_variable(grid_version)
    estimate = client.get(f"{API}/subset/?bbox=0,0,10,10&f=geotiff&estimate=1")
    assert estimate.status_code == 400
    assert estimate.json()["field"] == "variables"
    assert "one variable" in estimate.json()["detail"]
    one = client.get(f"{API}/subset/?bbox=0,0,10,10&f=geotiff&variables=sm2")
    assert one.status_code == 200


@pytest.mark.django_db
def test_two_different_subsets_never_share_a_file_name(client, grid_version):
    # a version whose lineage names no product (published before the products existed): the dataset id names it
    DatasetVersion.objects.filter(id=grid_version.id).update(lineage={})
    names = set()
    for query in (
        "bbox=0,0,10,10",
        "bbox=0,0,10,11",
        "bbox=0,0,10,10&time=2015-01-01/2015-01-02",
        "polygon=POLYGON((0 0,10 0,10 10,0 0))",
        "polygon=POLYGON((0 0,10 0,0 10,0 0))",
    ):
        response = client.get(f"{API}/subset/?{query}&f=csv")
        assert response.status_code == 200, response.content
        disposition = response["Content-Disposition"]
        names.add(disposition.split("filename=")[1].strip('"'))
        b"".join(response.streaming_content)
    assert len(names) == 5
    assert all(n.startswith(f"{FT}_v") and n.endswith("_subset.csv") for n in names), names
    point = client.get(f"{API}/point/?lon=10.5&lat=20.25&time=2015-01-01/2015-01-02")
    point_name = point["Content-Disposition"].split("filename=")[1].strip('"')
    assert "point10.5_20.25" in point_name and "2015-01-01_2015-01-02" in point_name and point_name.endswith(".csv")
    b"".join(point.streaming_content)


@pytest.mark.django_db
def test_no_front_door_answers_500_to_a_nul_byte(client, grid_version):
    for url in (
        f"{API}/subset/?bbox=0,0,1,1&x%00=1",
        f"{API}/subset/?bbox=0,0,1,1&time=2015%00",
        f"{EDR}/cube?bbox=0,0,1,1&datetime=2015%00",
        f"{API}/point/?lon=1%00&lat=2",
    ):
        assert client.get(url).status_code == 400, url


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field", "hint"),
    [
        ("network=AmeriFlux&networks=x", "networks", "network"),
        ("network=AmeriFlux&stations=x", "stations", "station"),
        ("network=AmeriFlux&time=2015-01-01T00:00Q/", "time", None),
        ("network=AmeriFlux&format=csv", "format", "f"),
    ],
)
def test_observations_refuse_unknown_parameters_and_bad_times_like_every_front_door(client, query, field, hint):
    response = client.get(f"/api/observations/?{query}")
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    if hint:
        assert f"did you mean {hint!r}" in response.json()["detail"]


@pytest.mark.django_db
def test_observations_read_times_with_an_offset_as_utc(client):
    from ingestion.models import Observation

    first = Observation.objects.filter(station__network="AmeriFlux").order_by("time").values_list("time", flat=True)[0]
    local = (first + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%S") + "%2B08:00"  # the same instant, UTC+8
    later = (first + timedelta(hours=8, seconds=1)).strftime("%Y-%m-%dT%H:%M:%S") + "%2B08:00"
    end = (first + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    including = client.get(f"/api/observations/?network=AmeriFlux&time={local}/{end}")
    assert including.status_code == 200
    rows = b"".join(including.streaming_content).decode().splitlines()
    assert any(first.strftime("%Y-%m-%dT%H:%M:%S") in r for r in rows[1:]), rows[:3]
    excluding = client.get(f"/api/observations/?network=AmeriFlux&time={later}/{end}")
    body = b"".join(excluding.streaming_content).decode() if excluding.status_code == 200 else ""
    assert first.strftime("%Y-%m-%dT%H:%M:%S") not in body  # one second after it, in UTC+8, leaves it out
