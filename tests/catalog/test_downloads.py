"""Every download logged and counted (whole files, OPeNDAP reads, subsets), counts on the page, in the API
and the admin; no absolute server path in public answers (lineage relative to the data root, with checksums)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from portal.catalog.queries import download_counts, public_lineage
from portal.subsets.models import DownloadLog
from tests.grids import FT

pytestmark = pytest.mark.django_db


def _sent(response) -> int:
    return len(b"".join(response.streaming_content))


def test_whole_files_opendap_reads_and_subsets_are_logged_and_counted_per_version(client, admin_client, grid_version):
    DownloadLog.objects.all().delete()  # what live servers committed earlier in the session (rolled back after)
    n = grid_version.number
    url = f"/datasets/{FT}/versions/{n}/files/grid.nc"
    whole = client.get(url)
    assert whole.status_code == 200
    size = _sent(whole)
    part = client.get(url, HTTP_RANGE="bytes=0-99")
    assert part.status_code == 206 and _sent(part) == 100
    assert client.head(url).status_code == 200  # HEAD sends no bytes: not logged
    assert client.get(url, HTTP_IF_NONE_MATCH=whole["ETag"]).status_code == 304  # neither is a 304
    logs = DownloadLog.objects.filter(dataset_id=FT, kind="file").order_by("id")
    assert [(log.size, log.version_number, log.file_name) for log in logs] == [
        (size, n, "grid.nc"),
        (100, n, "grid.nc"),
    ]

    dods = client.get(f"/opendap/{FT}/v{n}/grid.nc.dods?sm[0:2][0:9][0:9]")
    assert dods.status_code == 200
    dods_size = _sent(dods)  # the log is written once the response is closed, with the bytes sent
    log = DownloadLog.objects.get(kind="opendap")
    assert log.size == dods_size and log.version_number == n and log.params == {"constraint": "sm[0:2][0:9][0:9]"}
    assert client.get(f"/opendap/{FT}/v{n}/grid.nc.dds").status_code == 200
    assert DownloadLog.objects.filter(kind="opendap").count() == 1  # metadata is not a download

    subset = client.get(f"/api/datasets/{FT}/subset/", {"bbox": "0,0,2,2", "f": "csv"})
    subset_size = _sent(subset)
    counts = download_counts(grid_version.dataset)
    total = size + 100 + dods_size + subset_size
    assert counts == {"total": 4, "bytes": total, "versions": {n: {"count": 4, "bytes": total}}}

    api = client.get(f"/api/datasets/{FT}/").json()["downloads"]
    assert api == json.loads(json.dumps(counts))  # the same shape in the API (version numbers as JSON keys)
    page = client.get(f"/datasets/{FT}/")
    assert page.context["page"].download_counts == counts
    listing = admin_client.get("/admin/catalog/dataset/", {"q": FT})
    assert listing.status_code == 200 and 'class="field-downloads">4<' in listing.content.decode()
    change = admin_client.get(f"/admin/catalog/dataset/{FT}/change/").content.decode()
    assert f"v{n}: 4 (" in change


def test_a_login_access_file_is_counted_only_when_sent(client, grid_version, verified_user):
    DownloadLog.objects.all().delete()  # what live servers committed earlier in the session (rolled back after)
    grid_version.dataset.share_type = "login-access"
    grid_version.dataset.save()
    url = f"/datasets/{FT}/versions/{grid_version.number}/files/grid.nc"
    assert client.get(url, headers={"Accept": "text/html"}).status_code == 302  # a browser: to the login page
    assert client.get(url).status_code == 401  # a script
    assert Client(headers={"Authorization": "Bearer hp_nope_x"}).get(url).status_code == 401
    assert DownloadLog.objects.count() == 0
    client.force_login(verified_user)
    assert client.get(url).status_code == 200
    assert DownloadLog.objects.get().user == verified_user


def test_no_absolute_server_path_in_the_api_or_on_the_page(client, et_run):
    text = client.get(f"/api/datasets/{et_run.dataset_id}/").content.decode()
    page = client.get(f"/datasets/{et_run.dataset_id}/").content.decode()
    for root in ("/work", "/tmp", "/root", "/home"):
        assert root not in text and root not in page, root
    version = client.get(f"/api/datasets/{et_run.dataset_id}/").json()["versions"][0]
    inputs = version["lineage"]["inputs"]
    assert inputs and all(i["path"] and not i["path"].startswith("/") and len(i["sha256"]) == 64 for i in inputs)
    assert any(i["path"].startswith("cardamom_fluxval") for i in inputs)  # relative to SHARED_DATA_DIR


def test_lineage_recorded_before_the_fix_is_published_relative_too(settings):
    shared, root = str(settings.SHARED_DATA_DIR), str(settings.DATA_ROOT)
    old = {
        "inputs": [
            {"role": "a", "path": f"{shared}/era5/point.nc", "sha256": "0" * 64},
            {"role": "b", "path": f"{root}/products/x/v1/grid.nc", "sha256": "1" * 64},
            {"role": "c", "path": "/somewhere/else/deep/file.csv", "sha256": "2" * 64},
            {"role": "twin", "path": "products.generators.twins.sm_mlda.make_twin", "sha256": ""},
        ],
        "summary": {"path": f"{root}/tmp/work/out.nc", "note": "a / b"},
    }
    public = public_lineage(old)
    assert [i["path"] for i in public["inputs"]] == [
        "era5/point.nc",
        "products/x/v1/grid.nc",
        "deep/file.csv",
        "products.generators.twins.sm_mlda.make_twin",
    ]
    assert public["summary"] == {"path": "tmp/work/out.nc", "note": "a / b"}
    assert [i["sha256"] for i in public["inputs"]][:3] == ["0" * 64, "1" * 64, "2" * 64]
