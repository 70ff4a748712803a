"""The issue's "done when", end to end: a new user signs up in headless Chromium (Debian's
/usr/bin/chromium, driven by Playwright), opens the verification link from the mail, applies for a
protected dataset, a data manager approves it in the admin (in the browser), the user creates a
token on the profile and reads it from the page; then SCRIPTS download with it: ``curl`` with
``Authorization: Bearer`` (a whole published file and a subset) and ``xarray`` opening the
OPeNDAP URL with the token as the password of HTTP Basic. Anonymous clients are refused the same URLs.

The server is a real gunicorn on the session's test database whose mail goes to files in a
folder of the test's own (Django's file backend, as ``make run`` keeps it under var/mail); the
dataset's share type and the accounts are COMMITTED for it and undone afterwards.
"""

from __future__ import annotations

import email
import email.policy
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from django.conf import settings
from playwright.sync_api import sync_playwright

from portal.catalog.models import Dataset
from tests.grids import FT, grid_values

from ..conftest import CHROMIUM, CHROMIUM_ARGS, make_user, web_server

pytestmark = pytest.mark.browser

NEWCOMER = "e2e.newcomer@example.org"
MANAGER = "e2e.manager@example.org"
PASSWORD = "a-l0ng-pass-phrase"


@pytest.fixture
def mailbox(tmp_path) -> Path:
    path = tmp_path / "mail"
    path.mkdir()
    return path


@pytest.fixture
def server(service_env, mailbox):
    """A gunicorn of our own whose mail goes to ``mailbox``."""
    env = dict(
        service_env, EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend", EMAIL_FILE_PATH=str(mailbox)
    )
    with web_server(env) as url:
        yield url


@pytest.fixture
def protected(live_grid, django_db_blocker, monkeypatch):
    """FT made protected and a data manager, COMMITTED; both, and the account signed up, undone afterwards."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the ORM beside Playwright's event loop
    with django_db_blocker.unblock():
        before = Dataset.objects.get(pk=FT).share_type
        Dataset.objects.filter(pk=FT).update(share_type=Dataset.ShareType.PROTECTED)
        manager = make_user(MANAGER, PASSWORD, is_staff=True, is_superuser=True, username="e2e-manager")
    try:
        yield live_grid
    finally:
        with django_db_blocker.unblock():
            Dataset.objects.filter(pk=FT).update(share_type=before)
            manager.delete()
            from django.contrib.auth import get_user_model

            get_user_model().objects.filter(email=NEWCOMER).delete()


def mails_to(mailbox: Path, address: str) -> list[str]:
    """The messages the file backend wrote for ``address``, as "subject\n\nbody" (decoded; each file holds
    one or more messages, '-' * 79 apart)."""
    found = []
    for path in sorted(mailbox.iterdir()):
        for raw in path.read_text().split("-" * 79):
            message = email.message_from_string(raw.strip(), policy=email.policy.default)
            if address in str(message["To"] or ""):
                found.append(f"{message['Subject']}\n\n{message.get_content()}")
    return found


def curl(url: str, out: Path, token: str | None = None) -> int:
    """``curl`` as a user's script runs it; returns the HTTP status."""
    command = ["curl", "-sS", "-o", str(out), "-w", "%{http_code}"]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    done = subprocess.run([*command, url], capture_output=True, text=True, timeout=120, check=True)
    return int(done.stdout)


OPENDAP_SCRIPT = """
import sys, xarray as xr
with xr.open_dataset(sys.argv[1], engine="netcdf4") as ds:
    print(ds.sizes["time"], ds.sizes["lat"], ds.sizes["lon"], float(ds["sm"].isel(time=2, lat=200, lon=300)))
"""


