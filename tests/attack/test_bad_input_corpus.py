"""The bad-input corpus: what an attacker or a careless client sends, at every front door.

Each request must be answered with a 4xx (never a 5xx, never a 2xx), with a message naming the problem
where the answer is JSON or text (``detail`` / ``description`` / a DAP2 error naming the parameter), and
nothing written: no temporary answer file (``DATA_ROOT/tmp``), no SubsetJob row, no DownloadLog row.

Most requests go through the Django test client (the whole middleware stack, the session's real PostGIS);
what the test client cannot send (a raw NUL or ``..`` in the request line, a 16 MB request line, a body
larger than the cap over a socket, unknown methods) goes over a raw socket to a real gunicorn
(``attack_url``). The published grid is the SYNTHETIC one of ``attack_grid`` (tests/attack/conftest.py).
"""

from __future__ import annotations

import json
import select
import socket
import uuid
from urllib.parse import quote, urlsplit

import numpy as np
import pytest

from .conftest import FT, tmp_files

pytestmark = pytest.mark.django_db

UUID = str(uuid.UUID(int=0x5EED_0000_0000_4000_8000_0000_0000_0001))  # a well-formed id no job has
JSON = "application/json"
DIGITS = {"arabic-indic": "\u0663", "fullwidth": "\uff13", "superscript": "\u00b2"}
HUGE = {"1e309": "1e309", "10**400": "1" + "0" * 400, "nan": "nan", "inf": "inf", "-inf": "-inf"}


def _written():
    from portal.subsets.models import DownloadLog, SubsetJob

    return tmp_files(), SubsetJob.objects.count(), DownloadLog.objects.count()


def _check(response_status: int, content_type: str, body: bytes, names: tuple[str, ...] = ()):
    """A 4xx whose JSON or text body says what is wrong (JSON: ``detail``, EDR's ``description`` or the page
    endpoints' ``error``), naming each of ``names`` (case-insensitive)."""
    assert 400 <= response_status < 500, (response_status, body[:500])
    if content_type.startswith(JSON):
        data = json.loads(body)
        assert isinstance(data, dict) and any(data.get(k) for k in ("detail", "description", "error")), data
        text = json.dumps(data, ensure_ascii=False).lower()
    elif content_type.startswith("text/plain"):  # OPeNDAP's DAP2 error bodies
        text = body.decode("utf-8", "replace").lower()
        assert text.strip(), "an empty error body"
    else:  # HTML pages (the site): a status is what a browser needs; no traceback in any case
        text = body.decode("utf-8", "replace").lower()
        names = ()
    assert "traceback" not in text
    for name in names:
        assert name.lower() in text, (name, text[:500])


def _fill(template: str, version) -> str:
    return template.replace("{FT}", FT).replace("{V}", str(version.number)).replace("{UUID}", UUID)


def _point_body(lon: str) -> bytes:
    """A job request for a point whose ``lon`` is the JSON literal ``lon`` (not a string)."""
    return ('{"dataset": "' + FT + '", "kind": "point", "params": {"lon": ' + lon + ', "lat": 1}}').encode()


