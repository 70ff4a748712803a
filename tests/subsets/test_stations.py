"""Point-collection subsets (/api/observations/): towers, stations and basins ingested from the real sample data."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
import xarray as xr

from ingestion.models import Observation, Station
from portal.subsets.models import DownloadLog

pytestmark = pytest.mark.django_db


def get(client, **params):
    return client.get("/api/observations/", params)


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_a_box_and_period_select_exactly_the_towers_inside(client):
    tower = Station.objects.filter(network="AmeriFlux", geom__isnull=False).order_by("code").first()
    x, y = tower.geom.x, tower.geom.y
    box = f"{x - 1},{y - 1},{x + 1},{y + 1}"
    response = get(client, bbox=box, network="AmeriFlux", time="2019-01-01/2021-12-31")
    assert response.status_code == 200
    table = pd.read_csv(io.BytesIO(body(response)))
    inside = Station.objects.filter(network="AmeriFlux", geom__within=tower.geom.buffer(1).envelope)
    assert set(table["code"]) <= set(inside.values_list("code", flat=True)) and tower.code in set(table["code"])
    assert table["lon"].between(x - 1, x + 1).all() and table["lat"].between(y - 1, y + 1).all()
    times = pd.to_datetime(table["time"], utc=True)
    assert times.min() >= pd.Timestamp("2019-01-01", tz="UTC") and times.max() < pd.Timestamp("2022-01-01", tz="UTC")
    expected = Observation.objects.filter(
        station__in=inside, time__gte="2019-01-01T00:00Z", time__lt="2022-01-01T00:00Z"
    ).count()
    assert len(table) == expected
    assert DownloadLog.objects.filter(kind="stations").latest("created_at").size == len(
        body(get(client, bbox=box, network="AmeriFlux", time="2019-01-01/2021-12-31"))
    )


def test_a_network_as_netcdf_dsg_and_json(client, tmp_path, verified_user):
    client.force_login(verified_user)  # basin tables carry no open licence: verified users only
    code = Station.objects.filter(network="GRDC-MRB").order_by("code").values_list("code", flat=True).first()
    nc = get(client, network="GRDC-MRB", station=code, f="netcdf")
    assert nc.status_code == 200
    (tmp_path / "s.nc").write_bytes(body(nc))
    rows = Observation.objects.filter(station__network="GRDC-MRB", station__code=code)
    variable = rows.values_list("variable", flat=True).first()
    with xr.open_dataset(tmp_path / "s.nc") as ds:
        assert ds.attrs["featureType"] == "timeSeries" and list(ds["station_id"].values) == [f"GRDC-MRB:{code}"]
        assert int(ds[variable].notnull().sum()) == rows.filter(variable=variable).values("time").distinct().count()
    doc = json.loads(body(get(client, network="GRDC-MRB", station=code, f="json", variables=variable)))
    (station,) = doc["stations"]
    assert station["code"] == code and list(station["series"]) == [variable]
    assert len(station["series"][variable]["value"]) == rows.filter(variable=variable).count()


def test_across_the_antimeridian_and_errors(client, settings):
    # no tower sits near the antimeridian in the sample data: the box must answer "nothing", not everything
    response = get(client, bbox="179,-10,-179,10")
    assert response.status_code == 400 and response.json()["field"] == "bbox"
    assert get(client).json()["field"] == "bbox"  # the whole collection is not a subset
    assert get(client, network="NOPE").json()["field"] == "network"
    assert get(client, network="AmeriFlux", time="2019-13").json()["field"] == "time"  # no 13th month
    assert get(client, network="AmeriFlux", f="xlsx").json()["field"] == "f"
    settings.STATION_SUBSET_MAX_ROWS = 10
    too_many = get(client, network="AmeriFlux")
    assert too_many.status_code == 413 and "narrow" in too_many.json()["detail"]


def test_a_closed_network_is_refused_by_name_and_left_out_of_a_box_saying_so(client, verified_user):
    from portal.catalog.models import NetworkAccess
    from tests.conftest import make_user

    basin = Station.objects.filter(network="GRDC-MRB").order_by("code").values_list("code", flat=True).first()
    named = get(client, network="GRDC-MRB")
    assert named.status_code == 401 and "GRDC-MRB" in named.json()["detail"]  # anonymous: sign in
    assert get(client, station=basin).status_code == 401  # a station of the network names it too
    unverified = make_user("new@example.org", verified=False)
    client.force_login(unverified)
    assert get(client, network="GRDC-MRB").status_code == 403  # signed in, address not verified
    client.force_login(verified_user)
    assert get(client, network="GRDC-MRB", station=basin).status_code == 200
    client.logout()

    # a network with coordinates closed too: a box-only request leaves it out and says so
    box = None
    for other in Station.objects.exclude(network="AmeriFlux").filter(geom__isnull=False).order_by("code")[:300]:
        x, y = other.geom.x, other.geom.y
        candidate = f"{x - 1},{y - 1},{x + 1},{y + 1}"
        if Station.objects.filter(network="AmeriFlux", geom__within=other.geom.buffer(1).envelope).exists():
            box = candidate
            break
    assert box, "the sample data have an AmeriFlux tower within a degree of another network's station"
    NetworkAccess.objects.create(network="AmeriFlux", note="test")
    response = get(client, bbox=box)
    assert response.status_code == 200 and response["X-Excluded-Networks"] == "AmeriFlux"
    assert "AmeriFlux" not in set(pd.read_csv(io.BytesIO(body(response)))["network"])
    assert get(client, bbox=box, network="AmeriFlux").status_code == 401
    client.force_login(verified_user)
    inside = get(client, bbox=box)
    assert inside.status_code == 200 and "X-Excluded-Networks" not in inside
    assert "AmeriFlux" in set(pd.read_csv(io.BytesIO(body(inside)))["network"])


def test_a_long_stream_is_refused_with_how_to_split_it(client, settings):
    settings.STATION_SUBSET_SYNC_MAX_ROWS = 10
    files = len(list((settings.DATA_ROOT / "tmp").glob("*"))) if (settings.DATA_ROOT / "tmp").exists() else 0
    response = get(client, network="AmeriFlux")
    assert response.status_code == 413 and response.json()["field"] == "bbox"
    detail = response.json()["detail"]
    assert "by period" in detail and "by network" in detail and "by station" in detail and "AmeriFlux: " in detail
    assert len(list((settings.DATA_ROOT / "tmp").glob("*"))) == files  # nothing written
