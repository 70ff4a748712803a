"""The edge through a real gunicorn started as `make run` starts it (portal/gunicorn.conf.py).

The database down: a server whose DATABASE_URL names a port where nothing listens, or a socket that
accepts and never answers; every answer is a 503 within seconds. Chunked bodies, the request-line
limit and the Server banner need a real HTTP server too.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db  # the session's test database, which the servers use


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gunicorn(env: dict):
    """gunicorn -c portal/gunicorn.conf.py on a free port, ready when it answers anything; yields the port."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "portal/gunicorn.conf.py",
            "portal.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=settings.BASE_DIR,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _request(port, "GET", "/static/favicon.svg")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.3)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _request(port: int, method: str, path: str, body=None, headers=None, timeout=30, chunked=False):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        try:
            conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered (a 413) and closed before the whole body was sent: its answer is read below
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.fixture
def silent_database():
    """A TCP port that accepts connections (the kernel's backlog) and never says a word."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_the_database_down_is_a_503_everywhere_within_seconds(service_env, silent_database, kind):
    port = _free_port() if kind == "refused" else silent_database
    env = dict(service_env, DATABASE_URL=f"postgis://postgres@127.0.0.1:{port}/nothing", DATABASE_CONNECT_TIMEOUT="2")
    with gunicorn(env) as web:
        for path, form in [
            ("/api/datasets/", "json"),
            ("/opendap/x/v1/y.nc.das", "json"),
            ("/", "html"),
            ("/health/", "json"),
        ]:
            start = time.monotonic()
            status, headers, body = _request(web, "GET", path)
            took = time.monotonic() - start
            assert status == 503, (path, status, body[:300])
            assert took < 8, (path, took)
            if form == "json":
                data = json.loads(body)
                assert headers["Content-Type"] == "application/json"
                assert "database" in json.dumps(data)
            else:
                assert headers["Content-Type"].startswith("text/html") and b"database" in body
            if path != "/health/":
                assert headers["Retry-After"] == "30"
        assert json.loads(_request(web, "GET", "/health/")[2])["checks"]["database"]["ok"] is False
        # the database noticed by a middleware (the session of a signed-in browser), not by a view
        status, headers, body = _request(web, "GET", "/datasets/", headers={"Cookie": "sessionid=abcdefgh12345678"})
        assert status == 503 and b"database" in body and headers["Retry-After"] == "30"


@pytest.fixture(scope="module")
def edge_server(service_env):
    with gunicorn(dict(service_env, REQUEST_MAX_BODY_BYTES="4096")) as port:
        yield port


def test_the_server_banner_names_no_software(edge_server):
    status, headers, _ = _request(edge_server, "GET", "/api/datasets/?limit=1")
    assert status == 200 and headers["Server"] == "portal"


def test_request_lines_up_to_8_kb_are_read(edge_server):
    status, _, body = _request(edge_server, "GET", "/api/datasets/?q=" + "x" * 7000)
    assert status == 200, body[:200]
    status, _, _ = _request(edge_server, "GET", "/api/datasets/?q=" + "x" * 9000)
    assert status == 400  # gunicorn: request line too large


def _chunks(data: bytes, size: int = 1000):
    for i in range(0, len(data), size):
        yield data[i : i + size]


def test_a_chunked_body_is_capped_too(edge_server):
    big = json.dumps({"dataset": "x", "kind": "subset", "params": {"polygon": "1 2, " * 2000}}).encode()
    status, _, body = _request(
        edge_server,
        "POST",
        "/api/jobs/",
        body=_chunks(big),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        chunked=True,
    )
    assert status == 413 and json.loads(body)["limit"] == 4096
    # a small chunked body reaches the view (Django alone would read it as empty)
    small = json.dumps({"dataset": "no-such-dataset", "kind": "subset", "params": {"bbox": "0,0,1,1"}}).encode()
    status, _, body = _request(
        edge_server,
        "POST",
        "/api/jobs/",
        body=_chunks(small, 10),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        chunked=True,
    )
    assert status in (400, 404) and b"no-such-dataset" in body, body[:300]
    # a body whose chunks are not framed is a 400, not a 500
    status, _, body = _request(
        edge_server,
        "POST",
        "/api/jobs/",
        body=b"zz\r\n{}\r\n0\r\n\r\n",
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    )
    assert status == 400, body[:300]
