"""The validation browser on the session's real ET version (``et_run``) and on versions published in the test
through the real :func:`products.services.publish` with what the TWS and freeze/thaw pipelines store."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from portal.catalog import splits
from portal.catalog.models import Dataset
from products.lineage import ProductOutput, ValidationRow
from products.models import GenerationRun, ValidationResult
from products.registry import PRODUCTS
from products.services import create_run, publish

pytestmark = pytest.mark.django_db


def _publish(key: str, output: ProductOutput):
    run = create_run(key, parameters={"written_by": "tests/validation/test_pages.py"})
    GenerationRun.objects.filter(id=run.id).update(status=GenerationRun.Status.RUNNING, started_at=timezone.now())
    workdir = Path(settings.DATA_ROOT) / "tmp" / f"{key}-validation-browser-{uuid.uuid4().hex[:8]}"
    workdir.mkdir(parents=True)
    return publish(run, workdir, output)


def _sets(n: int, with_matrix: bool) -> dict:
    out = {}
    for s, k in (("train", 7 * n), ("validation", 2 * n), ("test", 2 * n)):
        tn, fp, fn = int(k * 0.6), int(k * 0.05), int(k * 0.1)
        tp = k - tn - fp - fn
        row = {"n": k, "overall_accuracy": 0.5, "kappa": 0.1, "recall_thawed": 0.5, "recall_frozen": 0.5}
        if with_matrix:
            row["confusion_matrix"] = [[tn, fp], [fn, tp]]
        out[s] = row
    return out


@pytest.fixture
def versions(db):
    """A TWS version (zero-mean anomalies: KGE not meaningful) and a freeze/thaw version whose proxy experiment
    stores confusion matrices and whose twin does not."""
    metrics = {"n": 40, "kge": None, "r": 0.7, "alpha": 1.1, "beta": None, "rmse": 20.0, "bias": 1.0, "ubrmse": 19.0}
    reason = {"not_meaningful": "zero-mean anomaly"}
    tws = ProductOutput(
        validation=[ValidationRow("tws_jpl_rec", "mm", "year_held_out", "pooled", "all", metrics | reason)]
        + [
            ValidationRow("tws_jpl_rec", "mm", "year_held_out", "site", f"B{i}", metrics | {"r": 0.5 + i / 10} | reason)
            for i in range(3)
        ]
    )
    ft = ProductOutput(
        summary={
            "proxy": {"tibetan_plateau:gldas_soil": _sets(100, True)},
            "twin": _sets(50, False),
            "block_cv": {"tibetan_plateau:gldas_soil": {"test_pooled": _sets(400, True)["test"]}},
        }
    )
    made = {"tws_rec": _publish("tws_rec", tws), "freeze_thaw": _publish("freeze_thaw", ft)}
    yield made
    for v in made.values():
        shutil.rmtree(Path(settings.DATA_ROOT) / v.directory, ignore_errors=True)


def _url(name, version, *more):
    return reverse(f"validation:{name}", args=[version.dataset_id, version.number, *more])


def test_the_version_page_lists_every_station_row_and_describes_every_split(client, et_run):
    version = et_run.version
    html = client.get(_url("version", version)).content.decode()
    sites = ValidationResult.objects.filter(version=version, scope="site")
    assert html.count('<tr data-label="') == sites.count()
    for split in set(sites.values_list("split", flat=True)):
        assert f'id="split-{split}"' in html
        assert str(splits.split_info(split).reference).replace("'", "&#x27;") in html
    assert "real data" in html  # the page says what kind of data it shows
    markers = json.loads(html.split('id="validation-markers" type="application/json">')[1].split("</script>")[0])
    assert len(markers) == sites.filter(station__geom__isnull=False).count() > 0
    # the dataset page links to it
    detail = client.get(reverse("catalog:dataset_detail", args=[version.dataset_id])).content.decode()
    assert _url("version", version) in detail


def test_the_api_filters_and_sorts_on_the_server(client, et_run):
    version = et_run.version
    url = _url("version_api", version)
    every = client.get(url).json()
    assert every["count"] == every["total"] == ValidationResult.objects.filter(version=version, scope="site").count()
    answer = client.get(url, {"split": "validation", "metric": "r", "min": "0.5", "sort": "-r"}).json()
    rs = [s["r"] for s in answer["stations"]]
    assert rs == sorted(rs, reverse=True) and all(r >= 0.5 for r in rs)
    assert {s["split"] for s in answer["stations"]} <= {"validation"}
    expected = ValidationResult.objects.filter(version=version, scope="site", split="validation", r__gte=0.5).count()
    assert answer["count"] == expected
    network = every["choices"]["networks"][0]
    assert {s["network"] for s in client.get(url, {"network": network}).json()["stations"]} == {network}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"metric": "colour"}, "metric"),
        ({"min": "high"}, "min"),
        ({"min": "1", "max": "0"}, "min"),
        ({"split": "no_such_split"}, "split"),
        ({"network": "NOPE"}, "network"),
        ({"stations": "1"}, "stations"),
    ],
)
def test_bad_filters_are_400_naming_the_parameter(client, et_run, params, field):
    version = et_run.version
    api = client.get(_url("version_api", version), params)
    assert api.status_code == 400 and api.json()["field"] == field
    page = client.get(_url("version", version), params)
    assert page.status_code == 400 and f'data-field="{field}"' in page.content.decode()


def test_unknown_version_or_station_is_404(client, et_run):
    version = et_run.version
    assert client.get(reverse("validation:version", args=[version.dataset_id, 999])).status_code == 404
    assert client.get(reverse("validation:version_api", args=["no-such-dataset", 1])).status_code == 404
    assert client.get(_url("station", version, "NOT-A-STATION")).status_code == 404
    assert client.get(_url("station_api", version, "NOT-A-STATION")).status_code == 404


def test_a_station_page_shows_the_series_of_the_published_file_and_the_fold(client, et_run):
    version = et_run.version
    row = ValidationResult.objects.filter(version=version, scope="site", split="validation").order_by("label").first()
    answer = client.get(_url("station_api", version, row.label)).json()
    series = next(s for s in answer["series"] if s["split"] == "validation")
    path = Path(settings.DATA_ROOT) / version.files.get(name="et_fusion_timeseries.nc").path
    with xr.open_dataset(path) as ds:
        names = [str(n) for n in ds["station_name"].values]
        site = ds.isel(station=names.index(row.label))
        fold = int(site["cv_fold"].values)
        held = (site["is_validation"].values == 1) & np.isfinite(site["et_obs"].values) & np.isfinite(site["et"].values)
        expected = sorted(zip(site["et_obs"].values[held].round(4), site["et"].values[held].round(4), strict=True))
    assert sorted(tuple(p) for p in series["scatter"]) == pytest.approx(expected)
    assert len(series["scatter"]) == row.n  # the held-out months scored in the stored row
    role = next(r for r in answer["roles"] if r["split"] == "validation")
    assert role["fold"] == fold + 1 and role["folds"] == version.lineage["parameters"]["n_splits"]
    assert "Held out" in role["role"]
    html = client.get(_url("station", version, row.label)).content.decode()
    assert f"Fold {fold + 1} of {role['folds']}" in html and 'id="scatter-1"' in html


def test_not_meaningful_metrics_are_the_reason_never_a_number(client, versions):
    version = versions["tws_rec"]
    html = client.get(_url("version", version)).content.decode()
    table = html[html.index('id="station-table"') : html.index("</table>", html.index('id="station-table"'))]
    assert table.count("not meaningful: zero-mean anomaly") == 3 and "e+" not in table
    api = client.get(_url("version_api", version)).json()
    assert all(s["kge"] is None and s["reason"] == "zero-mean anomaly" for s in api["stations"])
    station = client.get(_url("station", version, "B1")).content.decode()
    assert "not meaningful: zero-mean anomaly" in station
    assert "year_held_out" in client.get(_url("station", version, "B1")).content.decode()
    assert 'id="series-missing"' in station  # the TWS files hold no per-station series: said, not drawn


def test_freeze_thaw_confusion_matrices_and_what_is_missing(client, versions):
    version = versions["freeze_thaw"]
    api = client.get(_url("version_api", version)).json()
    proxy = next(c for c in api["classification"] if c["experiment"].startswith("proxy"))
    test = next(s for s in proxy["sets"] if s["set"] == "test")
    (tn, fp), (fn, tp) = test["matrix"]
    n = tn + fp + fn + tp
    assert test["overall_accuracy"] == pytest.approx((tn + tp) / n)  # from the counts, not the stored 0.5
    pe = ((tn + fp) * (tn + fn) + (fn + tp) * (fp + tp)) / n**2
    assert test["kappa"] == pytest.approx(((tn + tp) / n - pe) / (1 - pe))
    assert test["recall_frozen"] == pytest.approx(tp / (tp + fn))
    assert any(s["set"] == "test_block_cv" and s["matrix"] for s in proxy["sets"])
    twin = next(c for c in api["classification"] if c["experiment"] == "synthetic twin")
    assert all(s["missing"] and s["matrix"] is None for s in twin["sets"])
    html = client.get(_url("version", version)).content.decode()
    assert html.count("holds no confusion-matrix counts") == 3 and "proxy experiment" in html
    assert f"<td>{tn}</td><td>{fp}</td>" in html


def test_a_restricted_dataset_series_follow_its_access_rule(client, admin_client, et_run):
    version = et_run.version
    dataset = Dataset.objects.get(id=version.dataset_id)
    dataset.share_type = Dataset.ShareType.LOGIN
    dataset.save()
    code = ValidationResult.objects.filter(version=version, scope="site", split="validation").first().label
    # the metrics follow the dataset page, which anyone may read
    assert client.get(reverse("catalog:dataset_detail", args=[dataset.id])).status_code == 200
    assert client.get(_url("version", version)).status_code == 200
    # the series are the dataset's data: refused as series.json and the files are
    denied = client.get(_url("station_api", version, code))
    assert denied.status_code == 401 and denied.json()["need"] == "login"
    assert "series" not in denied.json()
    series_json = client.get(reverse("catalog:series", args=[dataset.id]), {"station": code})
    assert series_json.status_code == denied.status_code
    page = client.get(_url("station", version, code)).content.decode()
    assert 'id="series-denied"' in page and "et_obs" not in page and 'id="scatter-1"' not in page
    assert admin_client.get(_url("station_api", version, code)).json()["series"]


def test_every_page_string_is_in_chinese_too(client, et_run, versions):
    version = et_run.version
    pages = [_url("version", version), _url("version", versions["freeze_thaw"])]
    code = ValidationResult.objects.filter(version=version, scope="site").first().label
    pages.append(_url("station", version, code))
    for url in pages:
        english = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
        chinese = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
        assert english != chinese
    chinese = client.get(pages[0], HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    for text in ("Validation stations", "Role of this station", "Network", "Filter"):
        assert text not in chinese.split("<main")[1]
    assert PRODUCTS  # registry loaded
