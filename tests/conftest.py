"""Fixtures shared by the test suite.

The session's test database (real PostGIS) is filled once: the five catalog records, the real
CARDAMOM-FluxVal towers, the ECOSTRESS towers and the basin tables, and, when the session runs a test
that reads it (:data:`READS_SESSION_ET`, or any test of a file that asks for ``et_run``), one ET product
generated on a few real towers and published. Tests run in transactions rolled back at their end, so they
all see that committed state.
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
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count
from django.test.utils import override_settings, setup_databases, teardown_databases
from playwright.sync_api import sync_playwright

from ingestion.models import Station
from ingestion.services import ingest
from portal.catalog.services import import_records
from portal.celery import app
from products.models import GenerationRun
from products.services import create_run, execute_run

# The published SYNTHETIC grid fixtures (grid_version, live_grid) of every folder's tests.
pytest_plugins = ["tests.grids"]

# A few real towers of different climates for quick generator runs.
# Basin tables the ET product reads (five ET products, precipitation, runoff); the TWS files are not needed here.
BASIN_FILES = (
    "ET_ERA5_Land_monthly.csv",
    "ET_FLUXCOM_monthly.csv",
    "ET_GLDAS21_NOAH36_monthly.csv",
    "ET_GLEAM_monthly.csv",
    "ET_MOD16_monthly.csv",
    "P_ERA5_Land_monthly.csv",
    "P_GPCC_monthly.csv",
    "P_MSWEP_monthly.csv",
    "R_ERA5_Land_monthly.csv",
)
FEW_BASINS, FEW_TOWERS = 24, 8
FEW_SITES = [
    "AU-How",
    "BE-Vie",
    "BR-Sa1",
    "CA-Oas",
    "DE-Hai",
    "FI-Hyy",
    "IT-Ren",
    "US-Ha1",
    "US-MMS",
    "US-Var",
    "CN-Cha",
    "AU-Tum",
]

# The session's ET version (a real generation: about half a minute) is made only for sessions that need it:
# those running a test of a file that asks for ``et_run`` (any of its tests: they may rely on the version
# without asking), or of these files, which read the published ET version without asking for ``et_run``.
READS_SESSION_ET = {
    "tests/records/test_records.py",  # the ET record is the published one of the five
    "tests/stac/test_stac_api.py",  # ET v1 is an Item of the catalogue
    "tests/edr/test_edr.py",  # a published dataset without a grid is not a collection
    "tests/products/test_cf_published.py",  # the session's ET version is checked like every product's
    "tests/attack/test_schemathesis.py",  # the API fuzzed over what the portal publishes
    "tests/bench/test_load.py",  # users load the portal as `make run` serves it: with its ET product
}
ET_FILES = pytest.StashKey[set]()  # the files of READS_SESSION_ET and those with a test asking for et_run


# pytest-xdist (`make test` runs two workers): each worker process is a test session of its own, with its
# own test database (pytest-django names it test_<name>_gw0, ...), cache prefix, broker, DATA_ROOT (under
# its own tmp_path_factory folder), servers and Celery workers (free ports). None when run without xdist.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")

# Rate-limit counters (and allauth's) live in the cache: each test session (each xdist worker) counts under
# a prefix of its own, so that runs never see each other's counts, and the rates are high unless a test
# lowers them (tests/edge). Set in the environment too, for the web servers and workers tests start.
# (xdist's workers inherit the environment of the controlling process, which imported this file too:
# the prefix derives from the CACHE_KEY_PREFIX given to pytest, not from the controller's.)
_CACHE_BASE = os.environ.get("CACHE_KEY_PREFIX", "portal").split("-test-")[0]
CACHE_KEY_PREFIX = f"{_CACHE_BASE}-test-{XDIST_WORKER + '-' if XDIST_WORKER else ''}{uuid.uuid4().hex[:12]}"
os.environ["CACHE_KEY_PREFIX"] = CACHE_KEY_PREFIX
TEST_RATES = {
    "RATE_USER_PER_MINUTE": 1_000_000,
    "RATE_ANON_PER_MINUTE": 1_000_000,
    "RATE_ACCOUNTS_POST_PER_MINUTE": 1_000_000,
}
for _name, _rate in TEST_RATES.items():
    os.environ.setdefault(_name, str(_rate))


# The fast tier (`make test-fast`, ``-m fast``): every test that needs neither the database nor a server or
# worker, found from the fixtures it uses (pytest-django blocks the database for any other test, so a test
# marked here cannot reach it unnoticed), unless it is marked ``slow``: seconds of work without the
# database (a model fitted on real data, Django started in a subprocess). These files are slow as a whole
# (their module fixtures); a new slow test says so itself with ``@pytest.mark.slow``.
NEEDS_DATABASE = {"django_db_setup", "db", "transactional_db", "live_server"}
SLOW_FILES = {
    "tests/edge/test_security_headers.py",  # manage.py check --deploy and the TLS settings in subprocesses
    "tests/ingestion/test_sm_basin_readers.py",  # every real ASCAT/ERS cell, ISMN file and basin table
    "tests/products/test_chunked.py",  # global grids on the real GLDAS land mask, worker processes
    "tests/products/test_et_basin_tc.py",  # triple collocation and the AutoML fusion over the real basins
    "tests/products/test_tws_rec.py",  # LightGBM reconstructions of the real basins
    "tests/subsets/test_writers_cf.py",  # cfchecker and the IOOS suites on every writer's answers
}

# pytest-xdist (`make test`: ``-n 2 --dist loadgroup``, see pytest_xdist_make_scheduler below) runs a file's
# tests on one worker, and the files of an ``xdist_group`` together. Files that share an expensive fixture of
# a wider scope than a module are grouped here by that fixture: the products ``published`` makes (minutes of
# generation; tests/subsets/test_answers_cf.py also needs them to be the latest versions of their datasets)
# and the attack package's grid and server. A test file may name its group itself:
# ``pytestmark = pytest.mark.xdist_group("name")``.
SHARED_FIXTURE_GROUPS = {"published": "published-products", "attack_grid": "attack", "attack_url": "attack"}


def _test_file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


@pytest.hookimpl(tryfirst=True)  # before ``-m`` selects and before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    groups: dict[str, str] = {}
    config.stash[ET_FILES] = set(READS_SESSION_ET)
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if "et_run" in names:
            config.stash[ET_FILES].add(_test_file(item.nodeid))
        if _test_file(item.nodeid) in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
        if NEEDS_DATABASE.isdisjoint(names) and not any(
            item.get_closest_marker(name) for name in ("django_db", "worker", "browser", "slow")
        ):
            item.add_marker(pytest.mark.fast)
        for fixture, group in SHARED_FIXTURE_GROUPS.items():
            if fixture in names:
                groups.setdefault(_test_file(item.nodeid), group)
    for item in items:
        group = groups.get(_test_file(item.nodeid))
        if group and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` (and ``loadfile``) as this suite needs it.

    A test file is one unit of work (its module fixtures are made once), the tests of an ``xdist_group`` one
    unit whatever their files (xdist's own loadgroup sends every other test alone, and a module's fixtures to
    both workers), and the units go out in the order of the serial run: each worker runs its units in that
    order. Tests commit session state (product versions, the synthetic grids' version numbers) that later
    files of the serial run expect (tests/catalog/test_pages.py: a dataset without versions before
    tests/products publishes it); a worker that ran a later file first would break them. Other ``--dist``
    modes are xdist's own.
    """
    if config.getvalue("dist") not in ("loadgroup", "loadfile"):
        return None
    from xdist.scheduler import LoadScopeScheduling  # here: pytest-xdist is an optional plugin (optionalhook)

    class FilesAndGroupsInOrder(LoadScopeScheduling):
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            if nodeid.rfind("@") > nodeid.rfind("]"):  # the group xdist appends under loadgroup
                return "group " + nodeid.rsplit("@", 1)[-1]
            return _test_file(nodeid)

        def _assign_work_unit(self, node) -> None:
            if not self.ordered:  # the first call: the work queue is complete (xdist sorts it by size)
                self.ordered = True
                position = {nodeid: i for i, nodeid in enumerate(self.collection)}
                for scope in sorted(self.workqueue, key=lambda scope: min(map(position.get, self.workqueue[scope]))):
                    self.workqueue.move_to_end(scope)
            super()._assign_work_unit(node)

    return FilesAndGroupsInOrder(config, log)


