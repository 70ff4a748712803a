"""django-axes locks a user name out after AXES_FAILURE_LIMIT wrong passwords: login page, admin and HTTP Basic.

The limit is lowered to 3 here, below allauth's own limit of failed logins (5 per address in 5
minutes), so the refusal seen is axes' and not allauth's.
"""

from __future__ import annotations

import base64

import pytest

from tests.conftest import make_user

from .test_rate_limits import fresh_ip

pytestmark = pytest.mark.django_db
PASSWORD = "pa55-word-ok"


@pytest.fixture(autouse=True)
def limit_3(settings):
    settings.AXES_FAILURE_LIMIT = 3


def _logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_the_login_page_refuses_even_the_right_password_after_the_failures(client):
    make_user("victim@example.org")
    make_user("bystander@example.org")
    ip = fresh_ip()
    for _ in range(3):
        response = client.post("/accounts/login/", {"login": "victim@example.org", "password": "guess"}, REMOTE_ADDR=ip)
        assert response.status_code in (200, 429)
    response = client.post("/accounts/login/", {"login": "Victim@Example.org", "password": PASSWORD}, REMOTE_ADDR=ip)
    assert response.status_code == 429 and b"locked" in response.content.lower()
    assert not _logged_in(client)
    # another user from the same address is not locked
    response = client.post("/accounts/login/", {"login": "bystander@example.org", "password": PASSWORD}, REMOTE_ADDR=ip)
    assert response.status_code == 302 and _logged_in(client)


def test_the_admin_login_locks_out_too(client):
    make_user("staff-lock@example.org", is_staff=True, username="staff-lock")
    ip = fresh_ip()
    for _ in range(3):
        client.post("/admin/login/", {"username": "staff-lock", "password": "guess"}, REMOTE_ADDR=ip)
    response = client.post("/admin/login/", {"username": "staff-lock", "password": PASSWORD}, REMOTE_ADDR=ip)
    assert response.status_code == 429 and not _logged_in(client)


def test_a_success_before_the_limit_forgets_the_failures(client):
    make_user("forgetful@example.org")
    ip = fresh_ip()
    for _ in range(2):
        client.post("/accounts/login/", {"login": "forgetful@example.org", "password": "guess"}, REMOTE_ADDR=ip)
    assert (
        client.post(
            "/accounts/login/", {"login": "forgetful@example.org", "password": PASSWORD}, REMOTE_ADDR=ip
        ).status_code
        == 302
    )
    client.logout()
    for _ in range(2):
        client.post("/accounts/login/", {"login": "forgetful@example.org", "password": "guess"}, REMOTE_ADDR=ip)
    assert (
        client.post(
            "/accounts/login/", {"login": "forgetful@example.org", "password": PASSWORD}, REMOTE_ADDR=ip
        ).status_code
        == 302
    )


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize("url", ["/api/datasets/", "/opendap/no-such/v1/x.nc.das"])
def test_http_basic_locks_out_without_a_server_error(client, url):
    make_user("script@example.org")
    make_user("other-script@example.org")
    ip = fresh_ip()
    for _ in range(3):
        response = client.get(url, REMOTE_ADDR=ip, HTTP_AUTHORIZATION=_basic("script@example.org", "guess"))
        assert response.status_code == 401 and "password" in response.json()["detail"]
    response = client.get(url, REMOTE_ADDR=ip, HTTP_AUTHORIZATION=_basic("script@example.org", PASSWORD))
    assert response.status_code in (401, 403, 429) and response.json()["detail"]
    response = client.get(url, REMOTE_ADDR=ip, HTTP_AUTHORIZATION=_basic("other-script@example.org", PASSWORD))
    assert response.status_code not in (401, 403, 429, 500)