# (method, path, body or None, content type or None, words the message must name, allowed statuses or None)
CASES = {
    # --- NUL bytes: in the path, query values, parameter names (raw NULs in the request line: below) ---
    "nul-path-api": ("GET", "/api/datasets/{FT}%00/", None, None, ("NUL",), {400, 404}),
    "nul-path-page": ("GET", "/datasets/{FT}%00/", None, None, (), {400, 404}),
    "nul-path-series": ("GET", "/datasets/{FT}%00/series.json", None, None, (), {400, 404}),
    "nul-path-edr": (
        "GET",
        "/api/edr/collections/{FT}%00/position?coords=POINT(1 1)",
        None,
        None,
        ("NUL",),
        {400, 404},
    ),
    "nul-path-opendap": ("GET", "/opendap/{FT}/v{V}/grid.nc%00.dds", None, None, (), {400, 404}),
    "nul-path-file": ("GET", "/datasets/{FT}/versions/{V}/files/grid.nc%00", None, None, (), {400, 404}),
    "nul-path-job": ("GET", "/api/jobs/{UUID}%00/", None, None, (), {400, 404}),
    "nul-value-bbox": ("GET", "/api/datasets/{FT}/subset/?bbox=0,0,10%00,10", None, None, ("bbox",), {400}),
    "nul-value-point": ("GET", "/api/datasets/{FT}/point/?lon=1&lat=1%00", None, None, ("lat",), {400}),
    "nul-value-q": ("GET", "/api/datasets/?q=soil%00", None, None, ("q",), {400}),
    "nul-value-q-page": ("GET", "/datasets/?q=soil%00", None, None, (), {400}),
    "nul-value-observations": ("GET", "/api/observations/?network=AmeriFlux%00", None, None, ("network",), {400}),
    "nul-value-edr": ("GET", "/api/edr/collections/{FT}/position?coords=POINT(1%00 1)", None, None, ("coords",), {400}),
    "nul-value-opendap": ("GET", "/opendap/{FT}/v{V}/grid.nc.dods?sm%00", None, None, (), {400}),
    "nul-value-script": ("GET", "/api/jobs/{UUID}/script/?tool=curl%00", None, None, ("tool",), {400, 404}),
    "nul-name-point": ("GET", "/api/datasets/{FT}/point/?lon=1&lat=1&x%00y=1", None, None, ("NUL",), {400}),
    "nul-name-edr": ("GET", "/api/edr/collections/{FT}/position?coords=POINT(1 1)&a%00=1", None, None, ("NUL",), {400}),
    "nul-name-list": ("GET", "/api/datasets/?%00=1", None, None, ("NUL",), {400}),
    "nul-json-dataset": (
        "POST",
        "/api/jobs/",
        {"dataset": FT + "\x00", "kind": "subset", "params": {"bbox": "0,0,5,5"}},
        JSON,
        ("dataset",),
        {400},
    ),
    "nul-json-kind": (
        "POST",
        "/api/jobs/",
        {"dataset": FT, "kind": "sub\x00set", "params": {"bbox": "0,0,5,5"}},
        JSON,
        ("kind",),
        {400},
    ),
    "nul-json-value": (
        "POST",
        "/api/jobs/",
        {"dataset": FT, "kind": "subset", "params": {"bbox": "0,0,5\x00,5"}},
        JSON,
        ("bbox",),
        {400},
    ),
    "nul-json-name": (
        "POST",
        "/api/jobs/",
        {"dataset": FT, "kind": "subset", "params": {"bbox": "0,0,5,5", "f\x00": "csv"}},
        JSON,
        (),
        {400},
    ),
    "nul-json-raw-byte": (
        "POST",
        "/api/jobs/",
        b'{"dataset": "' + FT.encode() + b'\x00", "kind": "subset"}',
        JSON,
        (),
        {400},
    ),
    # --- non-ASCII digits (Python's int() and float() read them) ---
    **{
        f"digits-{k}-bbox": ("GET", f"/api/datasets/{{FT}}/subset/?bbox={d},0,10,10", None, None, ("bbox",), {400})
        for k, d in DIGITS.items()
    },
    **{
        f"digits-{k}-lon": ("GET", f"/api/datasets/{{FT}}/point/?lon={d}&lat=1", None, None, ("lon",), {400})
        for k, d in DIGITS.items()
    },
    **{
        f"digits-{k}-lat": ("GET", f"/api/datasets/{{FT}}/point/?lon=1&lat={d}", None, None, ("lat",), {400})
        for k, d in DIGITS.items()
    },
    **{
        f"digits-{k}-time_stride": (
            "GET",
            f"/api/datasets/{{FT}}/subset/?bbox=0,0,10,10&time_stride={d}",
            None,
            None,
            ("time_stride",),
            {400},
        )
        for k, d in DIGITS.items()
    },
    **{
        f"digits-{k}-version": (
            "GET",
            f"/api/datasets/{{FT}}/point/?lon=1&lat=1&version={d}",
            None,
            None,
            ("version",),
            {400},
        )
        for k, d in DIGITS.items()
    },
    **{
        f"digits-{k}-limit": ("GET", f"/api/datasets/?limit={d}", None, None, ("limit",), {400})
        for k, d in DIGITS.items()
    },
    **{
        f"digits-{k}-offset": ("GET", f"/api/datasets/?offset={d}", None, None, ("offset",), {400})
        for k, d in DIGITS.items()
    },
    **{
        f"digits-{k}-edr": (
            "GET",
            f"/api/edr/collections/{{FT}}/position?coords=POINT({d} 1)",
            None,
            None,
            ("coords",),
            {400},
        )
        for k, d in DIGITS.items()
    },
    **{
        f"digits-{k}-opendap-version": ("GET", f"/opendap/{{FT}}/v{d}/grid.nc.dds", None, None, (), {400, 404})
        for k, d in DIGITS.items()
    },
    **{
        f"digits-{k}-file-version": ("GET", f"/datasets/{{FT}}/versions/{d}/files/grid.nc", None, None, (), {400, 404})
        for k, d in DIGITS.items()
    },
    "digits-json-lon": (
        "POST",
        "/api/jobs/",
        {"dataset": FT, "kind": "point", "params": {"lon": "\u0663", "lat": "1"}},
        JSON,
        ("lon",),
        {400},
    ),
    # --- huge and non-finite numbers ---
    **{
        f"huge-{k}-bbox": ("GET", f"/api/datasets/{{FT}}/subset/?bbox=0,0,{v},10", None, None, ("bbox",), {400})
        for k, v in HUGE.items()
    },
    **{
        f"huge-{k}-lon": ("GET", f"/api/datasets/{{FT}}/point/?lon={v}&lat=1", None, None, ("lon",), {400})
        for k, v in HUGE.items()
    },
    **{
        f"huge-{k}-time_stride": (
            "GET",
            f"/api/datasets/{{FT}}/subset/?bbox=0,0,10,10&time_stride={v}",
            None,
            None,
            ("time_stride",),
            {400},
        )
        for k, v in HUGE.items()
    },
    **{
        f"huge-{k}-version": (
            "GET",
            f"/api/datasets/{{FT}}/point/?lon=1&lat=1&version={v}",
            None,
            None,
            ("version",),
            {400, 404},
        )
        for k, v in HUGE.items()
    },
    **{f"huge-{k}-limit": ("GET", f"/api/datasets/?limit={v}", None, None, ("limit",), {400}) for k, v in HUGE.items()},
    **{
        f"huge-{k}-offset": ("GET", f"/api/datasets/?offset={v}", None, None, ("offset",), {400})
        for k, v in HUGE.items()
    },
    **{
        f"huge-{k}-edr": (
            "GET",
            f"/api/edr/collections/{{FT}}/position?coords=POINT({v} 1)",
            None,
            None,
            ("coords",),
            {400},
        )
        for k, v in HUGE.items()
    },
    "huge-edr-bbox": ("GET", "/api/edr/collections/{FT}/cube?bbox=0,0,1e309,10", None, None, ("bbox",), {400}),
    "huge-opendap-index": (
        "GET",
        "/opendap/{FT}/v{V}/grid.nc.dods?sm[0:1:" + "9" * 400 + "][0][0]",
        None,
        None,
        (),
        {400},
    ),
    "huge-offset-bigint": ("GET", "/api/datasets/?offset=9223372036854775808", None, None, ("offset",), {400}),
    "huge-version-bigint": (
        "GET",
        "/datasets/{FT}/versions/99999999999999999999/files/grid.nc",
        None,
        None,
        (),
        {400, 404},
    ),
    "huge-json-inf": ("POST", "/api/jobs/", _point_body("1e999"), JSON, ("lon",), {400}),
    "huge-json-nan": ("POST", "/api/jobs/", _point_body("NaN"), JSON, (), {400}),
    "huge-json-int": ("POST", "/api/jobs/", _point_body("1" + "0" * 400), JSON, ("lon",), {400}),
    "huge-json-int-5000-digits": ("POST", "/api/jobs/", _point_body("1" + "0" * 5000), JSON, (), {400}),
    # --- deep JSON ---
    "deep-json-lists": ("POST", "/api/jobs/", b"[" * 100_000 + b"]" * 100_000, JSON, ("deep",), {400}),
    "deep-json-objects": (
        "POST",
        "/api/jobs/",
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        JSON,
        ("deep",),
        {400, 413},
    ),
    "deep-json-in-params": (
        "POST",
        "/api/jobs/",
        (
            '{"dataset": "' + FT + '", "kind": "subset", "params": {"bbox": ' + "[" * 5000 + "1" + "]" * 5000 + "}}"
        ).encode(),
        JSON,
        (),
        {400},
    ),
    # --- unknown ids ---
    "unknown-dataset-api": ("GET", "/api/datasets/no-such-dataset/", None, None, (), {404}),
    "unknown-dataset-subset": ("GET", "/api/datasets/no-such-dataset/subset/?bbox=0,0,1,1", None, None, (), {404}),
    "unknown-dataset-page": ("GET", "/datasets/no-such-dataset/", None, None, (), {404}),
    "unknown-dataset-series": ("GET", "/datasets/no-such-dataset/series.json", None, None, (), {404}),
    "unknown-dataset-edr": ("GET", "/api/edr/collections/no-such-dataset", None, None, ("no-such-dataset",), {404}),
    "unknown-dataset-edr-query": (
        "GET",
        "/api/edr/collections/no-such-dataset/position?coords=POINT(1 1)",
        None,
        None,
        ("no-such-dataset",),
        {404},
    ),
    "unknown-dataset-opendap": (
        "GET",
        "/opendap/no-such-dataset/v1/grid.nc.dds",
        None,
        None,
        ("no-such-dataset",),
        {404},
    ),
    "unknown-dataset-job": (
        "POST",
        "/api/jobs/",
        {"dataset": "no-such-dataset", "kind": "subset", "params": {"bbox": "0,0,1,1"}},
        JSON,
        ("dataset",),
        {400, 404},
    ),
    "unknown-version-api": (
        "GET",
        "/api/datasets/{FT}/point/?lon=1&lat=1&version=999",
        None,
        None,
        ("version",),
        {400, 404},
    ),
    "unknown-version-file": ("GET", "/datasets/{FT}/versions/999/files/grid.nc", None, None, (), {404}),
    "unknown-version-opendap": ("GET", "/opendap/{FT}/v999/grid.nc.dds", None, None, (), {404}),
    "unknown-file-api": (
        "GET",
        "/api/datasets/{FT}/point/?lon=1&lat=1&file=nope.nc",
        None,
        None,
        ("file",),
        {400, 404},
    ),
    "unknown-file-download": ("GET", "/datasets/{FT}/versions/{V}/files/nope.nc", None, None, (), {404}),
    "unknown-file-opendap": ("GET", "/opendap/{FT}/v{V}/nope.nc.dds", None, None, ("nope.nc",), {404}),
    "unknown-variable": (
        "GET",
        "/api/datasets/{FT}/point/?lon=1&lat=1&variables=nope",
        None,
        None,
        ("variables",),
        {400},
    ),
    "unknown-job": ("GET", "/api/jobs/{UUID}/", None, None, (), {404}),
    "unknown-job-download": ("GET", "/api/jobs/{UUID}/download/", None, None, (), {404}),
    "unknown-job-script": ("GET", "/api/jobs/{UUID}/script/", None, None, (), {404}),
    "unknown-job-retry": ("POST", "/api/jobs/{UUID}/retry/", None, None, (), {404}),
    "unknown-job-page": ("GET", "/jobs/{UUID}/", None, None, (), {404}),
    "malformed-job-uuid": ("GET", "/api/jobs/not-a-uuid/", None, None, (), {404}),
    "malformed-job-uuid-long": ("GET", "/api/jobs/{UUID}0/", None, None, (), {404}),
    "malformed-job-uuid-download": ("GET", "/api/jobs/not-a-uuid/download/", None, None, (), {404}),
    "malformed-job-uuid-retry": ("POST", "/api/jobs/not-a-uuid/retry/", None, None, (), {404}),
    "malformed-job-uuid-page": ("GET", "/jobs/not-a-uuid/", None, None, (), {404}),
    # --- path tricks on file downloads and OPeNDAP (encoded; raw ones over the socket below) ---
    **{
        f"path-file-{i}": ("GET", "/datasets/{FT}/versions/{V}/files/" + trick, None, None, (), {400, 404})
        for i, trick in enumerate(
            [
                "..%2f..%2f..%2fportal%2fsettings.py",
                "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                "%2fetc%2fpasswd",
                "..%5c..%5cportal%5csettings.py",
                "..\\..\\portal\\settings.py",
                "grid.nc%2f..%2f..%2fgrid.nc",
                "%2e%2e",
                "..",
                "%252e%252e%252fetc%252fpasswd",
                "C:%5cWindows%5cwin.ini",
                "~root%2f.bashrc",
            ]
        )
    },
    **{
        f"path-opendap-{i}": ("GET", "/opendap/{FT}/v{V}/" + trick, None, None, (), {400, 404})
        for i, trick in enumerate(
            [
                "..%2f..%2fgrid.nc.dds",
                "%2e%2e%2f%2e%2e%2fetc%2fpasswd.dds",
                "%2fetc%2fpasswd.dds",
                "..%5cgrid.nc.dds",
                "grid.nc%2f..%2fgrid.nc.dds",
                "%2e%2e.dds",
                "..%2f..%2f..%2f..%2fetc%2fpasswd",
            ]
        )
    },
    "path-opendap-dataset": ("GET", "/opendap/..%2f{FT}/v{V}/grid.nc.dds", None, None, (), {400, 404}),
    "path-series": ("GET", "/datasets/..%2f{FT}/series.json", None, None, (), {400, 404}),
    "path-file-param": (
        "GET",
        "/api/datasets/{FT}/point/?lon=1&lat=1&file=..%2fgrid.nc",
        None,
        None,
        ("file",),
        {400, 404},
    ),
    "path-file-param-absolute": (
        "GET",
        "/api/datasets/{FT}/point/?lon=1&lat=1&file=%2fetc%2fpasswd",
        None,
        None,
        ("file",),
        {400, 404},
    ),
    # --- wrong content types ---
    "ctype-text-plain": (
        "POST",
        "/api/jobs/",
        json.dumps({"dataset": FT, "params": {"bbox": "0,0,5,5"}}).encode(),
        "text/plain",
        ("text/plain",),
        {400, 415},
    ),
    "ctype-xml": ("POST", "/api/jobs/", b"<job><dataset>x</dataset></job>", "application/xml", (), {400, 415}),
    "ctype-form-params": (
        "POST",
        "/api/jobs/",
        f"dataset={FT}&kind=subset&params=notjson".encode(),
        "application/x-www-form-urlencoded",
        ("params",),
        {400, 415},
    ),
    "ctype-multipart-garbage": ("POST", "/api/jobs/", b"garbage", "multipart/form-data; boundary=xyz", (), {400, 415}),
    "ctype-multipart-no-boundary": ("POST", "/api/jobs/", b"garbage", "multipart/form-data", (), {400, 415}),
    "ctype-json-invalid": ("POST", "/api/jobs/", b'{"dataset": ', JSON, ("JSON",), {400}),
    "ctype-json-not-object": ("POST", "/api/jobs/", b"[1, 2]", JSON, (), {400}),
    "ctype-json-bad-utf8": ("POST", "/api/jobs/", b'{"dataset": "\xff\xfe"}', JSON, (), {400}),
    "ctype-json-params-list": (
        "POST",
        "/api/jobs/",
        {"dataset": FT, "kind": "subset", "params": ["bbox"]},
        JSON,
        ("params",),
        {400},
    ),
    "ctype-json-unknown-kind": (
        "POST",
        "/api/jobs/",
        {"dataset": FT, "kind": "everything", "params": {}},
        JSON,
        ("kind",),
        {400},
    ),
    # --- methods not allowed ---
    "method-delete-dataset": ("DELETE", "/api/datasets/{FT}/", None, None, (), {401, 403, 405}),
    "method-put-dataset": ("PUT", "/api/datasets/{FT}/", b"{}", JSON, (), {401, 403, 405}),
    "method-post-datasets": ("POST", "/api/datasets/", b"{}", JSON, (), {401, 403, 405}),
    "method-put-job": ("PUT", "/api/jobs/{UUID}/", b"{}", JSON, (), {404, 405}),
    "method-delete-jobs": ("DELETE", "/api/jobs/", None, None, (), {405}),
    "method-get-retry": ("GET", "/api/jobs/{UUID}/retry/", None, None, (), {404, 405}),
    "method-post-edr": ("POST", "/api/edr/collections/{FT}/position?coords=POINT(1 1)", b"{}", JSON, (), {405}),
    "method-patch-edr": ("PATCH", "/api/edr/collections", b"{}", JSON, (), {405}),
    "method-delete-opendap": ("DELETE", "/opendap/{FT}/v{V}/grid.nc.dds", None, None, (), {405}),
    "method-post-opendap": ("POST", "/opendap/{FT}/v{V}/grid.nc.dods", b"", "text/plain", (), {403, 405}),
    "method-put-file": ("PUT", "/datasets/{FT}/versions/{V}/files/grid.nc", b"x", "text/plain", (), {403, 405}),
    "method-delete-series": ("DELETE", "/datasets/{FT}/series.json", None, None, (), {403, 405}),
    "method-post-observations": ("POST", "/api/observations/", b"{}", JSON, (), {401, 403, 405}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_a_4xx_naming_the_problem_and_writes_nothing(client, attack_grid, case):
    method, path, body, content_type, names, statuses = CASES[case]
    path = _fill(path, attack_grid)
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    before = _written()
    kwargs = {} if body is None else {"data": body, "content_type": content_type or "application/octet-stream"}
    response = client.generic(method, path, **kwargs)
    content = b"".join(response) if response.streaming else response.content
    _check(response.status_code, response.get("Content-Type", ""), content, names)
    if statuses:
        assert response.status_code in statuses, (response.status_code, content[:300])
    assert _written() == before


def test_negative_zero_is_zero_not_an_error(client, attack_grid):
    """-0 is a number (the cell at 0, 0): answered like 0, where the corpus's other numbers are refused."""
    a = client.get(f"/api/datasets/{FT}/point/?lon=-0&lat=-0&f=csv")
    b = client.get(f"/api/datasets/{FT}/point/?lon=0&lat=0&f=csv")
    assert a.status_code == b.status_code == 200, a.content[:300]
    assert b"".join(a) == b"".join(b)


# --- 10^6-vertex polygons --------------------------------------------------------------------------

N_VERTICES = 10**6


def _ring(n: int = N_VERTICES) -> np.ndarray:
    angles = np.linspace(0, 2 * np.pi, n)
    ring = np.column_stack([10 + 5 * np.cos(angles), 10 + 5 * np.sin(angles)]).round(5)
    ring[-1] = ring[0]
    return ring


@pytest.fixture(scope="module")
def huge_polygons() -> dict[str, str]:
    ring = _ring()
    wkt = "POLYGON((" + ", ".join(f"{x:.5f} {y:.5f}" for x, y in ring) + "))"
    geojson = json.dumps({"type": "Polygon", "coordinates": [ring.tolist()]})
    return {"wkt": wkt, "geojson": geojson}


@pytest.mark.parametrize("form", ["wkt", "geojson"])
@pytest.mark.parametrize("kind", ["subset", "area"])
def test_a_million_vertex_polygon_in_a_query_is_refused(client, attack_grid, huge_polygons, form, kind):
    before = _written()
    response = client.get(f"/api/datasets/{FT}/{kind}/", {"polygon": huge_polygons[form], "f": "csv"})
    _check(response.status_code, response["Content-Type"], response.content, ("polygon",))
    assert _written() == before


@pytest.mark.parametrize("form", ["wkt", "geojson"])
def test_a_million_vertex_polygon_in_an_edr_query_is_refused(client, attack_grid, huge_polygons, form):
    before = _written()
    if form == "wkt":
        response = client.get(f"/api/edr/collections/{FT}/area", {"coords": huge_polygons["wkt"]})
        _check(response.status_code, response["Content-Type"], response.content, ("coords",))
    else:  # EDR's coords are WKT: GeoJSON there is malformed whatever its size
        response = client.get(f"/api/edr/collections/{FT}/area", {"coords": huge_polygons["geojson"]})
        _check(response.status_code, response["Content-Type"], response.content, ("coords",))
    assert _written() == before


@pytest.mark.parametrize("form", ["wkt", "geojson"])
def test_a_million_vertex_polygon_in_a_job_body_is_a_413_or_400(client, attack_grid, huge_polygons, form):
    before = _written()
    body = json.dumps({"dataset": FT, "kind": "subset", "params": {"polygon": huge_polygons[form]}})
    response = client.post("/api/jobs/", body, content_type=JSON)
    _check(response.status_code, response["Content-Type"], response.content)
    assert response.status_code in (400, 413)
    assert _written() == before


@pytest.mark.parametrize("form", ["wkt", "geojson"])
@pytest.mark.parametrize("kind", ["subset", "area"])
def test_a_million_vertex_polygon_in_a_post_form_is_a_413_or_400(client, attack_grid, huge_polygons, form, kind):
    """The POST form of the direct endpoints (for polygons too long for a URL) caps its body too."""
    before = _written()
    response = client.post(f"/api/datasets/{FT}/{kind}/", {"polygon": huge_polygons[form], "f": "csv"})
    _check(response.status_code, response["Content-Type"], response.content)
    assert response.status_code in (400, 413)
    assert _written() == before


def test_a_polygon_just_under_the_body_cap_but_over_the_vertex_cap_names_the_vertices(client, attack_grid):
    from portal.subsets import core

    ring = _ring(core.MAX_POLYGON_VERTICES + 10)
    wkt = "POLYGON((" + ", ".join(f"{x:.3f} {y:.3f}" for x, y in ring) + "))"
    before = _written()
    response = client.post(
        "/api/jobs/", {"dataset": FT, "kind": "subset", "params": {"polygon": wkt}}, content_type=JSON
    )
    _check(response.status_code, response["Content-Type"], response.content, ("polygon", "vertices"))
    assert _written() == before


# --- over a raw socket, to a real gunicorn -----------------------------------------------------------


def _raw(url: str, head: bytes, body: bytes = b"", timeout: float = 60) -> tuple[int | None, bytes]:
    """Send ``head`` (request line and headers, CRLF-terminated) and ``body`` in pieces; stop sending as soon
    as the server answers. Returns (status or None when the server closed without answering, raw answer)."""
    host, port = urlsplit(url).hostname, urlsplit(url).port
    data = head + body
    answer = b""
    with socket.create_connection((host, port), timeout=timeout) as s:
        try:
            for start in range(0, len(data), 65536):
                s.sendall(data[start : start + 65536])
                if select.select([s], [], [], 0)[0]:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                answer += chunk
                if b"\r\n\r\n" in answer and b"Content-Length" not in answer.split(b"\r\n\r\n")[0]:
                    s.settimeout(2)
        except (ConnectionResetError, TimeoutError):
            pass
    if not answer.startswith(b"HTTP/"):
        return None, answer
    return int(answer.split(b" ", 2)[1]), answer


def _parts(answer: bytes) -> tuple[str, bytes]:
    """(Content-Type, body) of a raw HTTP/1.1 answer, a chunked body put together."""
    head, _, body = answer.partition(b"\r\n\r\n")
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        whole, rest = b"", body
        while rest:
            size, _, rest = rest.partition(b"\r\n")
            n = int(size.split(b";")[0] or b"0", 16)
            if n == 0:
                break
            whole, rest = whole + rest[:n], rest[n + 2 :]
        body = whole
    return headers.get("content-type", ""), body


RAW = {
    "raw-nul-path": "GET /api/datasets/{FT}\x00/ HTTP/1.1",
    "raw-nul-query": "GET /api/datasets/{FT}/point/?lon=1\x00&lat=1 HTTP/1.1",
    "raw-nul-opendap": "GET /opendap/{FT}/v{V}/grid.nc\x00.dds HTTP/1.1",
    "raw-dotdot-file": "GET /datasets/{FT}/versions/{V}/files/../../../../../../etc/passwd HTTP/1.1",
    "raw-dotdot-opendap": "GET /opendap/{FT}/v{V}/../../../etc/passwd HTTP/1.1",
    "raw-dotdot-static": "GET /static/../portal/settings.py HTTP/1.1",
    "raw-dotdot-static-encoded": "GET /static/..%2f..%2fportal%2fsettings.py HTTP/1.1",
    "raw-absolute-uri-file": "GET file:///etc/passwd HTTP/1.1",
    "raw-double-slash": "GET //etc/passwd HTTP/1.1",
    "raw-backslash-file": "GET /datasets/{FT}/versions/{V}/files/..\\..\\..\\portal\\settings.py HTTP/1.1",
    "raw-backslash-opendap": "GET /opendap/{FT}/v{V}/..\\..\\grid.nc.dds HTTP/1.1",
    "raw-method-brew": "BREW /api/datasets/ HTTP/1.1",
    "raw-method-trace-api": "TRACE /api/datasets/ HTTP/1.1",
    "raw-method-trace-page": "TRACE /datasets/ HTTP/1.1",
    "raw-method-connect": "CONNECT 127.0.0.1:22 HTTP/1.1",
    "raw-method-propfind-file": "PROPFIND /datasets/{FT}/versions/{V}/files/grid.nc HTTP/1.1",
    "raw-bad-version": "GET /api/datasets/ HTTP/9.9",
    "raw-space-in-path": "GET /api/datasets/{FT} x/ HTTP/1.1",
}


@pytest.mark.parametrize("case", list(RAW))
def test_raw_requests_the_test_client_cannot_send_are_a_4xx(attack_url, attack_grid, case):
    line = _fill(RAW[case], attack_grid).encode("latin-1")
    before = _written()
    status, answer = _raw(attack_url, line + b"\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert status is not None, f"no answer: {answer[:200]!r}"
    content_type, body = _parts(answer)
    _check(status, content_type, body)
    assert b"root:" not in body and b"SECRET_KEY" not in body
    assert _written() == before


def test_a_million_vertex_polygon_in_a_request_line_is_refused_by_the_server(attack_url, attack_grid, huge_polygons):
    before = _written()
    line = f"GET /api/datasets/{FT}/subset/?polygon={quote(huge_polygons['wkt'])}&f=csv HTTP/1.1\r\n".encode()
    status, answer = _raw(attack_url, line + b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n")
    # gunicorn answers a 4xx (request line too large) or closes the connection: never a 2xx or 5xx
    assert status is None or 400 <= status < 500, answer[:300]
    assert _written() == before


@pytest.mark.parametrize("path", ["/api/jobs/", "/api/datasets/{FT}/subset/"])
def test_a_million_vertex_polygon_body_is_refused_before_it_is_read(attack_url, attack_grid, huge_polygons, path):
    before = _written()
    path = _fill(path, attack_grid)
    if path == "/api/jobs/":
        body, content_type = (
            json.dumps({"dataset": FT, "kind": "subset", "params": {"polygon": huge_polygons["geojson"]}}).encode(),
            JSON,
        )
    else:
        body, content_type = (
            ("polygon=" + quote(huge_polygons["wkt"]) + "&f=csv").encode(),
            "application/x-www-form-urlencoded",
        )
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    status, answer = _raw(attack_url, head, body)
    assert status in (400, 413), answer[:300]
    content_type, text = _parts(answer)
    _check(status, content_type, text)
    assert _written() == before


def test_a_chunked_body_over_the_cap_is_refused(attack_url, attack_grid):
    before = _written()
    chunk = b"[" * 65536
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(64)) + b"0\r\n\r\n"  # 4 MiB
    head = (
        b"POST /api/jobs/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    status, answer = _raw(attack_url, head, body)
    assert status in (400, 413), answer[:300]
    assert _written() == before
