"""The subset download form of the dataset page in headless Chromium (Debian's /usr/bin/chromium,
driven by Playwright), against a real server on the test database and the SYNTHETIC committed
0.5-degree grid of ``live_grid`` (values encode the cell: :func:`grid_values`)."""

from __future__ import annotations

import json
import re
import shutil
import time
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
import xarray as xr
from django.conf import settings
from playwright.sync_api import sync_playwright

from tests.conftest import CHROMIUM, CHROMIUM_ARGS, wait_until, web_server
from tests.grids import FT, grid_values, publish_grid

pytestmark = pytest.mark.django_db  # also for the browser tests: the session then sets up the test database

BBOX = ("min_lon", "min_lat", "max_lon", "max_lat")
DAYS = pd.date_range("2015-01-01", periods=20, freq="D")  # live_grid's time axis


def _expected(message) -> bool:
    """Chromium's console line for an API answer of 400 / 413 to the form's check (``estimate=1``):
    the form shows those answers (a bad field, a refusal); other console errors are problems."""
    url = (message.location or {}).get("url", "")
    return (
        bool(re.match(r"Failed to load resource: the server responded with a status of 4(00|13)\b", message.text))
        and "/api/datasets/" in url
        and "estimate=1" in url
    )


@pytest.fixture
def open_page(monkeypatch):
    """``open_page(base_url)``: a Chromium page whose console errors, page errors, failed requests
    and requests outside ``base_url`` are recorded in ``page.problems`` (the tests assert it is empty)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    assert shutil.which(CHROMIUM), "Debian chromium is needed (make setup installs it)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

        def open_page(base_url, language="en"):
            page = browser.new_page(viewport={"width": 1300, "height": 1800}, accept_downloads=True)
            page.context.add_cookies([{"name": "django_language", "value": language, "url": base_url}])
            page.problems = []
            page.on(
                "console",
                lambda m: m.type == "error" and not _expected(m) and page.problems.append(f"console: {m.text}"),
            )
            page.on("pageerror", lambda e: page.problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: page.problems.append(f"request failed: {r.url} {r.failure}"))
            page.on(
                "request",
                lambda r: r.url.startswith(base_url)
                or r.url.startswith("data:")
                or page.problems.append(f"external request: {r.url}"),
            )
            page.goto(f"{base_url}/datasets/{FT}/")
            page.wait_for_selector("#subset-map .leaflet-land-pane path", state="attached")
            return page

        yield open_page
        browser.close()


@pytest.fixture
def page(open_page, portal_url, live_grid):
    return open_page(portal_url)


def _estimate(base_url: str, kind: str = "subset", **params) -> dict:
    query = urllib.parse.urlencode({**params, "estimate": "1"})
    with urllib.request.urlopen(f"{base_url}/api/datasets/{FT}/{kind}/?{query}", timeout=30) as r:
        return json.load(r)


def _human(n: int) -> str:
    """As subset.js writes sizes."""
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    i = 0
    value = float(n)
    while value >= 1024 and i < len(units) - 1:
        value /= 1024
        i += 1
    if i == 0:
        return f"{n} B"
    text = f"{value:.1f}" if value < 10 else f"{value:.0f}"
    return f"{text} {units[i]}"


def _fill_bbox(page, west, south, east, north):
    for name, value in zip(BBOX, (west, south, east, north), strict=True):
        page.fill(f"#subset-form input[name={name}]", str(value))


def _wait_estimate(page, contains: str):
    wait_until(page, "(t) => document.getElementById('subset-estimate').textContent.includes(t)", contains)
    return page.inner_text("#subset-estimate")


@pytest.mark.browser
def test_the_form_shows_the_grids_variables_period_and_formats(page, portal_url):
    assert page.is_visible("#subset-form")
    assert page.locator("#subset-form input[name=variables]").evaluate_all(
        "els => els.map(e => [e.value, e.checked])"
    ) == [["sm", True]]
    assert "m3 m-3" in page.inner_text("#subset-form .subset-grid")
    assert "720 × 360" in page.inner_text("#subset-form .subset-grid")
    assert page.input_value("input[name=start]") == "2015-01-01"
    assert page.input_value("input[name=end]") == "2015-01-20"
    assert page.get_attribute("input[name=start]", "min") == "2015-01-01"
    # an empty box is the whole grid: 20 days x 360 x 720 float32, answered directly
    whole = _estimate(portal_url, version="1", file="grid.nc", f="netcdf", variables="sm", time="2015-01-01/2015-01-20")
    assert whole["mode"] == "direct"
    assert _human(whole["estimated_bytes"]) in _wait_estimate(page, "Estimated size")
    formats = "els => els.filter(e => !e.disabled).map(e => e.value)"
    assert page.locator("select[name=f] option").evaluate_all(formats) == [
        "netcdf",
        "geotiff",
        "csv",
        "zarr",
        "coveragejson",
    ]
    page.select_option("select[name=f]", "geotiff")
    page.check("input[name=kind][value=point]")
    assert page.locator("select[name=f] option").evaluate_all(formats) == ["netcdf", "csv", "zarr", "coveragejson"]
    assert page.input_value("select[name=f]") == "csv"  # GeoTIFF needs a grid: the series' first format instead
    assert page.is_visible("input[name=lon]") and not page.is_visible("input[name=min_lon]")
    assert page.locator("#subset-map .leaflet-pm-icon-circle-marker").count() == 1
    assert page.locator("#subset-map .leaflet-pm-icon-rectangle").count() == 0
    page.check("input[name=kind][value=area]")
    assert page.is_visible("input[name=min_lon]") and page.input_value("select[name=f]") == "csv"
    _wait_estimate(page, "Complete the request")  # an area mean needs a region
    page.click("#subset-form button[type=submit]")
    assert page.inner_text("#subset-error") == "Box (bbox): draw a box or a polygon on the map, or type it"
    assert page.problems == []


@pytest.mark.browser
def test_the_form_speaks_chinese(open_page, portal_url, live_grid):
    page = open_page(portal_url, "zh-hans")
    assert "获取内容" in page.inner_text("#subset-form .subset-kind legend")
    assert "估计大小" in _wait_estimate(page, "直接下载")
    page.fill("input[name=start]", "2016-02-01")
    page.fill("input[name=end]", "2016-02-10")
    page.wait_for_selector("#subset-error", state="visible")
    assert page.inner_text("#subset-error").startswith("时段 (time): ")
    assert page.problems == []


@pytest.mark.browser
def test_drawing_a_rectangle_with_the_mouse_fills_the_bbox_inputs(page, portal_url):
    def origin():
        """The map's container point (0, 0) in the window: its box plus its border (Leaflet counts from inside it)."""
        box = page.locator("#subset-map").bounding_box()
        border = page.evaluate(
            "(() => { const e = document.getElementById('subset-map'); return [e.clientLeft, e.clientTop]; })()"
        )
        return box["x"] + border[0], box["y"] + border[1]

    def pixel(lat, lon):
        """The whole pixel of the window (mouse events land on whole pixels) nearest to lat, lon."""
        point = page.evaluate(
            f"(() => {{ const p = window.portalSubset.map.latLngToContainerPoint([{lat}, {lon}]);"
            "return [p.x, p.y]; })()"
        )
        x0, y0 = origin()
        return round(x0 + point[0]), round(y0 + point[1])

    def lonlat(x, y):
        """Where the map puts that window pixel."""
        x0, y0 = origin()
        return page.evaluate(
            f"(() => {{ const p = window.portalSubset.map.containerPointToLatLng([{x - x0}, {y - y0}]);"
            " return [p.lng, p.lat]; })()"
        )

    # the map in the middle of the window: at its edge, a fraction of a pixel of it lies outside
    page.evaluate("document.getElementById('subset-map').scrollIntoView({block: 'center'})")
    page.click("#subset-map .leaflet-pm-icon-rectangle")
    start, end = pixel(20, 10), pixel(50, 40)
    page.mouse.click(*start)
    page.mouse.move(*pixel(35, 30), steps=5)
    page.mouse.click(*end)
    degrees_per_pixel = page.evaluate(
        "(() => { const m = window.portalSubset.map;"
        "return 360 / (m.latLngToContainerPoint([0, 180]).x - m.latLngToContainerPoint([0, -180]).x); })()"
    )
    values = [float(page.input_value(f"input[name={n}]")) for n in BBOX]
    assert np.allclose(values, [10, 20, 40, 50], atol=2 * degrees_per_pixel), values  # the box asked for
    assert np.allclose(values, [*lonlat(*start), *lonlat(*end)], atol=degrees_per_pixel), values  # where the mouse was
    assert page.is_checked("input[name=region][value=bbox]")
    # the request changed: the estimate follows
    drawn = _estimate(
        portal_url,
        bbox=",".join(page.input_value(f"input[name={n}]") for n in BBOX),
        version="1",
        file="grid.nc",
        f="netcdf",
        variables="sm",
        time="2015-01-01/2015-01-20",
    )
    assert "direct download" in _wait_estimate(page, _human(drawn["estimated_bytes"]))
    page.locator("#subset").screenshot(path="/tmp/portal-subset.png")  # to look at
    assert page.problems == []


