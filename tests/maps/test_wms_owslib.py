"""OGC WMS 1.3.0 at /wms/ through a real gunicorn (``portal_url``), driven by OWSLib's WebMapService client
as QGIS-style clients use it, on a committed SYNTHETIC 0.5-degree grid of 20 days made the latest version of
the freeze/thaw record for this module (``wms_grid``: WMS serves latest versions, and the product tests of the
same worker may have published real freeze/thaw versions after the session's ``live_grid``)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import requests
from owslib.util import ServiceException
from owslib.wms import WebMapService
from PIL import Image

from portal.maps import render
from tests.grids import FT, committed_grid, grid_values

pytestmark = pytest.mark.django_db
LAYER = f"{FT}:sm"


@pytest.fixture(scope="module")
def wms_grid(django_db_setup, django_db_blocker):
    """The latest version of FT while this module runs (committed: the server is another process)."""
    with committed_grid(django_db_blocker, FT, days=20, step=0.5) as version:
        yield version


@pytest.fixture
def wms(portal_url, wms_grid) -> WebMapService:
    return WebMapService(f"{portal_url}/wms/", version="1.3.0", timeout=60)


def test_capabilities_list_the_layer_with_its_time_dimension_and_boxes(wms):
    assert wms.identification.type == "WMS" and wms.identification.version == "1.3.0"
    assert {"GetCapabilities", "GetMap", "GetFeatureInfo"} <= {op.name for op in wms.operations}
    layer = wms[LAYER]
    assert layer.queryable == 1 and {"CRS:84", "EPSG:4326"} <= set(layer.crsOptions)
    assert layer.boundingBoxWGS84 == (-180.0, -90.0, 180.0, 90.0)
    assert layer.dimensions["time"]["values"] == ["2015-01-01T00:00:00Z/2015-01-20T00:00:00Z/P1D"]
    assert layer.dimensions["time"]["default"] == "2015-01-20T00:00:00Z"
    assert "default" in layer.styles and layer.styles["default"]["legend"].startswith("http")


def test_getmap_draws_the_time_step_in_both_crs(wms, portal_url):
    answers = [
        wms.getmap(
            layers=[LAYER],
            styles=[""],
            srs=crs,
            bbox=bbox,
            size=(8, 4),
            format="image/png",
            time="2015-01-05T00:00:00Z",
            transparent=True,
        )
        # OWSLib takes (min x, min y, max x, max y) in lon/lat and sends EPSG:4326's lat-first BBOX of WMS 1.3.0
        for crs, bbox in (("CRS:84", (10, 20, 14, 22)), ("EPSG:4326", (10, 20, 14, 22)))
    ]
    assert "BBOX=20%2C10%2C22%2C14" in answers[1].geturl().upper() or "bbox=20,10,22,14" in answers[1].geturl()
    images = [np.asarray(Image.open(io.BytesIO(a.read())).convert("RGBA")) for a in answers]
    assert images[0].shape == (4, 8, 4) and (images[0] == images[1]).all()
    legend = requests.get(f"{portal_url}/api/datasets/{FT}/map/legend.json", timeout=60).json()
    lats, lons = np.arange(21.75, 20, -0.5), np.arange(10.25, 14, 0.5)
    values = grid_values(4, lats[:, None], lons[None, :])
    style = render.Style(legend["kind"], legend["cmap"], legend["units"], legend["label"])
    assert (images[0] == render.colourise(values, style, legend["vmin"], legend["vmax"])).all()
    other_day = wms.getmap(
        layers=[LAYER],
        styles=[""],
        srs="CRS:84",
        bbox=(10, 20, 14, 22),
        size=(8, 4),
        format="image/png",
        time="2015-01-15",
    )
    assert np.asarray(Image.open(io.BytesIO(other_day.read())).convert("RGBA")).tolist() != images[0].tolist()


def test_getfeatureinfo_gives_the_cell_value(wms):
    answer = wms.getfeatureinfo(
        layers=[LAYER],
        srs="CRS:84",
        bbox=(10, 20, 14, 22),
        size=(8, 4),
        format="image/png",
        query_layers=[LAYER],
        info_format="application/json",
        xy=(3, 1),
        time="2015-01-05",
    )
    info = json.loads(answer.read())
    assert (info["lon"], info["lat"]) == (11.75, 21.25)
    assert info["value"] == pytest.approx(float(np.float32(grid_values(4, 21.25, 11.75))))


def test_errors_reach_the_client_as_service_exceptions(wms):
    with pytest.raises(ServiceException, match="not a time step"):
        wms.getmap(
            layers=[LAYER],
            styles=[""],
            srs="CRS:84",
            bbox=(10, 20, 14, 22),
            size=(8, 4),
            format="image/png",
            time="1999-01-01",
        )
    with pytest.raises(ServiceException, match="EPSG:3857"):
        wms.getmap(layers=[LAYER], styles=[""], srs="EPSG:3857", bbox=(10, 20, 14, 22), size=(8, 4), format="image/png")
