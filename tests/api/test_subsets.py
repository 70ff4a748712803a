"""`/api/datasets/<id>/subset/` on a published grid: formats, values, errors, size limit, login-access."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from django.conf import settings

from portal.catalog.models import Dataset
from tests.grids import FT, csv_table

pytestmark = pytest.mark.django_db


def url(**params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/datasets/{FT}/subset/?{query}"


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_a_box_as_netcdf_holds_the_grid_values_and_a_citation(client, grid_version, tmp_path):
    response = client.get(url(bbox="10,20,14,23", time="2015-01-02/2015-01-03", variables="sm"))
    assert response.status_code == 200 and response["Content-Type"] == "application/x-netcdf"
    (tmp_path / "out.nc").write_bytes(body(response))
    with (
        xr.open_dataset(tmp_path / "out.nc") as out,
        xr.open_dataset(Path(settings.DATA_ROOT) / grid_version.directory / "grid.nc") as source,
    ):
        assert list(out["lon"].values) == [10.5, 11.5, 12.5, 13.5] and list(out["lat"].values) == [20.5, 21.5, 22.5]
        expected = source["sm"].sel(lat=out["lat"], lon=out["lon"], time=out["time"])
        np.testing.assert_array_equal(out["sm"].values, expected.values)
        assert out.sizes["time"] == 2 and out.attrs["citation"]


def test_an_antimeridian_box_as_csv_and_as_geotiff(client, grid_version, tmp_path):
    csv = client.get(url(bbox="178,0,-178,1", f="csv", time="2015-01-01/2015-01-01"))
    assert csv.status_code == 200
    table = csv_table(body(csv))
    assert sorted(set(table["lon"] % 360)) == [178.5, 179.5, 180.5, 181.5] and len(table) == 4
    row = table.iloc[0]
    assert row["sm"] == pytest.approx((row["lat"] + 90) * 1e3 + ((row["lon"] + 180) % 360))
    tif = client.get(url(bbox="10,20,14,23", f="geotiff"))
    assert tif.status_code == 200
    (tmp_path / "out.tif").write_bytes(body(tif))
    with rasterio.open(tmp_path / "out.tif") as src:
        assert src.count == 3 and (src.width, src.height) == (4, 3)
        assert src.read(1)[0, 0] == pytest.approx((22.5 + 90) * 1e3 + (10.5 + 180))  # north-up: first row 22.5 N


@pytest.mark.parametrize(
    "params, field",
    [
        ({"bbox": "10,50,20,40"}, "bbox"),
        ({"bbox": "10,20,30"}, "bbox"),
        ({"bbox": "10,20,14,23", "time": "2030-01-01/2030-02-01"}, "time"),
        ({"bbox": "10,20,14,23", "variables": "et"}, "variables"),
        ({"bbox": "10,20,14,23", "f": "xlsx"}, "f"),
        ({"bbox": "10,20,14,23", "file": "other.nc"}, "file"),
        ({"bbox": "10,20,14,23", "version": "x"}, "version"),
    ],
)
def test_a_bad_request_is_a_400_naming_the_field(client, grid_version, params, field):
    response = client.get(url(**params))
    assert response.status_code == 400 and response.json()["field"] == field


def test_a_request_above_the_job_limit_is_a_413_saying_what_to_do(client, grid_version, settings):
    settings.SUBSET_SYNC_MAX_BYTES = settings.SUBSET_JOB_MAX_BYTES = 1000
    response = client.get(url(bbox="-180,-90,180,90"))
    assert response.status_code == 413 and "stride" in response.json()["detail"]
    assert client.get(url(bbox="10,20,12,21")).status_code == 200  # 2 x 1 cells x 3 days fits


def test_a_login_access_dataset_needs_a_login(client, admin_client, grid_version):
    Dataset.objects.filter(id=FT).update(share_type=Dataset.ShareType.LOGIN)
    anonymous = client.get(url(bbox="10,20,14,23"))
    assert anonymous.status_code == 401 and anonymous.json()["need"] == "login"
    assert anonymous["WWW-Authenticate"].startswith("Bearer")
    assert admin_client.get(url(bbox="10,20,14,23")).status_code == 200