@pytest.mark.browser
def test_typing_a_bbox_draws_it_and_updates_the_estimate(page, portal_url, live_grid):
    common = {
        "version": str(live_grid.number),
        "file": "grid.nc",
        "f": "netcdf",
        "variables": "sm",
        "time": "2015-01-01/2015-01-20",
    }
    _fill_bbox(page, 0, 0, 10, 10)
    small = _estimate(portal_url, bbox="0,0,10,10", **common)
    _wait_estimate(page, _human(small["estimated_bytes"]))
    bounds = page.evaluate(
        "(() => { const b = window.portalSubset.shape().getBounds();"
        "return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; })()"
    )
    assert bounds == [0, 0, 10, 10]
    page.fill("input[name=max_lat]", "40")
    larger = _estimate(portal_url, bbox="0,0,10,40", **common)
    assert larger["estimated_bytes"] > small["estimated_bytes"]
    assert "direct download" in _wait_estimate(page, _human(larger["estimated_bytes"]))
    # across the antimeridian: the west edge greater than the east one, drawn from 170 to 190 degrees
    _fill_bbox(page, 170, -10, -170, 10)
    across = _estimate(portal_url, bbox="170,-10,-170,10", **common)
    _wait_estimate(page, _human(across["estimated_bytes"]))
    bounds = page.evaluate(
        "(() => { const b = window.portalSubset.shape().getBounds();return [b.getWest(), b.getEast()]; })()"
    )
    assert bounds == [170, 190]
    # the period and the format are part of the request too
    page.fill("input[name=end]", "2015-01-02")
    shorter = _estimate(portal_url, **{**common, "bbox": "170,-10,-170,10", "time": "2015-01-01/2015-01-02"})
    _wait_estimate(page, _human(shorter["estimated_bytes"]))
    assert page.problems == []


