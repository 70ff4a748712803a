"""WMS 1.3.0 keeps every published version: a superseded one is the layer ``<id>@v<n>:<variable>``
with its own time steps, beside the latest under the plain name (OWSLib against the real gunicorn).

Two committed SYNTHETIC grids of the freeze/thaw record for this module: an earlier one of 20 days and
the latest of 5 days (module fixtures: the server is another process, so they must be committed)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from owslib.util import ServiceException
from owslib.wms import WebMapService
from PIL import Image

from tests.grids import FT, committed_grid

LATEST = f"{FT}:sm"


@pytest.fixture(scope="module")
def two_versions(django_db_setup, django_db_blocker):
    with committed_grid(django_db_blocker, FT, days=20, step=0.5) as earlier:
        with committed_grid(django_db_blocker, FT, days=5, step=1.0) as latest:
            yield earlier, latest


def test_a_superseded_version_stays_a_layer_of_its_own(portal_url, two_versions):
    earlier, latest = two_versions
    wms = WebMapService(f"{portal_url}/wms/", version="1.3.0", timeout=60)
    old = f"{FT}@v{earlier.number}:sm"
    assert wms[LATEST].dimensions["time"]["values"] == ["2015-01-01T00:00:00Z/2015-01-05T00:00:00Z/P1D"]
    assert wms[old].dimensions["time"]["values"] == ["2015-01-01T00:00:00Z/2015-01-20T00:00:00Z/P1D"]
    assert f"version {earlier.number}" in wms[old].abstract
    day = dict(styles=[""], srs="CRS:84", bbox=(10, 20, 14, 22), size=(8, 4), format="image/png")
    image = Image.open(io.BytesIO(wms.getmap(layers=[old], time="2015-01-15", **day).read()))
    assert np.asarray(image.convert("RGBA")).shape == (4, 8, 4)
    with pytest.raises(ServiceException, match="2015-01-15"):  # the latest version has 5 days only
        wms.getmap(layers=[LATEST], time="2015-01-15", **day)
    for name in (f"{FT}@v{latest.number + 7}:sm", f"{FT}@vx:sm", f"{FT}@v{latest.number}:sm"):
        with pytest.raises(ServiceException, match="no layer"):  # the latest has no @v name: one name per layer
            wms.getmap(layers=[name], time="2015-01-02", **day)
