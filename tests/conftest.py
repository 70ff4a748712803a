"""Fixtures shared by the test suite.

The session's test database (real PostGIS) is filled once: the five catalog records, the real
CARDAMOM-FluxVal towers, and one ET product generated on a few real towers. Tests run in
transactions rolled back at their end, so they all see that committed state.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

# A few real towers of different climates for quick generator runs.
# Basin tables the ET product reads (five ET products, precipitation, runoff); the TWS files are not needed here.
BASIN_FILES = ("ET_ERA5_Land_monthly.csv", "ET_FLUXCOM_monthly.csv", "ET_GLDAS21_NOAH36_monthly.csv",
               "ET_GLEAM_monthly.csv", "ET_MOD16_monthly.csv", "P_ERA5_Land_monthly.csv", "P_GPCC_monthly.csv",
               "P_MSWEP_monthly.csv", "R_ERA5_Land_monthly.csv")
FEW_BASINS, FEW_TOWERS = 24, 8
FEW_SITES = ["AU-How", "BE-Vie", "BR-Sa1", "CA-Oas", "DE-Hai", "FI-Hyy", "IT-Ren", "US-Ha1", "US-MMS", "US-Var",
             "CN-Cha", "AU-Tum"]


# Rate-limit counters (and allauth's) live in the cache: each test session counts under a prefix of its
# own, so that runs never see each other's counts, and the rates are high unless a test lowers them
# (tests/edge). Set in the environment too, for the web servers and workers tests start.
CACHE_KEY_PREFIX = f"{os.environ.get('CACHE_KEY_PREFIX', 'portal')}-test-{uuid.uuid4().hex[:12]}"
os.environ["CACHE_KEY_PREFIX"] = CACHE_KEY_PREFIX
TEST_RATES = {"RATE_USER_PER_MINUTE": 1_000_000, "RATE_ANON_PER_MINUTE": 1_000_000,
              "RATE_ACCOUNTS_POST_PER_MINUTE": 1_000_000}
for _name, _rate in TEST_RATES.items():
    os.environ.setdefault(_name, str(_rate))


@pytest.fixture(scope="session", autouse=True)
def isolated_cache():
    """The cache under this session's own prefix, and high rates (unless set in the environment)."""
    from django.test.utils import override_settings

    caches = {name: dict(conf, KEY_PREFIX=CACHE_KEY_PREFIX) for name, conf in settings.CACHES.items()}
    override = override_settings(CACHES=caches, **{name: int(os.environ[name]) for name in TEST_RATES})
    override.enable()
    yield CACHE_KEY_PREFIX
    override.disable()


# Tests publish to their own Redis database so that a worker started by `make run` never sees them
# (TEST_BROKER_URL: another database, for two test runs side by side).
TEST_BROKER_URL = os.environ.get("TEST_BROKER_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session", autouse=True)
def test_broker():
    from portal.celery import app

    settings.CELERY_BROKER_URL = TEST_BROKER_URL
    app.conf.broker_url = TEST_BROKER_URL
    return TEST_BROKER_URL


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = Path(settings.SHARED_DATA_DIR)
    assert path.is_dir(), f"SHARED_DATA_DIR={path} does not exist: the real sample data are needed"
    return path


@pytest.fixture(scope="session")
def catalog_dir(shared_data) -> Path:
    return shared_data.parent / "catalog"


@pytest.fixture(scope="session")
def session_data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data_root")
    settings.DATA_ROOT = root
    return root


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker, shared_data, catalog_dir, session_data_root):
    from ingestion.services import ingest
    from portal.catalog.services import import_records
    from products.services import create_run, execute_run

    with django_db_blocker.unblock():
        for path in sorted(catalog_dir.glob("*.json")):
            import_records(path)
        ingest("cardamom", shared_data / "cardamom_fluxval")
        ingest("ecostress", shared_data / "ecov002_calval_tables")
        ingest("basins", [shared_data / "lehmannfa_basin_water_budget" / f for f in BASIN_FILES])
        run = execute_run(create_run("et_fusion", parameters=et_test_parameters()).id)
        assert run.status == "succeeded", run.error


def et_test_parameters() -> dict:
    """A small, quick et_fusion run: FEW_SITES, the first basins, the ECOSTRESS towers with most samples."""
    from django.db.models import Count

    from ingestion.models import Station

    basins = sorted(Station.objects.filter(network="GRDC-MRB").values_list("code", flat=True))[:FEW_BASINS]
    towers = list(Station.objects.filter(network="AmeriFlux", observations__variable="et_stic")
                  .annotate(n=Count("observations")).order_by("-n", "code").values_list("code", flat=True)[:FEW_TOWERS])
    return {"sites": FEW_SITES, "n_splits": 3, "basins": basins, "basin_splits": 3, "fusion_sites": towers,
            "fusion_splits": 3, "fusion_max_iter": 3}