@pytest.mark.browser
def test_submitting_a_small_box_as_netcdf_downloads_the_grid_values(page, tmp_path):
    _fill_bbox(page, 10, 20, 12, 23)
    page.fill("input[name=start]", "2015-01-03")
    page.fill("input[name=end]", "2015-01-05")
    page.select_option("select[name=f]", "netcdf")
    _wait_estimate(page, "direct download")
    url = page.url
    with page.expect_download() as info:
        page.click("#subset-form button[type=submit]")
    download = info.value
    assert download.suggested_filename.endswith(".nc")
    path = tmp_path / "box.nc"
    download.save_as(path)
    with xr.open_dataset(path) as ds:
        # the variable, with the cell bounds and grid mapping CF readers expect beside it
        assert set(ds.data_vars) == {"sm", "time_bnds", "lat_bnds", "lon_bnds", "crs"} - set(ds.coords)
        assert ds["sm"].attrs["grid_mapping"] == "crs" and ds["lat"].attrs["bounds"] == "lat_bnds"
        assert ds["time"].values[0] == np.datetime64("2015-01-03") and ds.sizes["time"] == 3
        assert ds["lon"].min() >= 10 and ds["lon"].max() <= 12 and ds["lat"].min() >= 20 and ds["lat"].max() <= 23
        assert ds.sizes["lon"] == 4 and ds.sizes["lat"] == 6
        t = (pd.DatetimeIndex(ds["time"].values) - DAYS[0]).days.to_numpy()
        expected = grid_values(t[:, None, None], ds["lat"].values[None, :, None], ds["lon"].values[None, None, :])
        np.testing.assert_allclose(ds["sm"].transpose("time", "lat", "lon").values, expected, rtol=1e-6)
    assert page.url == url
    wait_until(page, "document.getElementById('subset-estimate').textContent.length > 0")
    assert page.is_hidden("#subset-error")
    assert page.problems == []


