"""Public pages: list, bilingual search, detail, chart series, downloads, language switch."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest
import xarray as xr
from django.conf import settings
from django.urls import reverse

from portal.catalog.models import Dataset
from products.models import ValidationResult
from products.registry import PRODUCTS

pytestmark = pytest.mark.django_db

ET = PRODUCTS["et_fusion"].dataset_id
TWS = PRODUCTS["tws_rec"].dataset_id
FREEZE_THAW = PRODUCTS["freeze_thaw"].dataset_id


def _ids(response) -> set[str]:
    return {d.id for d in response.context["result"].datasets}


def test_the_list_shows_all_five_datasets_with_a_bounded_number_of_queries(client, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        response = client.get(reverse("catalog:dataset_list"))
    assert response.status_code == 200
    assert _ids(response) == set(Dataset.objects.values_list("id", flat=True)) and len(_ids(response)) == 5
    assert "Global high-resolution evapotranspiration dataset" in response.content.decode()


@pytest.mark.parametrize(
    "query, expected",
    [
        ("evapotranspiration", ET),
        ("蒸散发", ET),
        ("冻融", FREEZE_THAW),
        ("freeze-thaw", FREEZE_THAW),
        ("mascons reconstruction", TWS),
        ("陆地蓄水量", TWS),
        ("陆地储水", TWS),  # the last one is a tag only
    ],
)
def test_search_finds_the_right_dataset_in_either_language(client, query, expected):
    found = _ids(client.get(reverse("catalog:dataset_list"), {"q": query}))
    assert expected in found
    assert len(found) < 5


def test_a_query_that_matches_nothing_shows_an_empty_state(client):
    response = client.get(reverse("catalog:dataset_list"), {"q": "no-such-word-xyz"})
    assert _ids(response) == set() and "No dataset matches" in response.content.decode()


def test_filters_by_category_and_time_range(client):
    frozen = _ids(client.get(reverse("catalog:dataset_list"), {"category": "冰冻圈"}))
    assert frozen == {FREEZE_THAW}
    early = _ids(client.get(reverse("catalog:dataset_list"), {"time": "1940/1945"}))
    assert early == {TWS}  # only GTWS-MLrec covers the 1940s
    late = _ids(client.get(reverse("catalog:dataset_list"), {"time": "2023/.."}))
    assert ET in late and FREEZE_THAW not in late


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"time": "abc"}, 400),
        ({"time": "-5"}, 400),
        ({"q": "x" * 5000}, 200),
        ({"category": "<b>"}, 200),
        ({"time": "9" * 5000}, 400),
        ({"start_year": "2000"}, 400),
        ({"page": "0"}, 400),
        ({"bbox": "1,2,3"}, 400),
        ({"q": "\x00"}, 400),
        ({"category": "a\x00b"}, 400),  # NUL bytes: a 400 at the edge (portal/edge.py)
    ],
)
def test_bad_list_parameters_are_not_server_errors(client, params, status):
    assert client.get(reverse("catalog:dataset_list"), params).status_code == status


def test_a_nul_byte_in_a_url_is_a_400_not_a_500(client, et_run):
    # PostgreSQL text cannot hold NUL: such a value must never reach a query (refused at the edge).
    f = et_run.version.files.first()
    for url in [
        f"/datasets/{ET}%00/",
        f"/datasets/{ET}/versions/{f.version.number}/files/{f.name}%00",
        "/datasets/a%00b/series.json?station=DE-Hai",
    ]:
        assert client.get(url).status_code == 400, url


def test_our_figures_stand_beside_the_published_ones(client, et_run):
    html = client.get(reverse("catalog:dataset_detail", args=[ET])).content.decode()
    table = html[html.index('id="published-table"') : html.index("</table>", html.index('id="published-table"'))]
    version = Dataset.objects.get(id=ET).latest_version()
    pooled = ValidationResult.objects.get(version=version, split="validation", scope="pooled")
    towers = ValidationResult.objects.filter(version=version, split="validation", scope="site").count()
    published = PRODUCTS["et_fusion"].published
    assert f"<td>KGE</td><td>{pooled.kge:.3f}</td><td>{published['kge']:.3f}</td>" in table
    assert f"<td>RMSE (mm d-1)</td><td>{pooled.rmse:.3f}</td><td>{published['rmse']:.3f}</td>" in table
    assert f"<td>{towers}</td><td>{published['stations']}</td>" in table
    assert f"ours is monthly ET at {towers} FLUXNET2015 towers" in html  # the count of this run, not a constant


def test_the_detail_page_shows_metadata_and_the_stored_validation(client, et_run):
    response = client.get(reverse("catalog:dataset_detail", args=[ET]))
    html = response.content.decode()
    dataset = Dataset.objects.get(id=ET)
    assert response.status_code == 200
    assert dataset.title_en in html and dataset.title_cn in html
    for tag in dataset.tags.all():
        assert tag.name in html
    pooled = ValidationResult.objects.get(version=dataset.latest_version(), split="validation", scope="pooled")
    table = html[html.index('id="validation-table"') :]
    assert f"<td>{pooled.n}</td><td>{pooled.kge:.3f}</td><td>{pooled.r:.3f}</td>" in table
    assert "0.857" in html and "0.726" in html  # the seed's published figures beside ours
    assert "What differs" in html
    f = dataset.latest_version().files.get(name="et_fusion_timeseries.nc")
    assert reverse("catalog:download", args=[ET, f.version.number, f.name]) in html


def test_the_detail_page_shows_fusion_beside_each_product_and_the_tc_diagnostic(client, et_run):
    html = client.get(reverse("catalog:dataset_detail", args=[ET])).content.decode()
    start = html.index('id="validation-fusion_held_out"')
    table = html[start : html.index("</table>", start)]
    rows = ValidationResult.objects.filter(version=et_run.version, split="fusion_held_out", scope="pooled")
    assert rows.count() == 6
    for r in rows:
        assert f"<td>{r.variable}</td><td>{r.n}</td><td>{r.kge:.3f}</td>" in table
    assert table.index("<td>et_fused</td>") < min(
        table.index(f"<td>{r.variable}</td>") for r in rows if r.variable != "et_fused"
    )
    assert 'id="validation-reconstruction_held_out"' in html
    start = html.index('id="tc-diagnostic"')
    tc = html[start : html.index("</table>", start)]
    summary = et_run.summary["triple_collocation"]
    for p in summary["products"]:
        assert f"<td>{p}</td><td>{summary[f'median_tcr_{p}']:.3f}</td>" in tc
    # GLEAM and ERA5-Land share ERA5 forcing: the limit is said beside the numbers, the other triplet shown
    assert "independent ET products" not in html and 'id="tc-limit"' in html
    start = html.index('id="tc-sensitivity"')
    sensitivity, stored = html[start : html.index("</table>", start)], summary["sensitivity"]
    for p in stored["products"]:
        assert f"<td>{p}</td><td>{stored[f'median_tcr_{p}']:.3f}</td>" in sensitivity


def test_unknown_dataset_is_404(client):
    assert client.get(reverse("catalog:dataset_detail", args=["no-such-id"])).status_code == 404
    assert client.get(reverse("catalog:series", args=["no-such-id"]), {"station": "DE-Hai"}).status_code == 404


def test_series_json_equals_the_published_file(client, et_run):
    response = client.get(reverse("catalog:series", args=[ET]), {"station": "DE-Hai"})
    assert response.status_code == 200
    data = response.json()
    version = Dataset.objects.get(id=ET).latest_version()
    path = settings.DATA_ROOT / version.files.get(name="et_fusion_timeseries.nc").path
    with xr.open_dataset(path) as ds:
        site = ds.isel(station=[str(n) for n in ds["station_name"].values].index("DE-Hai"))
        first = data["time"].index(data["time"][0])
        t = np.datetime64(data["time"][first])
        assert data["et"][first] == pytest.approx(float(site["et"].sel(time=t)), abs=1e-4)
        observed = [(tt, v) for tt, v in zip(data["time"], data["et_obs"], strict=True) if v is not None]
        assert len(observed) == int(np.isfinite(site["et_obs"].values).sum())
        tt, v = observed[-1]
        assert v == pytest.approx(float(site["et_obs"].sel(time=np.datetime64(tt))), abs=1e-4)
    assert data["units"] == "kg m-2 d-1"


def test_series_json_rejects_an_unknown_or_missing_station(client, et_run):
    unknown = client.get(reverse("catalog:series", args=[ET]), {"station": "XX-Nope"})
    assert unknown.status_code == 400 and "XX-Nope" in unknown.json()["error"]
    assert client.get(reverse("catalog:series", args=[ET])).status_code == 400
    assert client.get(reverse("catalog:series", args=[TWS]), {"station": "DE-Hai"}).status_code == 404


def test_download_returns_the_file_with_its_checksum(client, et_run):
    f = Dataset.objects.get(id=ET).latest_version().files.get(name="et_fusion_timeseries.nc")
    response = client.get(reverse("catalog:download", args=[ET, f.version.number, f.name]))
    assert response.status_code == 200
    assert f'attachment; filename="{f.name}"' in response["Content-Disposition"]
    assert hashlib.sha256(b"".join(response.streaming_content)).hexdigest() == f.sha256


def test_download_of_a_login_access_dataset_requires_login(client, admin_client, et_run):
    dataset = Dataset.objects.get(id=ET)
    dataset.share_type = Dataset.ShareType.LOGIN
    dataset.save()
    f = dataset.latest_version().files.get(name="et_fusion_timeseries.nc")
    url = reverse("catalog:download", args=[ET, f.version.number, f.name])
    browser = client.get(url, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert browser.status_code == 302 and reverse(settings.LOGIN_URL) in browser["Location"]
    script = client.get(url)
    assert script.status_code == 401 and script.json()["need"] == "login"
    assert client.put(url).status_code == 405
    assert admin_client.get(url).status_code == 200


def test_download_of_an_unknown_file_is_404(client, et_run):
    assert client.get(reverse("catalog:download", args=[ET, 99, "x.nc"])).status_code == 404
    base = reverse("catalog:download", args=[ET, 1, "x.nc"]).rsplit("/", 1)[0]
    assert client.get(base + "/..%2F..%2Fetc%2Fpasswd").status_code == 404


def test_the_language_switch_shows_chinese_ui_and_titles(client):
    response = client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"}, follow=True)
    html = response.content.decode()
    assert "陆表水文数据门户" in html and "搜索" in html
    assert Dataset.objects.get(id=ET).title_cn in html
    detail = client.get(reverse("catalog:dataset_detail", args=[ET])).content.decode()
    assert "差异说明" in detail and "<td>时间步长</td><td>逐月</td><td>逐日</td>" in detail
    english = client.post(reverse("set_language"), {"language": "en", "next": "/"}, follow=True).content.decode()
    assert "Land-surface hydrology data portal" in english


def test_the_favicon_is_served_by_the_portal(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302 and re.search(r"/static/favicon(\.[0-9a-f]{12})?\.svg$", response["Location"])
