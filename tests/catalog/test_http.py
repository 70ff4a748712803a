"""HTTP as clients expect it (issue 12): CORS for other origins, byte ranges, validators, caching,
media types, gzip where it helps, hashed static assets, and GDAL ``/vsicurl/`` on a published COG.

Most tests talk to the real gunicorn server (``portal_url``) on the session's test database: the
published et_fusion version of the session setup, and ``cog_version``, a version of the 1 km soil
moisture dataset holding a COG written by the product's own writer (committed for this module,
removed after it). Job results go through Django's test client.
"""

from __future__ import annotations

import functools
import gzip
import http.client
import http.server
import json
import re
import shutil
import threading
import urllib.parse
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.utils import timezone

from portal.catalog.models import Dataset, DatasetFile, DatasetVersion
from portal.files import MEDIA_TYPES, RangeNotSatisfiable, compressible, media_type_for, parse_range
from products.data_kind import DataKind
from products.generators import sm_1km
from products.methods.files import sha256
from products.registry import PRODUCTS
from tests.conftest import CHROMIUM, CHROMIUM_ARGS

NC, CSV = "et_fusion_timeseries.nc", "et_basin_triple_collocation.csv"


def fetch(url: str, method: str = "GET", headers: dict | None = None):
    """``(status, headers, body)`` of one request, nothing decoded or followed (http.client)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


@pytest.fixture
def et_files(et_run) -> dict[str, tuple[str, Path, DatasetFile]]:
    """name -> (URL path, local path, row) of two files of the session's published et_fusion version."""
    version = et_run.version
    out = {}
    for name in (NC, CSV):
        f = version.files.get(name=name)
        out[name] = (
            f"/datasets/{version.dataset_id}/versions/{version.number}/files/{name}",
            Path(settings.DATA_ROOT) / f.path,
            f,
        )
    return out


@pytest.fixture(scope="module")
def cog_version(django_db_setup, django_db_blocker):
    """A COMMITTED version of the 1 km soil moisture dataset holding ``sm.tif``, a SYNTHETIC 600 x 700
    field of 2 days written by :func:`products.generators.sm_1km.write_product` (so a COG with
    overviews); ``(url path, local path)``. Removed with its folder after the module."""
    rng = np.random.default_rng(12)
    values = rng.uniform(0.02, 0.5, (2, 600, 700))
    values[0, :40, :90] = np.nan
    grid = sm_1km.Grid(40.0, 10.0, 600, 700, sm_1km.FINE_RES)
    with django_db_blocker.unblock():
        dataset = Dataset.objects.get(id=PRODUCTS["sm_1km"].dataset_id)
        number = (dataset.versions.order_by("-number").values_list("number", flat=True).first() or 0) + 1
        relative = Path("products") / "http_test" / f"v{number}"
        folder = Path(settings.DATA_ROOT) / relative
        folder.mkdir(parents=True)
        sm_1km.write_product(
            functools.partial(sm_1km.field_features, values=values),
            sm_1km.first_column,
            grid=grid,
            times=np.array(["2019-06-01", "2019-06-02"], dtype="datetime64[ns]"),
            tif_path=folder / "sm.tif",
            chunk=(120, 140),
            global_attrs={"data_kind": DataKind.SYNTHETIC},
        )
        path = folder / "sm.tif"
        version = DatasetVersion.objects.create(dataset=dataset, number=number, directory=str(relative))
        DatasetFile.objects.create(
            version=version,
            name="sm.tif",
            path=str(relative / "sm.tif"),
            size=path.stat().st_size,
            sha256=sha256(path),
            media_type=media_type_for("sm.tif"),
        )
    yield f"/datasets/{dataset.id}/versions/{number}/files/sm.tif", path
    with django_db_blocker.unblock():
        version.delete()
    shutil.rmtree(folder)


# --------------------------------------------------------------------------- pure pieces


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-9", 100, (0, 10)),
        ("bytes=90-", 100, (90, 100)),
        ("bytes=-10", 100, (90, 100)),
        ("bytes=-500", 100, (0, 100)),
        ("bytes=95-500", 100, (95, 100)),
        ("BYTES = 5 - 6", 100, (5, 7)),
        (None, 100, None),
        ("bytes=0-1,5-6", 100, None),
        ("items=0-1", 100, None),
        ("bytes=9-3", 100, None),
        ("bytes=-", 100, None),
        ("bytes=１-２", 100, None),
    ],
)
def test_range_headers_give_the_bytes_asked_or_none_for_the_whole_file(header, size, expected):
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    ("header", "size"),
    [("bytes=100-", 100), ("bytes=100-200", 100), ("bytes=-0", 100), ("bytes=-5", 0), ("bytes=0-", 0)],
)
def test_ranges_past_the_end_are_unsatisfiable(header, size):
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)