@pytest.fixture
def et_run(django_db_setup):
    """The ET GenerationRun published by the session setup."""
    from products.models import GenerationRun

    return GenerationRun.objects.filter(product="et_fusion", status="succeeded").earliest("created_at")


@pytest.fixture(scope="session")
def service_env(django_db_setup, django_db_blocker, test_broker) -> dict:
    """Environment for a worker or web server process on the session's test database.

    At the end of the session, any connection such a process left open to the test database (a
    server or worker that outlived its test) is recorded in ``var/test-leftover-connections.log``
    and closed, so that the database can be dropped.
    """
    db = connection.settings_dict
    yield dict(os.environ, DATABASE_URL=f"postgis://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
               CELERY_BROKER_URL=test_broker, DATA_ROOT=str(settings.DATA_ROOT),
               SHARED_DATA_DIR=str(settings.SHARED_DATA_DIR), DEBUG="false",
               SUBSET_JOB_HEARTBEAT_SECONDS="0.5")
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT pid, application_name, client_port, state, backend_start, left(query, 120) "
                       "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        left = cursor.fetchall()
        if left:
            record = Path(settings.BASE_DIR) / "var" / "test-leftover-connections.log"
            record.parent.mkdir(exist_ok=True)
            with record.open("a") as out:
                out.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {db['NAME']}: {left}\n")
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")


@pytest.fixture(scope="session")
def portal_url(service_env):
    """A real web server (gunicorn) on the session's test database, as `make run` starts it.

    (pytest-django's live_server would flush the database after each test.)
    """
    with web_server(service_env) as url:
        yield url


@contextmanager
def web_server(env: dict, workers: int = 2, log: Path | None = None):
    """Run gunicorn as ``make run`` does (portal/gunicorn.conf.py) with ``env`` on a free loopback port;
    yields its base URL, stops it afterwards. Its output goes to ``log`` when given."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    out = log.open("w") if log else None
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "portal.wsgi", "-c", "portal/gunicorn.conf.py",
                             "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--log-level", "warning"],
                            cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT if out else None)
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                urllib.request.urlopen(url + "/", timeout=5)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    where = f" (see {log})" if log else ""
                    raise RuntimeError(f"the web server did not start at {url}{where}") from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if out:
            out.close()


@pytest.fixture
def start_worker(service_env, tmp_path):
    """Start real Celery worker processes (solo pool) on the session's test database: ``start_worker()``
    returns the process (``.log_path`` is its log); every one still running is stopped after the test."""
    procs = []

    def start():
        path = tmp_path / f"worker{len(procs)}.log"
        log = path.open("w")
        proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool=solo",
                                 "--loglevel=INFO", "--without-heartbeat", "--without-mingle", "--without-gossip"],
                                cwd=settings.BASE_DIR, env=service_env, stdout=log, stderr=subprocess.STDOUT)
        proc.log_path, proc.log = path, log
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        proc.log.close()


@pytest.fixture
def celery_worker(start_worker):
    """One real Celery worker process on the session's test database; ``.log_path`` is its log."""
    return start_worker()


def make_user(email: str, password: str = "pa55-word-ok", *, verified: bool = True, **extra):
    """A portal account as sign-up leaves it: e-mail is the login; ``verified`` as after the link was followed."""
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username=extra.pop("username", email), email=email,
                                                password=password, **extra)
    EmailAddress.objects.create(user=user, email=email, primary=True, verified=verified)
    return user


@pytest.fixture
def verified_user(db):
    """A signed-up user whose e-mail address is verified (password ``pa55-word-ok``)."""
    return make_user("researcher@example.org")


def wait_until(page, expression: str, arg=None, timeout: float = 30) -> None:
    """Poll a page's ``expression`` (or function of ``arg``) from the test until it is truthy.

    Playwright's ``wait_for_function`` compiles its string in the page, which the portal's
    Content-Security-Policy (no 'unsafe-eval') forbids; ``page.evaluate`` runs outside the policy.
    """
    deadline = time.monotonic() + timeout
    while not (page.evaluate(expression, arg) if arg is not None else page.evaluate(expression)):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.1)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def page(portal_url, monkeypatch):
    """A headless Chromium page (Debian's ``chromium``) on the portal's live server.

    ``page.problems`` collects console errors, page errors, failed requests and any request leaving
    the portal (assets come from the portal itself); ``window.cspViolations`` in the page collects
    Content-Security-Policy violations (the ``securitypolicyviolation`` event).
    """
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # synchronous and safe (Django's documented switch for this case).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    assert shutil.which(CHROMIUM), "Debian chromium is needed (make setup installs it)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1800})
        page.problems = []
        page.on("console", lambda m: m.type == "error" and page.problems.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: page.problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: page.problems.append(f"request failed: {r.url}"))
        page.on("request", lambda r: r.url.startswith(portal_url) or r.url.startswith(("data:", "blob:"))
                or page.problems.append(f"external request: {r.url}"))
        page.add_init_script("window.cspViolations = []; document.addEventListener('securitypolicyviolation', "
                             "e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));")
        yield page
        browser.close()