@pytest.fixture(scope="session", autouse=True)
def isolated_cache():
    """The cache under this session's own prefix, and high rates (unless set in the environment)."""
    caches = {name: dict(conf, KEY_PREFIX=CACHE_KEY_PREFIX) for name, conf in settings.CACHES.items()}
    override = override_settings(CACHES=caches, **{name: int(os.environ[name]) for name in TEST_RATES})
    override.enable()
    yield CACHE_KEY_PREFIX
    override.disable()


# Tests publish to their own Redis database so that a worker started by `make run` never sees them
# (TEST_BROKER_URL: another database, for two test runs side by side). Under pytest-xdist each worker
# process has a Redis server of its own as its broker (same database number, a free port): a Celery worker
# started by one xdist worker (on its test database) must never take a task another one published.
TEST_BROKER_URL = os.environ.get("TEST_BROKER_URL", "redis://127.0.0.1:6379/15")


@contextmanager
def redis_server(folder: Path, attempts: int = 3):
    """A Redis server of its own (``redis-server``, no persistence) on a free loopback port; yields the port.

    Another port is tried when the server stops at once (another process took the port in between).
    """
    assert shutil.which("redis-server"), "redis-server is needed (make setup installs it)"
    for _ in range(attempts):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(folder),
                "--logfile",
                str(folder / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
        )
        client, deadline, ready = redis.Redis(port=port), time.monotonic() + 20, False
        while not ready and proc.poll() is None and time.monotonic() < deadline:
            try:
                ready = client.ping()
            except redis.ConnectionError:
                time.sleep(0.05)
        client.close()
        if ready:
            break
        proc.kill()
        proc.wait()
    else:
        raise RuntimeError(f"redis-server did not start (see {folder / 'redis.log'})")
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session", autouse=True)
def test_broker(tmp_path_factory):
    """The broker URL of this session: TEST_BROKER_URL, or under pytest-xdist its database on a Redis server
    of this worker's own."""
    with ExitStack() as stack:
        url = TEST_BROKER_URL
        if XDIST_WORKER:
            port = stack.enter_context(redis_server(tmp_path_factory.mktemp("broker")))
            url = f"redis://127.0.0.1:{port}{urlsplit(TEST_BROKER_URL).path or '/0'}"
        settings.CELERY_BROKER_URL = url
        app.conf.broker_url = url
        yield url


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


