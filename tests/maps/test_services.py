"""Map previews through the Django test client on the SYNTHETIC published grid (tests/grids.py: values
encode the cell): the PNG shows the right cells, the cache, the legend, bad input, access, and WMS
requests and errors (the OWSLib client against a real server: tests/maps/test_wms_owslib.py)."""

from __future__ import annotations

import io
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from portal.catalog.models import Dataset
from portal.maps import render, services
from tests.grids import FT, grid_values

pytestmark = pytest.mark.django_db
MAP = f"/api/datasets/{FT}/map.png"
OGC = "{http://www.opengis.net/ogc}"
WMS = "{http://www.opengis.net/wms}"


def png(response) -> np.ndarray:
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA"))


def expected(client, t, lats, lons):
    """The colours the legend's range gives the synthetic values at these cell centres."""
    info = client.get(f"/api/datasets/{FT}/map/legend.json").json()
    style = render.Style(info["kind"], info["cmap"], info["units"], info["label"])
    values = grid_values(t, np.asarray(lats)[:, None], np.asarray(lons)[None, :])
    return render.colourise(values, style, info["vmin"], info["vmax"])


def test_the_map_png_shows_the_cells_of_the_box_at_the_time_step(client, grid_version):
    image = png(client.get(MAP, {"time": "2015-01-02", "bbox": "10,20,14,22", "width": 4, "height": 2}))
    assert image.shape == (2, 4, 4)
    assert (image == expected(client, 1, [21.5, 20.5], [10.5, 11.5, 12.5, 13.5])).all()
    default = png(client.get(MAP))  # the last step over the whole grid, 720 x 360
    assert default.shape == (360, 720, 4) and (default[..., 3] == 255).all()


def test_the_colour_range_is_one_per_version_and_the_legend_has_units(client, grid_version):
    legend = client.get(f"/api/datasets/{FT}/map/legend.json").json()
    assert legend["units"] == "m3 m-3" and legend["kind"] == "sequential" and legend["vmin"] < legend["vmax"]
    image = Image.open(io.BytesIO(client.get(f"/api/datasets/{FT}/map/legend.png").content))
    assert image.format == "PNG" and image.size[0] >= 200


def test_a_rendered_map_is_cached_per_version_and_request(client, grid_version):
    layer = services.find_layer(Dataset.objects.get(id=FT), "sm")
    args = (layer, 0, (-180, -90, 180, 90), 720, 360)
    start = time.perf_counter()
    cold = services.render_png(*args)
    cold_s = time.perf_counter() - start
    files = list(services.cache_dir(layer).rglob("*.png"))
    start = time.perf_counter()
    warm = services.render_png(*args)
    warm_s = time.perf_counter() - start
    assert warm == cold and len(files) == 1 and services.cache_dir(layer).name == "sm"
    assert grid_version.files.get(name="grid.nc").sha256[:32] in str(files[0])  # keyed by the file's checksum
    assert warm_s < cold_s
    other = services.render_png(layer, 1, (-180, -90, 180, 90), 720, 360)
    assert other != cold and len(list(services.cache_dir(layer).rglob("*.png"))) == 2