@pytest.mark.browser
def test_a_point_series_as_csv_holds_the_20_days_of_the_nearest_cell(page, tmp_path):
    page.check("input[name=kind][value=point]")
    page.fill("input[name=lon]", "100.3")
    page.fill("input[name=lat]", "35.1")
    page.select_option("select[name=f]", "csv")
    _wait_estimate(page, "direct download")
    marker = page.evaluate("(() => { const p = window.portalSubset.shape().getLatLng(); return [p.lng, p.lat]; })()")
    assert marker == [100.3, 35.1]
    with page.expect_download() as info:
        page.click("#subset-form button[type=submit]")
    path = tmp_path / "point.csv"
    info.value.save_as(path)
    frame = pd.read_csv(path).rename(columns=lambda c: c.split(" [")[0])  # the header says "name [units]"
    assert len(frame) == 20 and list(frame["time"]) == [d.strftime("%Y-%m-%d") for d in DAYS]
    assert set(frame["lon"]) == {100.25} and set(frame["lat"]) == {35.25}  # the nearest cell's centre
    np.testing.assert_allclose(frame["sm"], grid_values(np.arange(20), 35.25, 100.25), rtol=1e-6)
    assert page.problems == []


@pytest.mark.browser
def test_a_drawn_polygon_and_an_area_mean_as_csv(page, tmp_path):
    def click(lat, lon):
        point = page.evaluate(
            f"(() => {{ const p = window.portalSubset.map.latLngToContainerPoint([{lat}, {lon}]);"
            "return [p.x, p.y]; })()"
        )
        box = page.locator("#subset-map").bounding_box()
        page.mouse.click(box["x"] + point[0], box["y"] + point[1])

    page.locator("#subset-map").scroll_into_view_if_needed()
    page.click("#subset-map .leaflet-pm-icon-polygon")
    for lat, lon in ((10, 0), (10, 40), (40, 20), (10, 0)):  # the last click, on the first vertex, closes it
        click(lat, lon)
    assert page.is_checked("input[name=region][value=polygon]") and page.is_visible("textarea[name=polygon]")
    wkt = page.input_value("textarea[name=polygon]")
    assert wkt.startswith("POLYGON((") and len(wkt.split(",")) == 4, wkt
    _wait_estimate(page, "direct download")
    # typed instead: a triangle whose edges pass no cell centre
    triangle = "POLYGON((0 10, 20 10, 10 30, 0 10))"
    page.fill("textarea[name=polygon]", triangle)
    ring = page.evaluate("window.portalSubset.shape().getLatLngs()[0].map(p => [p.lng, p.lat])")
    assert ring == [[0, 10], [20, 10], [10, 30]]
    page.check("input[name=kind][value=area]")
    assert (
        page.is_checked("input[name=region][value=polygon]") and page.input_value("textarea[name=polygon]") == triangle
    )
    page.select_option("select[name=f]", "csv")
    _wait_estimate(page, "direct download")
    with page.expect_download() as info:
        page.click("#subset-form button[type=submit]")
    path = tmp_path / "area.csv"
    info.value.save_as(path)
    frame = pd.read_csv(path)
    assert list(frame.columns) == ["time", "sm [m3 m-3]"] and len(frame) == 20  # units in the header
    # cos-latitude weighted mean over the cells whose centres fall inside, of the stored float32 values
    lat, lon = np.meshgrid(np.arange(0.25, 40, 0.5), np.arange(-0.25, 25, 0.5), indexing="ij")
    inside = shapely.contains_xy(shapely.from_wkt(triangle), lon, lat)
    lat, lon = lat[inside], lon[inside]
    weights = np.cos(np.deg2rad(lat))
    expected = [np.sum(weights * grid_values(t, lat, lon).astype("float32")) / weights.sum() for t in range(20)]
    np.testing.assert_allclose(frame["sm [m3 m-3]"], expected, rtol=1e-9)
    assert page.problems == []


