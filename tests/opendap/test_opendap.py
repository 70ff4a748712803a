"""OPeNDAP (DAP2) access to published grids: ``/opendap/<id>/v<n>/<file>.dds|.das|.dods``.

Fast tests go through Django's test client on the in-transaction ``grid_version`` (1 degree, 3 days);
the end-to-end tests open the committed ``live_grid`` (0.5 degree, 20 days) on a real gunicorn
server with ``xarray.open_dataset(url)`` (netCDF4 engine: netCDF-C's own DAP2 client) and compare
with the NetCDF file.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from django.conf import settings

from portal.catalog.models import Dataset
from portal.opendap import dap
from portal.opendap.views import _layout
from tests.grids import FT, grid_values

from ..conftest import make_user

db = pytest.mark.django_db


def url(version, suffix: str = "", query: str = "") -> str:
    return f"/opendap/{FT}/v{version.number}/grid.nc{suffix}" + (f"?{query}" if query else "")


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def xdr_arrays(data: bytes, types: list[str]) -> list[np.ndarray]:
    """Decode the DODS body ``data``: DAP2 arrays of the given big-endian types, in order."""
    marker = data.index(b"Data:\r\n")
    rest, out = data[marker + len(b"Data:\r\n") :], []
    for kind in types:
        n, again = np.frombuffer(rest[:8], ">u4")
        assert n == again
        size = np.dtype(kind).itemsize * int(n)
        out.append(np.frombuffer(rest[8 : 8 + size], kind))
        rest = rest[8 + size :]
    assert rest == b"", "bytes left after the declared arrays"
    return out


# --------------------------------------------------------------------------- Django test client


@db
def test_the_dds_declares_the_grid_with_its_maps(client, grid_version):
    response = client.get(url(grid_version, ".dds"))
    text = response.content.decode()
    assert response.status_code == 200 and response["Content-Description"] == "dods-dds"
    assert text.startswith("Dataset {") and text.rstrip().endswith("} grid.nc;")
    assert "Grid {" in text and "Float32 sm[time = 3][lat = 180][lon = 360];" in text
    assert "    Float64 lat[lat = 180];" in text and "Int32 time[time = 3];" in text


@db
def test_a_constrained_dds_has_the_hyperslab_shape(client, grid_version):
    text = client.get(url(grid_version, ".dds", "sm[0:1:1][10:2:19][5]")).content.decode()
    assert "Float32 sm[time = 2][lat = 5][lon = 1];" in text
    assert "Float64 lat[lat = 5];" in text and "Float64 lon[lon = 1];" in text
    # a member of a Grid comes back as a Structure (what netCDF-C asks for: sm.sm[...])
    text = client.get(url(grid_version, ".dds", "sm.sm[2][0:3][0:1]")).content.decode()
    assert "Structure {" in text and "Grid" not in text and "Float32 sm[time = 1][lat = 4][lon = 2];" in text
    assert "Float64 lat" not in text


@db
def test_the_das_carries_what_xarray_decodes(client, grid_version):
    response = client.get(url(grid_version, ".das"))
    text = response.content.decode()
    assert response.status_code == 200 and text.startswith("Attributes {")
    sm = text[text.index("    sm {") : text.index("    }", text.index("    sm {"))]
    assert 'String units "m3 m-3";' in sm and "Float32 _FillValue NaN;" in sm
    time = text[text.index("    time {") : text.index("    }", text.index("    time {"))]
    assert 'String units "days since 2015-01-01' in time and 'String calendar "proleptic_gregorian";' in time
    assert 'String units "degrees_north";' in text and "NC_GLOBAL {" in text


@db
def test_dods_values_follow_dap2_hyperslabs_with_strides(client, grid_version):
    # DAP2 is [start:stride:stop] with the stop included
    response = client.get(url(grid_version, ".dods", "sm[1:1:2][10:2:19][100:3:109]"))
    assert response.status_code == 200 and response["Content-Type"] == "application/octet-stream"
    sm, time, lat, lon = xdr_arrays(body(response), [">f4", ">i4", ">f8", ">f8"])
    assert list(time) == [1, 2]  # days since 2015-01-01
    np.testing.assert_array_equal(lat, np.arange(10, 20, 2) - 89.5)
    np.testing.assert_array_equal(lon, np.arange(100, 110, 3) - 179.5)
    expected = grid_values(time[:, None, None], lat[None, :, None], lon[None, None, :]).astype("float32")
    np.testing.assert_array_equal(sm.reshape(2, 5, 4), expected)


@db
def test_a_point_series_and_a_map_give_the_file_values(client, grid_version):
    # a point series and a coordinate alone
    (sm,) = xdr_arrays(body(client.get(url(grid_version, ".dods", "sm.sm[0:2][50][60]"))), [">f4"])
    np.testing.assert_array_equal(sm, grid_values(np.arange(3), 50 - 89.5, 60 - 179.5).astype("float32"))
    (lon,) = xdr_arrays(body(client.get(url(grid_version, ".dods", "lon[358:359]"))), [">f8"])
    assert list(lon) == [178.5, 179.5]


@db
def test_dods_streams_block_by_block(client, grid_version, monkeypatch):
    monkeypatch.setattr(dap, "BLOCK_BYTES", 200_000)  # a 1-degree day map is 259,200 bytes: one day per block
    response = client.get(url(grid_version, ".dods", "sm.sm"))
    parts = list(response.streaming_content)
    values = [p for p in parts if len(p) == 180 * 360 * 4]
    assert len(values) == 3, "one block of values per day"
    (sm,) = xdr_arrays(b"".join(parts), [">f4"])
    lat, lon = np.arange(-89.5, 90), np.arange(-179.5, 180)
    np.testing.assert_array_equal(
        sm.reshape(3, 180, 360),
        grid_values(np.arange(3)[:, None, None], lat[None, :, None], lon[None, None, :]).astype("float32"),
    )


def test_a_point_series_is_read_from_the_time_chunked_store():
    cube = np.broadcast_to(np.float32(0), (20, 360, 720))
    ds = xr.Dataset(
        {"sm": (("time", "lat", "lon"), cube)},
        coords={"time": np.arange(20), "lat": np.arange(360.0), "lon": np.arange(720.0)},
    )
    view = dap.DapView(ds, "grid.nc")
    assert _layout(view, dap.parse_constraint("sm.sm[0:19][10][20]", view.variables)) == "series"
    assert _layout(view, dap.parse_constraint("sm[3][0:359][0:719]", view.variables)) == "map"
    assert _layout(view, dap.parse_constraint("lat", view.variables)) is None


@db
@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("sm[0:1:3]", "outside dimension 'time'"),
        ("sm[2:1]", "starts after it stops"),
        ("sm[0:0:1]", "stride"),
        ("sm[a:b]", "non-negative integers"),
        ("sm[-1]", "non-negative integers"),
        ("sm[0][0][0][0]", "4 hyperslabs"),
        ("sm[", "expected name"),
        ("nosuch", "no variable 'nosuch'"),
        ("sm.nosuch", "not a member of 'sm'"),
        ("lat.lat", "not a Grid"),
        ("sm&time>1", "selections"),
        ("sm,,lat", "empty item"),
        ("max(sm)", "server functions"),
    ],
)
def test_a_malformed_constraint_is_a_dap_error_400_naming_it(client, grid_version, query, named):
    for suffix in (".dods", ".dds"):
        response = client.get(url(grid_version, suffix, query))
        text = response.content.decode()
        assert response.status_code == 400, (query, text)
        assert text.startswith("Error {") and "code = 400;" in text and named in text


@db
@pytest.mark.parametrize(
    "path",
    [
        "/opendap/{ds}/v{n}/other.nc.dds",
        "/opendap/{ds}/v999/grid.nc.dds",
        "/opendap/nosuch/v{n}/grid.nc.dds",
        "/opendap/{ds}/v{n}/grid.nc.dmr",
        "/opendap/{ds}/v{n}/grid.nc.csv",
    ],
)
def test_unknown_dataset_version_or_file_is_404(client, grid_version, path):
    response = client.get(path.format(ds=FT, n=grid_version.number))
    assert response.status_code == 404 and response.content.startswith(b"Error {")


@db
def test_the_bare_url_describes_the_file(client, grid_version):
    response = client.get(url(grid_version))
    text = response.content.decode()
    assert response.status_code == 200 and "xarray.open_dataset" in text and "<td>sm</td>" in text
    assert client.get(url(grid_version, ".html")).status_code == 200


@db
def test_a_response_above_the_limit_is_413(client, grid_version, settings):
    settings.OPENDAP_MAX_BYTES = 100_000  # the whole sm is 777,600 bytes, a map 259,200
    assert client.get(url(grid_version, ".dods", "sm[0][0:9][0:9]")).status_code == 200
    response = client.get(url(grid_version, ".dods", "sm"))
    assert response.status_code == 413 and b"smaller hyperslabs" in response.content


@db
def test_login_access_needs_a_portal_user(client, grid_version):
    Dataset.objects.filter(pk=FT).update(share_type=Dataset.ShareType.LOGIN)
    user = make_user("dapuser@example.org", "s3cret-pass", username="dapuser")
    response = client.get(url(grid_version, ".dds"))
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Basic")

    def basic(credentials):
        return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(credentials.encode()).decode()}

    assert client.get(url(grid_version, ".dds"), **basic("dapuser:wrong")).status_code == 401
    assert client.get(url(grid_version, ".dds"), HTTP_AUTHORIZATION="Basic !!").status_code == 401
    assert client.get(url(grid_version, ".dds"), **basic("dapuser:s3cret-pass")).status_code == 200
    client.force_login(user)
    assert client.get(url(grid_version, ".das")).status_code == 200


# --------------------------------------------------------------------------- real server, netCDF-C client


def live(portal_url: str, version, suffix: str = "", query: str = "") -> str:
    return portal_url + url(version, suffix, query)


def source(version) -> xr.Dataset:
    return xr.open_dataset(Path(settings.DATA_ROOT) / version.directory / "grid.nc")


def test_xarray_opens_a_published_version_and_reads_hyperslabs(portal_url, live_grid):
    with xr.open_dataset(live(portal_url, live_grid), engine="netcdf4") as remote, source(live_grid) as local:
        assert dict(remote.sizes) == {"time": 20, "lat": 360, "lon": 720}
        assert np.issubdtype(remote["time"].dtype, np.datetime64)
        xr.testing.assert_identical(remote["time"], local["time"])
        assert remote["sm"].attrs["units"] == "m3 m-3" and remote["lat"].attrs["units"] == "degrees_north"
        # a box and period (a hyperslab request), a strided one and a point series
        box = dict(time=slice("2015-01-03", "2015-01-06"), lat=slice(10, 20), lon=slice(100, 120))
        got = remote["sm"].sel(box).load()
        assert got.shape == (4, 20, 40)
        xr.testing.assert_identical(got, local["sm"].sel(box).load())
        strided = dict(time=slice(0, 20, 7), lat=slice(3, 360, 50), lon=slice(0, 720, 99))
        xr.testing.assert_identical(remote["sm"].isel(strided).load(), local["sm"].isel(strided).load())
        point = remote["sm"].sel(lat=45.25, lon=-120.75).load()
        np.testing.assert_array_equal(point.values, grid_values(np.arange(20), 45.25, -120.75).astype("float32"))


def test_errors_over_http(portal_url, live_grid):
    with pytest.raises(urllib.error.HTTPError) as bad:
        urllib.request.urlopen(live(portal_url, live_grid, ".dods", "sm[0:1:99]"))
    assert bad.value.code == 400 and b"outside dimension 'time'" in bad.value.read()
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(portal_url + f"/opendap/{FT}/v{live_grid.number}/missing.nc.dds")
    assert missing.value.code == 404
    with pytest.raises(OSError):
        xr.open_dataset(portal_url + f"/opendap/{FT}/v{live_grid.number}/missing.nc", engine="netcdf4")


@pytest.fixture
def login_access(live_grid, django_db_blocker):
    """FT made login-access and a portal user, COMMITTED for the live server; both undone afterwards."""
    with django_db_blocker.unblock():
        before = Dataset.objects.get(pk=FT).share_type
        Dataset.objects.filter(pk=FT).update(share_type=Dataset.ShareType.LOGIN)
        user = make_user("dap-live@example.org", username="dap-live")
    try:
        yield "dap-live", "pa55-word-ok"
    finally:
        with django_db_blocker.unblock():
            Dataset.objects.filter(pk=FT).update(share_type=before)
            user.delete()


def test_login_access_over_http_with_credentials_in_the_url(portal_url, live_grid, login_access):
    username, password = login_access
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(live(portal_url, live_grid, ".dds"))
    assert anonymous.value.code == 401 and anonymous.value.headers["WWW-Authenticate"].startswith("Basic")
    with pytest.raises(OSError):
        xr.open_dataset(live(portal_url, live_grid), engine="netcdf4")
    with pytest.raises(OSError):
        xr.open_dataset(live(portal_url.replace("://", f"://{username}:wrong@"), live_grid), engine="netcdf4")
    with (
        xr.open_dataset(
            live(portal_url.replace("://", f"://{username}:{password}@"), live_grid), engine="netcdf4"
        ) as remote,
        source(live_grid) as local,
    ):
        part = dict(time=slice(0, 2), lat=slice(100, 103), lon=slice(0, 5))
        xr.testing.assert_identical(remote["sm"].isel(part).load(), local["sm"].isel(part).load())