def test_every_format_has_its_media_type_and_only_text_like_ones_are_compressible():
    assert media_type_for("a.nc") == "application/x-netcdf"
    assert media_type_for("A.TIF") == "image/tiff; application=geotiff; profile=cloud-optimized"
    assert media_type_for("a.csv") == "text/csv; charset=utf-8"
    assert media_type_for("a.covjson") == "application/prs.coverage+json"
    assert media_type_for("a.zarr.zip") == "application/zip" and media_type_for("a.json") == "application/json"
    assert media_type_for("a.bin") == "application/octet-stream" and media_type_for("a.bin", "x/y") == "x/y"
    assert {t for t in MEDIA_TYPES.values() if compressible(t)} == {
        "text/csv; charset=utf-8",
        "application/prs.coverage+json",
        "application/json",
        "application/geo+json",
        "text/plain; charset=utf-8",
    }
    assert compressible("text/html; charset=utf-8") and compressible("application/vnd.oai.openapi")
    assert not compressible(None) and not compressible("application/octet-stream")


@pytest.mark.django_db
def test_published_files_record_the_media_type_of_their_format(et_run):
    types = dict(et_run.version.files.values_list("name", "media_type"))
    assert types[NC] == "application/x-netcdf" and types[CSV] == "text/csv; charset=utf-8"


# --------------------------------------------------------------------------- CORS


@pytest.mark.django_db
def test_the_api_opendap_and_files_allow_any_origin_without_credentials(portal_url, et_files, cog_version):
    origin = {"Origin": "https://notebook.example.org"}
    version = et_files[NC][2].version
    for path in (
        "/api/datasets/",
        "/api/edr/",
        "/api/edr/collections",
        et_files[NC][0],
        et_files[CSV][0],
        cog_version[0],
        f"/opendap/{version.dataset_id}/v{version.number}/{NC}.das",
    ):
        status, headers, _ = fetch(portal_url + path, headers=origin)
        assert status in (200, 400, 404), path  # OPeNDAP serves grids only; its refusal is readable too
        assert headers["Access-Control-Allow-Origin"] == "*", path
        assert headers.get("Access-Control-Allow-Credentials") is None, path
        exposed = {h.strip().lower() for h in headers["Access-Control-Expose-Headers"].split(",")}
        assert {
            "content-disposition",
            "content-range",
            "accept-ranges",
            "content-length",
            "etag",
            "location",
        } <= exposed
    # pages, the admin and the job page are not for other origins
    for path in ("/datasets/", "/admin/login/"):
        status, headers, _ = fetch(portal_url + path, headers=origin)
        assert status == 200 and "Access-Control-Allow-Origin" not in headers, path


@pytest.mark.django_db
def test_a_preflight_allows_range_and_conditional_headers_but_no_credentials(portal_url, et_files):
    for path in ("/api/datasets/", et_files[NC][0]):
        status, headers, body = fetch(
            portal_url + path,
            "OPTIONS",
            headers={
                "Origin": "http://127.0.0.1:9",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "range, if-none-match",
            },
        )
        assert status == 200, (path, body)
        assert headers["Access-Control-Allow-Origin"] == "*"
        assert {"GET", "HEAD"} <= {m.strip() for m in headers["Access-Control-Allow-Methods"].split(",")}
        assert {"range", "if-none-match", "if-range"} <= {
            h.strip() for h in headers["Access-Control-Allow-Headers"].split(",")
        }
        assert headers.get("Access-Control-Allow-Credentials") != "true"


@pytest.fixture
def other_origin():
    """A tiny page served by a second origin (another port): ``http://127.0.0.1:<port>/``."""
    page = b"<!doctype html><title>notebook</title><p>another origin</p>"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.browser