@pytest.mark.browser
def test_a_small_box_downloads_in_every_format(page, tmp_path):
    _fill_bbox(page, 10, 20, 12, 23)
    page.fill("input[name=end]", "2015-01-02")
    for fmt, suffix in (
        ("netcdf", ".nc"),
        ("geotiff", ".tif"),
        ("csv", ".csv"),
        ("zarr", ".zarr.zip"),
        ("coveragejson", ".covjson"),
    ):
        page.select_option("select[name=f]", fmt)
        _wait_estimate(page, "direct download")
        with page.expect_download() as info:
            page.click("#subset-form button[type=submit]")
        path = tmp_path / f"box{suffix}"
        info.value.save_as(path)
        assert info.value.suggested_filename.endswith(suffix)
        if fmt == "csv":
            assert len(pd.read_csv(path)) == 2 * 6 * 4  # days x lat x lon
        elif fmt == "coveragejson":
            assert json.loads(path.read_text())["type"] == "Coverage"
        elif fmt == "zarr":
            assert zipfile.is_zipfile(path)
        elif fmt == "geotiff":
            assert path.read_bytes()[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00")
        wait_until(page, "!document.querySelector('#subset-form button[type=submit]').disabled")
    assert page.problems == []


@pytest.mark.browser
def test_placing_a_point_with_the_mouse_fills_lon_and_lat(page):
    page.check("input[name=kind][value=point]")
    page.locator("#subset-map").scroll_into_view_if_needed()
    page.click("#subset-map .leaflet-pm-icon-circle-marker")
    point = page.evaluate(
        "(() => { const p = window.portalSubset.map.latLngToContainerPoint([-30, 140]);return [p.x, p.y]; })()"
    )
    box = page.locator("#subset-map").bounding_box()
    page.mouse.click(box["x"] + point[0], box["y"] + point[1])
    lon, lat = float(page.input_value("input[name=lon]")), float(page.input_value("input[name=lat]"))
    assert abs(lon - 140) < 1.5 and abs(lat + 30) < 1.5
    _wait_estimate(page, "direct download")
    assert page.problems == []


@pytest.mark.browser
def test_a_period_outside_the_grid_shows_the_error_naming_the_field_and_stays(page):
    downloads = []
    page.on("download", lambda d: downloads.append(d))
    _fill_bbox(page, 10, 20, 12, 23)
    page.fill("input[name=start]", "2016-02-01")
    page.fill("input[name=end]", "2016-02-10")
    url = page.url
    page.click("#subset-form button[type=submit]")
    page.wait_for_selector("#subset-error", state="visible")
    message = page.inner_text("#subset-error")
    assert message.startswith("Period (time): ") and "outside" in message and "2015-01-20" in message, message
    assert page.is_visible(".field-error[data-field=time]")
    assert page.get_attribute("input[name=start]", "aria-invalid") == "true"
    # a bad box is named as such, next to the box inputs
    page.fill("input[name=start]", "2015-01-01")
    page.fill("input[name=end]", "2015-01-20")
    page.fill("input[name=min_lat]", "95")
    page.wait_for_selector(".field-error[data-field=bbox]", state="visible")
    assert page.inner_text("#subset-error").startswith("Box (bbox): ")
    assert page.is_hidden(".field-error[data-field=time]")
    page.click("#subset-form button[type=submit]")
    page.wait_for_selector(".field-error[data-field=bbox]", state="visible")
    page.wait_for_timeout(500)
    assert page.url == url and downloads == []
    assert page.problems == []


@pytest.fixture
def small_limit_url(service_env, live_grid):
    """A second web server whose direct-download limit is 1 MB, so a box of the grid becomes a job."""
    with web_server(dict(service_env, SUBSET_SYNC_MAX_BYTES=str(10**6)), workers=1) as url:
        yield url


@pytest.mark.browser
@pytest.mark.worker
def test_a_large_request_runs_as_a_job_and_the_form_goes_to_its_page(
    open_page, small_limit_url, celery_worker, tmp_path
):
    page = open_page(small_limit_url)
    _fill_bbox(page, -60, -30, 60, 30)  # 240 x 120 cells x 20 days of float32: about 2.3 MB
    page.select_option("select[name=f]", "netcdf")
    assert "job" in _wait_estimate(page, "Estimated size")
    with page.expect_navigation(url=re.compile(r".*/jobs/[0-9a-f-]{36}/(\?key=[A-Za-z0-9_-]+)?$")):
        page.click("#subset-form button[type=submit]")
    deadline = time.monotonic() + 120
    while page.get_attribute("#job", "data-status") != "done":
        assert celery_worker.poll() is None, celery_worker.log_path.read_text()
        assert page.get_attribute("#job", "data-status") != "failed", page.inner_text("#job-error")
        assert time.monotonic() < deadline, celery_worker.log_path.read_text()
        page.wait_for_timeout(300)
    assert page.evaluate("document.getElementById('job-progress').value") == 1
    path = tmp_path / "job.nc"
    with urllib.request.urlopen(page.get_attribute("#job-download", "href"), timeout=30) as r:
        path.write_bytes(r.read())
    with xr.open_dataset(path) as ds:
        assert ds.sizes["lon"] == 240 and ds.sizes["lat"] == 120 and ds.sizes["time"] == 20
        lat, lon = ds["lat"].values[7], ds["lon"].values[11]
        np.testing.assert_allclose(
            ds["sm"].sel(lat=lat, lon=lon).values, grid_values(np.arange(20), lat, lon), rtol=1e-6
        )
    assert page.problems == []


# ---------------------------------------------------------------------------- the form's context, without a browser


def _write_stations(path):
    """A CF timeSeries (DSG) NetCDF: not a grid, so no form for it."""
    xr.Dataset(
        {"et": (("station", "time"), np.zeros((2, 3)))},
        coords={
            "time": pd.date_range("2015-01-01", periods=3),
            "lat": ("station", [1.0, 2.0]),
            "lon": ("station", [3.0, 4.0]),
        },
    ).to_netcdf(path)


def test_the_context_lists_the_grids_of_the_latest_version_only(client):
    from portal.catalog.models import Dataset, DatasetFile
    from portal.catalog.subset_form import subset_form_context

    version = publish_grid(days=3, step=1.0)
    folder = Path(settings.DATA_ROOT) / version.directory
    _write_stations(folder / "stations.nc")
    with xr.open_dataset(folder / "grid.nc") as ds:
        ds.isel(time=slice(0, 2)).rename({"sm": "swe"}).to_netcdf(folder / "grid2.nc")
    for name in ("stations.nc", "grid2.nc"):
        DatasetFile.objects.create(
            version=version, name=name, path=f"{version.directory}/{name}", size=1, sha256="0" * 64
        )
    context = subset_form_context(Dataset.objects.prefetch_related("versions__files").get(id=FT))
    assert context["version"] == version.number and context["api"] == f"/api/datasets/{FT}/"
    assert [g["file"] for g in context["grids"]] == ["grid.nc", "grid2.nc"]
    first, second = context["grids"]
    assert first["variables"] == [{"name": "sm", "units": "m3 m-3", "long_name": ""}]
    assert first["lon"] == (-180, 180) and first["lat"] == (-90, 90) and first["resolution"] == (1, 1)
    assert first["shape"] == (360, 180) and first["time"] == ("2015-01-01", "2015-01-03") and first["steps"] == 3
    assert second["variables"][0]["name"] == "swe" and second["time"] == ("2015-01-01", "2015-01-02")
    assert context["kinds"]["subset"] == ["netcdf", "geotiff", "csv", "zarr", "coveragejson"]
    assert "geotiff" not in context["kinds"]["point"] and "csv" in context["kinds"]["area"]
    page = client.get(f"/datasets/{FT}/").content.decode()
    assert '<select name="file">' in page and 'value="grid2.nc"' in page and 'value="stations.nc"' not in page
    assert 'id="subset-form"' in page


def test_no_form_without_a_grid(client):
    from portal.catalog.models import Dataset, DatasetFile, DatasetVersion
    from portal.catalog.subset_form import subset_form_context

    dataset = Dataset.objects.get(id=FT)
    DatasetVersion.objects.filter(dataset=dataset).delete()  # rolled back after the test
    assert subset_form_context(dataset) is None
    page = client.get(f"/datasets/{FT}/").content.decode()
    assert 'id="subset-form"' not in page and "subset.js" not in page and "gridded NetCDF" not in page
    version = DatasetVersion.objects.create(dataset=dataset, number=99, directory="products/subset_test/v99")
    folder = Path(settings.DATA_ROOT) / version.directory
    folder.mkdir(parents=True, exist_ok=True)
    _write_stations(folder / "stations.nc")
    DatasetFile.objects.create(
        version=version, name="stations.nc", path=f"{version.directory}/stations.nc", size=1, sha256="0" * 64
    )
    DatasetFile.objects.create(
        version=version, name="missing.nc", path=f"{version.directory}/missing.nc", size=1, sha256="0" * 64
    )
    assert subset_form_context(Dataset.objects.get(id=FT)) is None
    page = client.get(f"/datasets/{FT}/").content.decode()
    assert 'id="subset-form"' not in page and "gridded NetCDF" in page


@pytest.mark.browser
def test_a_download_that_fails_after_a_good_estimate_shows_its_error_and_no_success(page):
    """The estimate says "direct download", then the answer itself fails (here: the server's 400, as a
    writer's refusal would be): the form names the field beside itself and never claims a download."""
    _fill_bbox(page, 10, 20, 12, 23)
    page.select_option("select[name=f]", "csv")
    _wait_estimate(page, "direct download")

    def refuse(route):
        if "estimate=1" in route.request.url:
            return route.continue_()
        return route.fulfill(
            status=400,
            content_type="application/json",
            body=json.dumps({"field": "bbox", "detail": "bbox: refused while writing (test)"}),
        )

    page.route("**/api/datasets/*/subset/*", refuse)
    downloads = []
    page.on("download", lambda d: downloads.append(d))
    page.click("#subset-form button[type=submit]")
    page.wait_for_selector("#subset-error:not([hidden])")
    assert "refused while writing (test)" in page.inner_text("#subset-error")
    assert page.is_visible('.field-error[data-field="bbox"]')
    assert "Downloaded" not in page.inner_text("#subset-estimate") and downloads == []


def test_the_job_page_cancels_a_queued_job_for_its_anonymous_owner_only(
    open_page,
    portal_url,
    live_grid,
    django_db_blocker,
):
    import secrets

    from portal.subsets.models import SubsetJob
    from portal.subsets.ownership import hash_key

    key = secrets.token_urlsafe(32)
    with django_db_blocker.unblock():  # committed: the server sees it; no worker runs it
        job = SubsetJob.objects.create(
            owner_key=hash_key(key),
            dataset_id=FT,
            version=live_grid,
            file_name="grid.nc",
            kind="subset",
            params={"bbox": "0,0,1,1"},
            request_key=secrets.token_hex(32),
            estimated_bytes=10,
        )
    try:
        page = open_page(portal_url)
        assert page.goto(f"{portal_url}/jobs/{job.id}/").status == 404  # without the key: no such job
        page.goto(f"{portal_url}/jobs/{job.id}/?key={key}")
        page.wait_for_selector("#job[data-status=queued]", state="attached")  # (the CSP forbids eval'd predicates)
        assert page.is_visible("#job-cancel")
        with page.expect_response(lambda r: "/cancel/" in r.url) as answer:
            page.click("#job-cancel")
        assert answer.value.status == 200, (answer.value.status, answer.value.text(), page.problems)
        page.wait_for_selector("#job[data-status=cancelled]", state="attached")
        assert not page.is_visible("#job-cancel") and page.is_visible("#job-retry")
        with django_db_blocker.unblock():
            assert SubsetJob.objects.get(id=job.id).status == "cancelled"
        # the 404 page load above is the only failed request the page saw
        assert [p for p in page.problems if "404" not in p] == []
    finally:
        with django_db_blocker.unblock():
            SubsetJob.objects.filter(id=job.id).delete()
