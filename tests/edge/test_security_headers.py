"""Security headers: the CSP and its friends on every answer, pages clean under it in headless Chromium,
and `manage.py check --deploy` clean behind TLS."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings

from products.registry import PRODUCTS
from tests.conftest import wait_until

ET = PRODUCTS["et_fusion"].dataset_id


def _directives(header: str) -> dict[str, set[str]]:
    parts = (p.strip().split() for p in header.split(";") if p.strip())
    return {p[0]: set(p[1:]) for p in parts}


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/", "/datasets/", "/accounts/login/", "/api/datasets/", "/no-such-page/"])
def test_every_answer_carries_the_policy(client, url):
    response = client.get(url)
    csp = _directives(response["Content-Security-Policy"])
    assert csp["default-src"] == {"'self'"} and csp["script-src"] == {"'self'"} and csp["style-src"] == {"'self'"}
    assert csp["img-src"] == {"'self'", "data:", "blob:"} and csp["connect-src"] == {"'self'"}
    assert csp["frame-ancestors"] == {"'none'"} and csp["object-src"] == {"'none'"}
    assert csp["base-uri"] == {"'self'"} and csp["form-action"] == {"'self'"}
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in response  # only behind TLS


@pytest.mark.django_db
def test_the_api_docs_load_their_setup_as_a_script_not_inline(client):
    html = client.get("/api/docs/")
    assert html.status_code == 200
    assert b"<script>" not in html.content and b"/api/docs/?script" in html.content
    csp = _directives(html["Content-Security-Policy"])
    assert csp["script-src"] == {"'self'"} and "'unsafe-inline'" in csp["style-src"]
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")


def _violations(page) -> list[str]:
    return page.evaluate("window.cspViolations")


@pytest.mark.browser
@pytest.mark.django_db
def test_the_dataset_page_renders_its_map_and_chart_under_the_policy(et_run, page, portal_url):
    response = page.goto(f"{portal_url}/datasets/{ET}/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    wait_until(page, "!!(window.portalChart && window.portalChart.data.datasets.length === 3)")
    page.wait_for_selector("#map .leaflet-land-pane path", state="attached")
    assert page.locator("#map .leaflet-overlay-pane path.leaflet-interactive").count() >= 2
    assert page.locator("#series-chart").bounding_box()["height"] > 200
    page.select_option("#station-select", "DE-Hai")
    wait_until(page, "window.portalChart.options.plugins.title.text === 'DE-Hai'")
    assert _violations(page) == [] and page.problems == []


@pytest.mark.browser
@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/accounts/signup/"])
def test_pages_have_no_violation(page, portal_url, path):
    page.goto(f"{portal_url}{path}")
    page.wait_for_load_state("load")
    assert _violations(page) == [] and page.problems == []


@pytest.mark.browser
@pytest.mark.django_db
def test_the_api_docs_render_under_the_policy(page, portal_url):
    page.goto(f"{portal_url}/api/docs/")
    page.wait_for_selector("#swagger-ui .opblock", timeout=30_000)
    assert page.locator("#swagger-ui .opblock").count() > 3
    assert _violations(page) == [] and page.problems == []


def test_check_deploy_is_clean_behind_tls(tmp_path):
    env = dict(
        os.environ,
        BEHIND_TLS="true",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="data.example.org",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    # and without TLS, the same check names what is missing (the test would pass on an empty check list)
    env["BEHIND_TLS"] = "false"
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert "security.W004" in output and "security.W008" in output


def test_behind_tls_redirects_to_https_and_sends_hsts(tmp_path):
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='portal.settings'; django.setup();"
        "from django.test import Client; c = Client();"
        "r = c.get('/datasets/'); print(r.status_code, r['Location']);"
        "r = c.get('/datasets/', headers={'X-Forwarded-Proto': 'https'}); print(r['Strict-Transport-Security']);"
        "print(c.get('/health/').status_code != 301)"
    )
    env = dict(os.environ, BEHIND_TLS="true", DEBUG="false", SECRET_KEY=secrets.token_urlsafe(64))
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    lines = result.stdout.split("\n")
    assert lines[0] == "301 https://testserver/datasets/", result.stdout + result.stderr
    assert lines[1] == "max-age=31536000; includeSubDomains; preload"
    assert lines[2] == "True"