def session_needs_et(session: pytest.Session) -> bool:
    """Whether a test this session runs reads the published ET version (see :data:`READS_SESSION_ET`)."""
    files = session.config.stash.get(ET_FILES, READS_SESSION_ET)
    return any(_test_file(item.nodeid) in files for item in session.items)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker, shared_data, catalog_dir, session_data_root, request):
    with django_db_blocker.unblock():
        # pytest-django makes the test database only when a selected test is marked django_db (or asks for db):
        # tests that only use servers or workers (service_env, live_grid), run alone, get it here, so that
        # nothing below ever writes to the configured database (`make run`'s)
        if connection.settings_dict["NAME"] != connection.creation._get_test_db_name():
            made = setup_databases(verbosity=0, interactive=False, aliases={"default"})

            def drop():
                with django_db_blocker.unblock():
                    teardown_databases(made, verbosity=0)

            request.addfinalizer(drop)
        for path in sorted(catalog_dir.glob("*.json")):
            import_records(path)
        ingest("cardamom", shared_data / "cardamom_fluxval")
        ingest("ecostress", shared_data / "ecov002_calval_tables")
        ingest("basins", [shared_data / "lehmannfa_basin_water_budget" / f for f in BASIN_FILES])
        if session_needs_et(request.session):
            run = execute_run(create_run("et_fusion", parameters=et_test_parameters()).id)
            assert run.status == "succeeded", run.error