def test_sign_up_verify_apply_approve_and_download_with_a_token_from_a_script(server, mailbox, protected, tmp_path):
    version = protected
    assert shutil.which(CHROMIUM), "Debian chromium is needed (make setup installs it)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        problems = []
        user = browser.new_context().new_page()
        user.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        user.on(
            "console",
            lambda m: m.type == "error"
            and "Failed to load resource" not in m.text
            and problems.append(f"console: {m.text}"),
        )  # (a refused estimate before approval is a 403)

        # sign up
        user.goto(f"{server}/")
        user.click("a.nav-signup")
        user.fill("input[name=email]", NEWCOMER)
        user.fill("input[name=password1]", PASSWORD)
        user.fill("input[name=password2]", PASSWORD)
        with user.expect_navigation():
            user.click("form.signup button[type=submit]")
        assert user.url.endswith("/accounts/confirm-email/")

        # the verification link from the mail, confirmed by the button its page shows
        [message] = mails_to(mailbox, NEWCOMER)
        link = re.search(r"(http://127\.0\.0\.1:\d+/accounts/confirm-email/\S+/)", message).group(1)
        user.goto(link)
        with user.expect_navigation():
            user.click("main form button[type=submit]")
        if user.locator("form.login").count():
            user.fill("input[name=login]", NEWCOMER)
            user.fill("input[name=password]", PASSWORD)
            with user.expect_navigation():
                user.click("form.login button[type=submit]")
        assert user.locator("a.nav-profile").count() == 1  # signed in

        # apply on the dataset page
        user.goto(f"{server}/datasets/{FT}/")
        assert "protected" in user.inner_text("#access")
        user.fill("#access textarea[name=purpose]", "Closing the water balance of the Yellow River basin")
        user.fill("#access input[name=institution]", "Institute of Hydrology")
        with user.expect_navigation():
            user.click("#access form.apply-form button[type=submit]")
        assert "awaits a data manager" in user.inner_text("#access")
        assert any("Yellow River" in m for m in mails_to(mailbox, MANAGER))

        # a data manager approves it in the admin
        staff = browser.new_context().new_page()
        staff.goto(f"{server}/accounts/login/")
        staff.fill("input[name=login]", MANAGER)
        staff.fill("input[name=password]", PASSWORD)
        with staff.expect_navigation():
            staff.click("form.login button[type=submit]")
        staff.goto(f"{server}/admin/accounts/accessapplication/?status__exact=pending")
        row = staff.locator("#result_list tr", has_text=NEWCOMER)
        row.locator("input[name=_selected_action]").check()
        staff.select_option("select[name=action]", "approve")
        with staff.expect_navigation():
            staff.click("button[name=index]")
        assert "1 application(s) approved" in staff.inner_text(".messagelist")
        decided = [m for m in mails_to(mailbox, NEWCOMER) if "Access approved" in m]
        assert len(decided) == 1 and f"/datasets/{FT}/" in decided[0]

        # the user creates a token on the profile and reads it from the page, once
        user.goto(f"{server}/accounts/profile/")
        assert "approved" in user.inner_text("#applications")
        user.fill("input[name=token-name]", "analysis script")
        assert user.is_checked("input[name=token-scopes][value=download]")
        with user.expect_navigation():
            user.click("form.token-form button[type=submit]")
        token = user.inner_text("#new-token-value").strip()
        assert re.fullmatch(r"hp_[0-9a-f]{12}_[\w-]{43}", token)
        user.reload()
        assert user.locator("#new-token-value").count() == 0 and token not in user.content()
        assert problems == []
        browser.close()

    # scripts: curl with Bearer, a whole published file and a subset
    whole = f"{server}/datasets/{FT}/versions/{version.number}/files/grid.nc"
    subset = f"{server}/api/datasets/{FT}/subset/?bbox=10,20,14,23&time=2015-01-02/2015-01-03&variables=sm"
    assert curl(whole, tmp_path / "whole.nc", token) == 200
    published = Path(settings.DATA_ROOT) / version.directory / "grid.nc"
    assert (tmp_path / "whole.nc").read_bytes() == published.read_bytes()
    assert curl(subset, tmp_path / "subset.nc", token) == 200
    with xr.open_dataset(tmp_path / "subset.nc") as part:
        assert list(part["lon"].values) == [10.25 + 0.5 * i for i in range(8)] and part.sizes["time"] == 2
        lat, lon = np.meshgrid(part["lat"].values, part["lon"].values, indexing="ij")
        np.testing.assert_allclose(part["sm"].isel(time=0).values, grid_values(1, lat, lon), rtol=1e-6)

    # xarray through OPeNDAP, the token as the password of HTTP Basic in the URL
    dap = f"{server}/opendap/{FT}/v{version.number}/grid.nc".replace("://", f"://token:{token}@")
    done = subprocess.run([sys.executable, "-c", OPENDAP_SCRIPT, dap], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    sizes_and_value = done.stdout.split()
    assert sizes_and_value[:3] == ["20", "360", "720"]
    assert float(sizes_and_value[3]) == pytest.approx(float(grid_values(2, -90 + 0.25 + 0.5 * 200, -180 + 0.25 + 150)))

    # anonymous: 401 for scripts (a browser asking for HTML is sent to the login page instead)
    assert curl(subset, tmp_path / "anon.json", None) == 401
    assert curl(f"{server}/opendap/{FT}/v{version.number}/grid.nc.dds", tmp_path / "anon.dds", None) == 401
    assert curl(whole, tmp_path / "anon.html", None) == 401
    assert (tmp_path / "anon.html").read_bytes() != (tmp_path / "whole.nc").read_bytes()
    denied = subprocess.run(
        [sys.executable, "-c", OPENDAP_SCRIPT, dap.replace(f"token:{token}@", "")],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert denied.returncode != 0


@pytest.mark.django_db  # (also makes pytest-django create the test database when this module runs alone)
def test_an_anonymous_visitor_of_a_protected_dataset_is_invited_to_sign_in(client):
    Dataset.objects.filter(pk=FT).update(share_type=Dataset.ShareType.PROTECTED)
    page = client.get(f"/datasets/{FT}/").content.decode()
    assert 'class="access-panel need-login"' in page and 'href="/accounts/signup/?next=' in page
    assert 'action="/accounts/apply/' not in page