@pytest.mark.parametrize(
    "params, field",
    [
        ({"time": "2016-05-05"}, "time"),
        ({"time": "yesterday"}, "time"),
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "10,50,20,40"}, "bbox"),
        ({"width": "0"}, "width"),
        ({"height": "99999"}, "height"),
        ({"width": "١٢"}, "width"),
        ({"variable": "nope"}, "variable"),
        ({"version": "x"}, "version"),
        ({"version": "99"}, "version"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(client, grid_version, params, field):
    response = client.get(MAP, params)
    assert response.status_code in (400, 404) and response.json()["field"] == field, response.content


def test_a_restricted_dataset_does_not_leak_through_the_maps(client, admin_client, grid_version):
    Dataset.objects.filter(id=FT).update(share_type=Dataset.ShareType.LOGIN)
    for url in (
        MAP,
        f"/api/datasets/{FT}/map/legend.json",
        f"/datasets/{FT}/versions/{grid_version.number}/quicklook.png",
    ):
        assert client.get(url).status_code == 401, url
        assert admin_client.get(url).status_code == 200, url
    caps = ET.fromstring(client.get("/wms/", {"SERVICE": "WMS", "REQUEST": "GetCapabilities"}).content)
    assert f"{FT}:sm" not in [n.text for n in caps.iter(f"{WMS}Name")]
    admin_caps = ET.fromstring(admin_client.get("/wms/", {"SERVICE": "WMS", "REQUEST": "GetCapabilities"}).content)
    assert f"{FT}:sm" in [n.text for n in admin_caps.iter(f"{WMS}Name")]
    refused = client.get("/wms/", {**GETMAP, "LAYERS": f"{FT}:sm"})
    assert refused.status_code == 401 and refused["Content-Type"].startswith("text/xml")
    assert ET.fromstring(refused.content).find(f"{OGC}ServiceException").get("code") == "AccessDenied"
    assert client.get("/wms/", {**GETMAP, "REQUEST": "GetLegendGraphic", "LAYER": f"{FT}:sm"}).status_code == 401


def test_the_quicklook_is_the_last_step_of_the_first_variable(client, grid_version):
    image = png(client.get(f"/datasets/{FT}/versions/{grid_version.number}/quicklook.png"))
    assert image.shape == (180, 360, 4)
    assert client.get(f"/datasets/{FT}/versions/999/quicklook.png").status_code == 404


GETMAP = {
    "SERVICE": "WMS",
    "VERSION": "1.3.0",
    "REQUEST": "GetMap",
    "LAYERS": f"{FT}:sm",
    "STYLES": "",
    "CRS": "EPSG:4326",
    "BBOX": "20,10,22,14",  # EPSG:4326 in 1.3.0: lat first
    "WIDTH": "4",
    "HEIGHT": "2",
    "FORMAT": "image/png",
    "TIME": "2015-01-02T00:00:00Z",
}


def test_wms_getmap_minds_the_axis_order_of_each_crs(client, grid_version):
    want = expected(client, 1, [21.5, 20.5], [10.5, 11.5, 12.5, 13.5])
    assert (png(client.get("/wms/", GETMAP)) == want).all()
    assert (png(client.get("/wms/", {**GETMAP, "CRS": "CRS:84", "BBOX": "10,20,14,22"})) == want).all()


def test_wms_feature_info_gives_the_value_of_the_cell_under_the_pixel(client, grid_version):
    params = {
        **GETMAP,
        "REQUEST": "GetFeatureInfo",
        "QUERY_LAYERS": f"{FT}:sm",
        "I": "2",
        "J": "1",
        "INFO_FORMAT": "application/json",
    }
    info = client.get("/wms/", params).json()
    assert (info["lon"], info["lat"]) == (12.5, 20.5)
    assert info["value"] == pytest.approx(float(np.float32(grid_values(1, 20.5, 12.5))))
    assert "value = " in client.get("/wms/", {**params, "INFO_FORMAT": "text/plain"}).content.decode()


@pytest.mark.parametrize(
    "change, code, locator",
    [
        ({"LAYERS": "nope:sm"}, "LayerNotDefined", "LAYERS"),
        ({"LAYERS": f"{FT}:nope"}, "LayerNotDefined", "LAYERS"),
        ({"CRS": "EPSG:3857"}, "InvalidCRS", "CRS"),
        ({"TIME": "1999-01-01"}, "InvalidDimensionValue", "TIME"),
        ({"FORMAT": "image/jpeg"}, "InvalidFormat", "FORMAT"),
        ({"STYLES": "fancy"}, "StyleNotDefined", "STYLES"),
        ({"BBOX": "1,2"}, "InvalidParameterValue", "BBOX"),
        ({"WIDTH": "5000"}, "InvalidParameterValue", "WIDTH"),
        ({"REQUEST": "GetStuff"}, "OperationNotSupported", "REQUEST"),
        ({"VERSION": "1.1.1"}, "InvalidParameterValue", "VERSION"),
        ({"HEIGHT": ""}, "MissingParameterValue", "HEIGHT"),
        ({"REQUEST": "GetFeatureInfo", "QUERY_LAYERS": f"{FT}:sm", "I": "9", "J": "0"}, "InvalidPoint", "I"),
    ],
)
def test_wms_errors_are_exception_reports_with_the_right_code(client, grid_version, change, code, locator):
    response = client.get("/wms/", {**GETMAP, **change})
    assert response.status_code == 400 and response["Content-Type"].startswith("text/xml")
    report = ET.fromstring(response.content)
    assert report.tag == f"{OGC}ServiceExceptionReport" and report.get("version") == "1.3.0"
    exc = report.find(f"{OGC}ServiceException")
    assert (exc.get("code"), exc.get("locator")) == (code, locator), exc.text


def test_the_quicklook_is_in_the_dataset_list_and_a_stac_thumbnail(client, grid_version):
    page = client.get("/", {"q": "freeze"}).content.decode()
    card = page.split(f'data-id="{FT}"', 1)[1].split("</li>", 1)[0]
    src = f'src="/datasets/{FT}/versions/{grid_version.number}/quicklook.png"'
    assert 'class="quicklook"' in card and src in card
    item = client.get(f"/api/stac/collections/{FT}/items/{FT}-v{grid_version.number}").json()
    thumbnail = item["assets"]["thumbnail"]
    assert thumbnail["roles"] == ["thumbnail"] and thumbnail["type"] == "image/png"
    assert thumbnail["href"].endswith(f"/datasets/{FT}/versions/{grid_version.number}/quicklook.png")
    assert png(client.get(thumbnail["href"].split("testserver", 1)[1])).shape == (180, 360, 4)


def test_the_list_shows_no_quicklook_to_those_who_may_not_see_it(client, grid_version):
    Dataset.objects.filter(id=FT).update(share_type=Dataset.ShareType.LOGIN)
    page = client.get("/", {"q": "freeze"}).content.decode()
    assert f'data-id="{FT}"' in page and "quicklook.png" not in page


def test_housekeeping_draws_missing_quicklooks_and_prunes_caches_of_files_gone(grid_version, settings):
    from pathlib import Path

    layer = services.quicklook_layer(grid_version)
    cached = services.cache_dir(layer).parent  # maps-cache/<file key>
    assert not cached.exists()
    stray = Path(settings.DATA_ROOT) / "maps-cache" / ("0" * 32)
    (stray / "sm" / "0").mkdir(parents=True)
    (stray / "sm" / "0" / "x.png").write_bytes(b"stale")
    done = services.housekeeping()
    assert done["quicklooks"] >= 1 and done["pruned"] >= 1
    assert not stray.exists() and any(cached.rglob("*.png"))  # the published file's quicklook drawn and kept
    again = services.housekeeping()
    assert again == {"pruned": 0, "quicklooks": 0}


def test_a_packed_variable_is_coloured_over_its_valid_range_in_physical_units(django_db_setup):
    """CF gives valid_range in packed units (int16 x 0.001: 0..1000 for 0..1 m3 m-3); the colours must span 0..1."""
    import pandas as pd
    import xarray as xr

    from tests.publishing import publish_version

    lat, lon = np.arange(-89.5, 90, 1.0), np.arange(-179.5, 180, 1.0)
    values = np.random.default_rng(0).uniform(0.05, 0.45, (2, lat.size, lon.size))
    ds = xr.Dataset(
        {"sm": (("time", "lat", "lon"), values, {"units": "m3 m-3", "valid_range": np.array([0, 1000], "i2")})},
        coords={"time": pd.date_range("2015-01-01", periods=2), "lat": lat, "lon": lon},
    )
    ds["sm"].encoding = {"dtype": "int16", "scale_factor": 0.001, "_FillValue": np.int16(-9999)}
    version = publish_version(FT, {"packed.nc": ds})
    layer = services.find_layer(version.dataset, "sm", version.number)
    legend = services.legend(layer)
    assert (legend["vmin"], legend["vmax"]) == pytest.approx((0.0, 1.0))