@pytest.mark.django_db
def test_a_page_on_another_origin_reads_the_api_and_file_ranges_in_chromium(
    portal_url, et_files, other_origin, monkeypatch
):
    from playwright.sync_api import sync_playwright

    nc_url, nc_path, _ = et_files[NC]
    csv_url, csv_path, _ = et_files[CSV]
    datasets = Dataset.objects.count()
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    assert shutil.which(CHROMIUM), "Debian chromium is needed (make setup installs it)"
    script = """async ({api, nc, csv}) => {
        const out = {}, bytes = async r => Array.from(new Uint8Array(await r.arrayBuffer()));
        const a = await fetch(api);
        out.api = [a.status, (await a.json()).count];
        const c = await fetch(csv, {cache: 'no-store'});
        out.csv = [c.status, (await c.arrayBuffer()).byteLength, c.headers.get('Content-Disposition')];
        const r = await fetch(nc, {cache: 'no-store', headers: {Range: 'bytes=100-199'}});
        out.range = [r.status, r.headers.get('Content-Range'), await bytes(r)];
        const s = await fetch(nc, {cache: 'no-store', headers: {Range: 'bytes=-16'}});
        out.suffix = [s.status, s.headers.get('Content-Range'), s.headers.get('ETag'), await bytes(s)];
        try { await fetch(api, {credentials: 'include'}); out.credentials = 'read'; }
        catch (e) { out.credentials = 'refused'; }
        return out;
    }"""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(other_origin)
            out = page.evaluate(
                script, {"api": f"{portal_url}/api/datasets/", "nc": portal_url + nc_url, "csv": portal_url + csv_url}
            )
        finally:
            browser.close()
    local = nc_path.read_bytes()
    assert out["api"] == [200, datasets] and errors == []
    assert out["csv"] == [200, csv_path.stat().st_size, f'attachment; filename="{CSV}"']
    assert out["range"] == [206, f"bytes 100-199/{len(local)}", list(local[100:200])]
    assert out["suffix"][:2] == [206, f"bytes {len(local) - 16}-{len(local) - 1}/{len(local)}"]
    assert out["suffix"][3] == list(local[-16:]) and out["suffix"][2] == f'"{et_files[NC][2].sha256}"'
    assert out["credentials"] == "refused"  # a credentialed request is never shared with another origin


# --------------------------------------------------------------------------- ranges, validators, caching


@pytest.mark.django_db
def test_a_range_is_answered_206_with_exactly_its_bytes(portal_url, et_files):
    url, path, _ = et_files[NC]
    local, size = path.read_bytes(), path.stat().st_size
    for header, start, stop in (
        ("bytes=100-199", 100, 200),
        ("bytes=0-0", 0, 1),
        (f"bytes={size - 10}-", size - 10, size),
        ("bytes=-16", size - 16, size),
        (f"bytes={size - 5}-{size + 100}", size - 5, size),
    ):
        status, headers, body = fetch(portal_url + url, headers={"Range": header, "Accept-Encoding": "gzip"})
        assert status == 206, header
        assert body == local[start:stop] and headers["Content-Length"] == str(stop - start)
        assert headers["Content-Range"] == f"bytes {start}-{stop - 1}/{size}" and "Content-Encoding" not in headers
        assert headers["Accept-Ranges"] == "bytes" and headers["Content-Type"] == "application/x-netcdf"


@pytest.mark.django_db
def test_unsatisfiable_ranges_are_416_and_several_ranges_get_the_whole_file(portal_url, et_files):
    url, path, _ = et_files[NC]
    size = path.stat().st_size
    for header in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}", "bytes=-0"):
        status, headers, _ = fetch(portal_url + url, headers={"Range": header})
        assert status == 416 and headers["Content-Range"] == f"bytes */{size}", header
    status, headers, body = fetch(portal_url + url, headers={"Range": "bytes=0-9,20-29"})
    assert status == 200 and body == path.read_bytes() and "Content-Range" not in headers