def et_test_parameters() -> dict:
    """A small, quick et_fusion run: FEW_SITES, the first basins, the ECOSTRESS towers with most samples."""
    basins = sorted(Station.objects.filter(network="GRDC-MRB").values_list("code", flat=True))[:FEW_BASINS]
    towers = list(
        Station.objects.filter(network="AmeriFlux", observations__variable="et_stic")
        .annotate(n=Count("observations"))
        .order_by("-n", "code")
        .values_list("code", flat=True)[:FEW_TOWERS]
    )
    return {
        "sites": FEW_SITES,
        "n_splits": 3,
        "basins": basins,
        "basin_splits": 3,
        "fusion_sites": towers,
        "fusion_splits": 3,
        "fusion_max_iter": 3,
    }


@pytest.fixture
def et_run(django_db_setup):
    """The ET GenerationRun published by the session setup."""
    return GenerationRun.objects.filter(product="et_fusion", status="succeeded").earliest("created_at")


@pytest.fixture(scope="session")
def service_env(django_db_setup, django_db_blocker, test_broker) -> dict:
    """Environment for a worker or web server process on the session's test database.

    At the end of the session, any connection such a process left open to the test database (a
    server or worker that outlived its test) is recorded in ``var/test-leftover-connections.log``
    and closed, so that the database can be dropped.
    """
    db = connection.settings_dict
    yield dict(
        os.environ,
        DATABASE_URL=f"postgis://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        CELERY_BROKER_URL=test_broker,
        DATA_ROOT=str(settings.DATA_ROOT),
        SHARED_DATA_DIR=str(settings.SHARED_DATA_DIR),
        DEBUG="false",
        SUBSET_JOB_HEARTBEAT_SECONDS="0.5",
    )
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, application_name, client_port, state, backend_start, left(query, 120) "
            "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        left = cursor.fetchall()
        if left:
            record = Path(settings.BASE_DIR) / "var" / "test-leftover-connections.log"
            record.parent.mkdir(exist_ok=True)
            with record.open("a") as out:
                out.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {db['NAME']}: {left}\n")
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


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
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "portal.wsgi",
            "-c",
            "portal/gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT if out else None,
    )
    deadline = time.monotonic() + 120  # two xdist workers and their servers start side by side
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
    returns the process (``.log_path`` is its log); every one still running is stopped after the test.

    A worker consumes every queue of ``settings.WORKER_QUEUES`` (generation, subsets, housekeeping, default),
    or only ``start_worker(queues=[...])`` (names as in the settings)."""
    procs = []

    def start(queues=None):
        names = queues or [options["queue"] for options in settings.WORKER_QUEUES.values()]
        path = tmp_path / f"worker{len(procs)}.log"
        log = path.open("w")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "--pool=solo",
                "--loglevel=INFO",
                "--without-heartbeat",
                "--without-mingle",
                "--without-gossip",
                "--queues",
                ",".join(names),
            ],
            cwd=settings.BASE_DIR,
            env=service_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
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
    user = get_user_model().objects.create_user(
        username=extra.pop("username", email), email=email, password=password, **extra
    )
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
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def page(portal_url, monkeypatch):
    """A headless Chromium page (Debian's ``chromium``) on the portal's live server.

    ``page.problems`` collects console errors, page errors, failed requests and any request leaving
    the portal (assets come from the portal itself); ``window.cspViolations`` in the page collects
    Content-Security-Policy violations (the ``securitypolicyviolation`` event).
    """
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
        page.on(
            "request",
            lambda r: r.url.startswith(portal_url)
            or r.url.startswith(("data:", "blob:"))
            or page.problems.append(f"external request: {r.url}"),
        )
        page.add_init_script(
            "window.cspViolations = []; document.addEventListener('securitypolicyviolation', "
            "e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
        )
        yield page
        browser.close()
