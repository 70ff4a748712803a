"""Versions side by side (issue 17): two versions of one record published through the real
``products.services.publish``, compared on the page, in the API and as a difference map.

The grids are SYNTHETIC (tests/grids.py ``grid_values``); version 2 adds a known change so the
expected differences are computed here from the same arrays, never typed in.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from django.conf import settings
from django.utils import timezone
from PIL import Image

from portal.catalog.models import Dataset, DatasetVersion
from portal.compare import diff
from products.lineage import ProductOutput, ValidationRow, record_inputs
from products.models import GenerationRun
from products.registry import product_for_dataset
from products.services import create_run, publish
from tests.grids import FT, grid_values

pytestmark = pytest.mark.django_db

STEP, DAYS = 10.0, 4
CHANGE = 0.5  # version 2 adds this north of the equator


def grid(change: bool) -> xr.Dataset:
    lat, lon = np.arange(-90 + STEP / 2, 90, STEP), np.arange(-180 + STEP / 2, 180, STEP)
    time = pd.date_range("2015-01-01", periods=DAYS, freq="D")
    values = grid_values(np.arange(DAYS)[:, None, None], lat[None, :, None], lon[None, None, :]).astype("float64")
    if change:
        values = values + np.where(lat > 0, CHANGE, 0.0)[None, :, None]
        values[:, 0, 0] = np.nan  # a cell without value in version 2
    return xr.Dataset(
        {"sm": (("time", "lat", "lon"), values, {"units": "m3 m-3"})},
        coords={
            "time": time,
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
        },
    )


def rows(better: bool) -> list[ValidationRow]:
    s = 1 if better else 0
    return [
        ValidationRow(
            "sm",
            "m3 m-3",
            "validation",
            "pooled",
            "all",
            {
                "n": 100,
                "kge": 0.3 + 0.2 * s,
                "r": 0.6 + 0.1 * s,
                "ubrmse": 0.05 - 0.01 * s,
                "rmse": 0.06,
                "bias": 0.01,
                "nse": 0.2,
                "alpha": 1.0,
                "beta": 1.0,
            },
        ),
        ValidationRow(
            "sm",
            "m3 m-3",
            "validation",
            "site",
            "S1",
            {"n": 50, "kge": 0.2 + 0.2 * s, "r": 0.5 + 0.2 * s, "ubrmse": 0.06 - 0.02 * s},
        ),
        ValidationRow(
            "sm",
            "m3 m-3",
            "validation",
            "site",
            "S2",
            {"n": 50, "kge": 0.5 - 0.3 * s, "r": 0.8 - 0.2 * s, "ubrmse": 0.03 + 0.02 * s},
        ),
        ValidationRow(
            "sm",
            "m3 m-3",
            "anomaly",
            "pooled",
            "all",
            {"n": 80, "kge": -1.08e10, "r": 0.4 + 0.1 * s, "ubrmse": 0.02, "not_meaningful": "zero-mean anomaly"},
        ),
    ]


def publish_real(dataset_id: str, *, second: bool) -> DatasetVersion:
    """A version through products.services.publish (as tests/publishing.publish_version, with parameters,
    inputs and validation rows, which differ between the two versions)."""
    spec = product_for_dataset(dataset_id)
    run = create_run(spec.key, parameters={"written_by": "tests/compare", "alpha": 2 if second else 1})
    GenerationRun.objects.filter(id=run.id).update(status=GenerationRun.Status.RUNNING, started_at=timezone.now())
    shared = Path(settings.SHARED_DATA_DIR)
    record_inputs(
        run,
        [
            {
                "role": "forcing",
                "path": str(shared / "forcing.nc"),
                "sha256": "b" * 64 if second else "a" * 64,
                "size": 1,
            },
            {"role": "mask", "path": str(shared / "mask.nc"), "sha256": "c" * 64, "size": 2},
        ]
        + ([{"role": "extra", "path": str(shared / "extra.nc"), "sha256": "d" * 64, "size": 3}] if second else []),
    )
    workdir = Path(settings.DATA_ROOT) / "tmp" / f"compare-{run.id}-{uuid.uuid4().hex[:8]}"
    workdir.mkdir(parents=True)
    grid(second).to_netcdf(workdir / "grid.nc")
    output = ProductOutput(files={"grid.nc": "SYNTHETIC grid"}, validation=rows(second), parameters={"window": 3})
    return publish(run, workdir, output)


@pytest.fixture
def two_versions():
    return publish_real(FT, second=False), publish_real(FT, second=True)


def api(client, a, b, **extra):
    return client.get(f"/api/datasets/{FT}/compare/", {"a": a, "b": b, **extra})


def test_lineage_metrics_and_grid_differences(client, two_versions):
    v1, v2 = two_versions
    r = api(client, v1.number, v2.number)
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["a"]["number"] == v1.number and body["b"]["superseded_by"] is None
    assert body["a"]["superseded_by"] == v2.number
    assert [p["name"] for p in body["parameters"]] == ["alpha"]
    assert body["parameters"][0]["a"] == 1 and body["parameters"][0]["b"] == 2
    changed = body["inputs"]["changed"]
    assert [(i["role"], i["a_sha256"][0], i["b_sha256"][0]) for i in changed] == [("forcing", "a", "b")]
    assert [i["role"] for i in body["inputs"]["added"]] == ["extra"] and body["inputs"]["unchanged"] == 1
    assert not any(i["path"].startswith("/") for i in changed + body["inputs"]["added"])  # no server path
    by = {(d["split"], d["scope"], d["label"]): d for d in body["validation"]}
    assert by["validation", "site", "S1"]["verdict"] == "better"
    assert by["validation", "site", "S2"]["verdict"] == "worse"
    assert by["validation", "pooled", "all"]["metrics"]["kge"]["delta"] == pytest.approx(0.2)
    anomaly = by["anomaly", "pooled", "all"]["metrics"]
    assert anomaly["kge"] == {"reason": "zero-mean anomaly"} and anomaly["r"]["move"] == "better"
    counts = {(c["split"], c["scope"]): c for c in body["validation_counts"]}
    assert counts["validation", "site"]["better"] == 1 and counts["validation", "site"]["worse"] == 1

    # the grid: expected series from the same arrays, cos(lat) weights over cells valid in both
    a, b = grid(False)["sm"].values, grid(True)["sm"].values
    lat = grid(False)["lat"].values
    w = np.cos(np.deg2rad(lat))[None, :, None] * np.isfinite(b - a)
    expected = np.nansum(w * (b - a), axis=(1, 2)) / w.sum(axis=(1, 2))
    g = body["grid"]
    assert g["variable"] == "sm" and g["series"]["steps_read"] == DAYS
    np.testing.assert_allclose(g["series"]["mean_difference"], expected, rtol=1e-6)
    assert g["series"]["cells"] == [lat.size * 36 - 1] * DAYS
    m = g["map"]
    assert m["time"].startswith("2015-01-04") and m["cells_valid"] == lat.size * 36 - 1
    assert m["cells_changed"] == int((lat > 0).sum()) * 36 - (1 if lat[0] > 0 else 0)
    values = np.array(m["values"], dtype=float)
    assert values.shape == (lat.size, 36)
    np.testing.assert_allclose(values[lat > 0], CHANGE, rtol=1e-5)
    assert np.isnan(values[0, 0]) and np.all(values[1:][lat[1:] < 0] == 0)


def test_difference_png_and_page(client, two_versions):
    v1, v2 = two_versions
    r = client.get(f"/datasets/{FT}/compare/difference.png", {"a": v1.number, "b": v2.number, "time": "2015-01-02"})
    assert r.status_code == 200 and r["Content-Type"] == "image/png"
    img = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGBA"))
    h = img.shape[0]
    assert img[h // 4, img.shape[1] // 2, 0] > img[h // 4, img.shape[1] // 2, 2]  # north (top): positive, red
    assert img[-1, 0, 3] == 0  # the south-west cell without value in v2: transparent
    page = client.get(f"/datasets/{FT}/compare/", {"a": v1.number, "b": v2.number})
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="compare-parameters"' in html and 'data-name="alpha"' in html
    assert 'data-label="S1" data-verdict="better"' in html and 'data-label="S2" data-verdict="worse"' in html
    assert "zero-mean anomaly" in html and "-1.08" not in html
    assert "difference.png?" in html and 'id="compare-series-data"' in html


def test_dataset_page_links_and_superseded(client, two_versions):
    v1, v2 = two_versions
    html = client.get(f"/datasets/{FT}/").content.decode()
    assert f'data-a="{v1.number}" data-b="{v2.number}"' in html  # "compare with the previous version"
    assert f'data-superseded-by="{v2.number}"' in html
    versions = {v["number"]: v for v in client.get(f"/api/datasets/{FT}/").json()["versions"]}
    assert versions[v1.number]["superseded_by"] == v2.number and versions[v2.number]["superseded_by"] is None


def test_admin_run_page_links_to_the_comparison(admin_client, two_versions):
    v1, v2 = two_versions
    run = GenerationRun.objects.get(version=v2)
    html = admin_client.get(f"/admin/products/generationrun/{run.id}/change/").content.decode()
    assert f"/datasets/{FT}/compare/?a={v1.number}&amp;b={v2.number}" in html


@pytest.mark.parametrize(
    "query, field",
    [
        ({"b": "1"}, "a"),
        ({"a": "1"}, "b"),
        ({"a": "x", "b": "1"}, "a"),
        ({"a": "1", "b": "0"}, "b"),
        ({"a": "1", "b": "1e3"}, "b"),
    ],
)
def test_bad_parameters_are_400_naming_them(client, two_versions, query, field):
    r = client.get(f"/api/datasets/{FT}/compare/", query)
    assert r.status_code == 400 and r.json()["field"] == field
    assert client.get(f"/datasets/{FT}/compare/", query).status_code == 400
    assert client.get(f"/datasets/{FT}/compare/difference.png", query).status_code == 400


def test_bad_options_are_400(client, two_versions):
    v1, v2 = two_versions
    for extra, field in [
        ({"variable": "nope"}, "variable"),
        ({"file": "x.nc"}, "file"),
        ({"time": "not-a-date"}, "time"),
    ]:
        r = api(client, v1.number, v2.number, **extra)
        assert r.status_code == 400 and r.json()["field"] == field, (extra, r.content)


def test_unknown_version_or_dataset_is_404(client, two_versions):
    v1, v2 = two_versions
    assert api(client, v1.number, 999).status_code == 404
    assert client.get(f"/datasets/{FT}/compare/", {"a": 999, "b": v2.number}).status_code == 404
    assert client.get("/api/datasets/no-such-record/compare/", {"a": 1, "b": 2}).status_code == 404


def test_restricted_dataset_does_not_leak(client, admin_client, two_versions):
    v1, v2 = two_versions
    Dataset.objects.filter(id=FT).update(share_type=Dataset.ShareType.PROTECTED)
    r = api(client, v1.number, v2.number)
    assert r.status_code == 401 and "grid" not in r.json()
    png = client.get(f"/datasets/{FT}/compare/difference.png", {"a": v1.number, "b": v2.number})
    assert png.status_code == 401 and png["Content-Type"] != "image/png"
    page = client.get(f"/datasets/{FT}/compare/", {"a": v1.number, "b": v2.number}, HTTP_ACCEPT="text/html")
    assert page.status_code == 302 and "/accounts/login/" in page["Location"] or page.status_code in (401, 403)
    assert b"compare-series-data" not in page.content
    assert api(admin_client, v1.number, v2.number).status_code == 200  # staff may download everything


def test_metric_deltas_pure():
    a = [
        {
            "variable": "x",
            "units": "",
            "split": "s",
            "scope": "site",
            "label": "A",
            "n": 3,
            "r": 0.5,
            "kge": None,
            "ubrmse": 1.0,
            "not_meaningful": "",
        }
    ]
    b = [
        {
            "variable": "x",
            "units": "",
            "split": "s",
            "scope": "site",
            "label": "A",
            "n": 3,
            "r": 0.4,
            "kge": None,
            "ubrmse": 0.5,
            "not_meaningful": "",
        },
        {
            "variable": "x",
            "units": "",
            "split": "s",
            "scope": "site",
            "label": "B",
            "n": 3,
            "r": 0.4,
            "not_meaningful": "",
        },
    ]
    d = {x["label"]: x for x in diff.metric_deltas(a, b)}
    assert d["A"]["verdict"] == "mixed" and d["A"]["metrics"]["r"]["move"] == "worse"
    assert d["A"]["metrics"]["ubrmse"]["move"] == "better" and d["A"]["metrics"]["kge"]["move"] is None
    assert d["B"]["in_a"] is False and d["B"]["verdict"] is None
    assert diff.verdict_counts(d.values())[0]["only_b"] == 1
    assert diff.movement("bias", -0.3, 0.2) == "better" and diff.movement("beta", 1.1, 0.8) == "worse"


def test_the_difference_map_is_blue_below_white_at_red_above_zero_north_up_and_scaled():
    values = np.array([[-2.0, 0.0, 2.0], [np.nan, -0.5, 9.0]])  # row 0 is the south
    back = np.asarray(Image.open(io.BytesIO(diff.difference_png(values, limit=2.0, scale=2))).convert("RGBA"))
    assert back.shape == (4, 6, 4)
    south, north = back[2::2, ::2], back[0:2:2, ::2]  # flipped: north up
    blue, white, red = south[0]
    assert blue[2] > blue[0] and red[0] > red[2] and white.min() > 230 and (south[:, :, 3] == 255).all()
    assert north[0, 0, 3] == 0 and north[0, 2].tolist() == red.tolist()  # NaN transparent, 9 clipped to +limit
    assert diff.ramp_css(3).startswith("linear-gradient(to right, rgb(")