@pytest.mark.django_db
def test_validators_answer_304_and_if_range_falls_back_to_the_whole_file(portal_url, et_files):
    url, path, f = et_files[NC]
    status, headers, body = fetch(portal_url + url)
    etag, modified = headers["ETag"], headers["Last-Modified"]
    assert status == 200 and body == path.read_bytes() and etag == f'"{f.sha256}"'  # the checksum of the API
    for condition in (
        {"If-None-Match": etag},
        {"If-None-Match": f'"other", {etag}'},
        {"If-None-Match": "*"},
        {"If-Modified-Since": modified},
    ):
        status, headers, body = fetch(portal_url + url, headers=condition)
        assert status == 304 and body == b"" and headers["ETag"] == etag, condition
        assert "immutable" in headers["Cache-Control"]
    status, _, _ = fetch(portal_url + url, headers={"If-None-Match": '"other"'})
    assert status == 200
    status, _, body = fetch(portal_url + url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert status == 206 and body == path.read_bytes()[:10]
    status, _, body = fetch(portal_url + url, headers={"Range": "bytes=0-9", "If-Range": modified})
    assert status == 206 and len(body) == 10
    for stale in ('"an-older-file"', f"W/{etag}", "Mon, 01 Jan 2001 00:00:00 GMT"):
        status, headers, body = fetch(portal_url + url, headers={"Range": "bytes=0-9", "If-Range": stale})
        assert status == 200 and len(body) == path.stat().st_size, stale
    status, _, _ = fetch(portal_url + url, headers={"If-Match": '"other"'})
    assert status == 412


@pytest.mark.django_db
def test_head_gives_the_headers_of_the_file_without_its_body(portal_url, et_files):
    url, path, _ = et_files[NC]
    status, headers, body = fetch(portal_url + url, "HEAD", headers={"Accept-Encoding": "gzip"})
    assert status == 200 and body == b""
    assert headers["Content-Length"] == str(path.stat().st_size) and headers["Accept-Ranges"] == "bytes"
    assert headers["Content-Type"] == "application/x-netcdf" and headers["ETag"].strip('"')
    assert headers["Content-Disposition"] == f'attachment; filename="{NC}"'


@pytest.mark.django_db
def test_published_files_are_cached_for_a_year_as_immutable_with_their_media_type(portal_url, et_files, cog_version):
    for url, media_type in (
        (et_files[NC][0], "application/x-netcdf"),
        (et_files[CSV][0], "text/csv; charset=utf-8"),
        (cog_version[0], "image/tiff; application=geotiff; profile=cloud-optimized"),
    ):
        status, headers, _ = fetch(portal_url + url, "HEAD")
        assert status == 200 and headers["Content-Type"] == media_type, url
        directives = {d.strip() for d in headers["Cache-Control"].split(",")}
        assert directives == {"public", "max-age=31536000", "immutable"}, url


# --------------------------------------------------------------------------- gzip


@pytest.mark.django_db
def test_json_and_csv_are_gzipped_for_clients_that_accept_it_but_not_ranges_or_netcdf(portal_url, et_files):
    gz = {"Accept-Encoding": "gzip"}
    status, headers, body = fetch(f"{portal_url}/api/datasets/", headers=gz)
    assert status == 200 and headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in headers["Vary"]
    assert json.loads(gzip.decompress(body))["count"] >= 5
    status, headers, body = fetch(f"{portal_url}/api/datasets/")
    assert status == 200 and "Content-Encoding" not in headers and json.loads(body)["count"] >= 5

    url, path, _ = et_files[CSV]
    status, headers, body = fetch(portal_url + url, headers=gz)
    assert status == 200 and headers["Content-Encoding"] == "gzip" and gzip.decompress(body) == path.read_bytes()
    assert len(body) < path.stat().st_size and "Accept-Ranges" not in headers and headers["ETag"].startswith('W/"')
    status, headers, body = fetch(portal_url + url, headers={**gz, "Range": "bytes=0-99"})
    assert status == 206 and "Content-Encoding" not in headers and body == path.read_bytes()[:100]

    url, path, _ = et_files[NC]
    status, headers, body = fetch(portal_url + url, headers=gz)
    assert status == 200 and "Content-Encoding" not in headers and body == path.read_bytes()


@pytest.mark.django_db
def test_static_assets_have_hashed_names_gzip_and_an_immutable_cache(portal_url, et_run):
    status, _, page = fetch(f"{portal_url}/datasets/{et_run.version.dataset_id}/")
    assert status == 200
    scripts = re.findall(rb'src="(/static/js/[\w.-]+\.[0-9a-f]{12}\.js)"', page)
    assert scripts, "no content-hashed script on the detail page"
    status, headers, body = fetch(portal_url + scripts[0].decode(), headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip" and gzip.decompress(body)
    assert "immutable" in headers["Cache-Control"] and "max-age=315360000" in headers["Cache-Control"]


# --------------------------------------------------------------------------- GDAL on a published COG


@pytest.mark.django_db
def test_the_published_geotiff_is_a_cog_that_gdal_reads_over_http(portal_url, cog_version):
    import rasterio
    from rasterio.windows import Window
    from rio_cogeo.cogeo import cog_validate

    url, path = cog_version
    valid, errors, warnings = cog_validate(str(path), strict=True)
    assert valid and errors == [] and warnings == []
    window = Window(300, 200, 130, 90)
    with rasterio.open(path) as local:
        assert local.overviews(1) == [2, 4]  # 700 x 600 cells: halved until a 256-pixel tile holds it
        expected = local.read(window=window)
        expected_overview = local.read(1, out_shape=(150, 175))
    with rasterio.Env(
        GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", CPL_VSIL_CURL_ALLOWED_EXTENSIONS=".tif", GDAL_HTTP_MAX_RETRY="0"
    ):
        with rasterio.open(f"/vsicurl/{portal_url}{url}") as remote:
            assert remote.profile["blockxsize"] == 256 and remote.overviews(1) == [2, 4]
            assert remote.scales == (0.001, 0.001) and remote.nodata == -9999
            np.testing.assert_array_equal(remote.read(window=window), expected)
            np.testing.assert_array_equal(remote.read(1, out_shape=(150, 175)), expected_overview)


# --------------------------------------------------------------------------- job results


JOB_KEY = "k" * 43


@pytest.fixture
def done_job(et_run, tmp_path):
    """A finished job whose result is a CSV under DATA_ROOT (inside the test's transaction)."""
    from portal.subsets.models import SubsetJob

    relative = Path("jobs") / "http-test" / "series.csv"
    path = Path(settings.DATA_ROOT) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("time,value\n" + "".join(f"2015-01-{d:02d},{d * 0.1:.3f}\n" for d in range(1, 31)))
    from portal.subsets.ownership import hash_key

    job = SubsetJob.objects.create(
        owner_key=hash_key(JOB_KEY),  # an anonymous job: its owner presents the key
        dataset=et_run.dataset,
        version=et_run.version,
        file_name=NC,
        kind="point",
        params={"lon": "1", "lat": "2"},
        request_key="0" * 64,
        estimated_bytes=1,
        status=SubsetJob.Status.DONE,
        result_path=str(relative),
        result_name="series 点.csv",
        media_type="text/csv",
        size=path.stat().st_size,
        sha256=sha256(path),
        finished_at=timezone.now(),
        expires_at=timezone.now() + timedelta(hours=2),
    )
    yield job, path
    path.unlink()


@pytest.mark.django_db
def test_a_job_result_has_ranges_validators_and_a_private_cache_until_it_expires(client, done_job):
    from portal.subsets.models import DownloadLog

    job, path = done_job
    url = f"/api/jobs/{job.id}/download/?key={JOB_KEY}"
    local = path.read_bytes()
    response = client.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == local
    assert response["Content-Type"] == "text/csv; charset=utf-8" and response["ETag"] == f'"{job.sha256}"'
    assert response["Content-Disposition"] == "attachment; filename*=utf-8''series%20%E7%82%B9.csv"
    directives = {d.strip() for d in response["Cache-Control"].split(",")}
    assert "private" in directives and "immutable" not in directives
    max_age = int(next(d for d in directives if d.startswith("max-age="))[8:])
    assert 7000 < max_age <= 7200
    response = client.get(url, HTTP_RANGE="bytes=11-20")
    assert response.status_code == 206 and b"".join(response.streaming_content) == local[11:21]
    assert response["Content-Range"] == f"bytes 11-20/{len(local)}"
    assert client.get(url, HTTP_IF_NONE_MATCH=f'"{job.sha256}"').status_code == 304
    response = client.head(url)
    assert response.status_code == 200 and response["Content-Length"] == str(len(local))
    assert client.get(url, HTTP_RANGE=f"bytes={len(local)}-").status_code == 416
    # what was sent is logged: the whole file and the range, not HEAD, 304 or 416
    assert sorted(DownloadLog.objects.filter(job=job).values_list("size", flat=True)) == [10, len(local)]
