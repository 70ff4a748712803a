"""Rate limits per front door and per user or anonymous client, counted in the real Redis cache.

The session's rates are high (tests/conftest.py); each test lowers them and uses clients of its own
(an IP address, users) so that counts of other tests never reach it.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid

import pytest

from portal import limits
from portal.catalog import search
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

_ips = itertools.count(1)
DOORS = {  # a cheap path per front door; limits are counted before the view, whatever it answers
    "api": "/api/datasets/",
    "edr": "/api/edr/",
    "opendap": "/opendap/no-such-dataset/v1/x.nc.das",
    "files": "/datasets/no-such-dataset/versions/1/files/x.nc",
    "jobs": f"/jobs/{uuid.uuid4()}/",
    "accounts": "/accounts/login/",
    "pages": "/datasets/",
}
JSON_DOORS = {"api", "edr", "opendap"}


def fresh_ip(margin: float = 20) -> str:
    """An address no other test used in this session (a client of its own) whose one-minute window has
    ``margin`` seconds left at least (windows are staggered per client: choosing one costs no wait)."""
    from django_ratelimit.core import _get_window

    while True:
        n = next(_ips) + uuid.uuid4().int % 50_000
        ip = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
        if _get_window(f"ip:{ip}", 60) - time.time() >= margin + 1:
            return ip


def fresh_window(*keys: str, margin: float = 20) -> None:
    """Wait, if need be, until each client's one-minute window has ``margin`` seconds left at least.

    Windows are fixed (django-ratelimit staggers them per client): a count that starts just before a
    window ends is reset half-way, and the test would see fewer requests than it sent.
    """
    from django_ratelimit.core import _get_window

    for key in keys:
        left = _get_window(key, 60) - time.time()
        if left < margin:  # the window named by its end second still holds that second: wait past it
            time.sleep(left + 1.2)


def token_for(user) -> str:
    from portal.accounts.tokens import issue

    return issue(user, "edge test")[1]


@pytest.fixture
def low_rates(settings):
    settings.RATE_ANON_PER_MINUTE = 3
    settings.RATE_USER_PER_MINUTE = 4
    settings.RATE_ACCOUNTS_POST_PER_MINUTE = 2
    return settings


def test_front_doors_are_classified_by_path():
    assert {door: limits.front_door(path) for door, path in DOORS.items()} == {door: door for door in DOORS}
    assert limits.front_door("/admin/login/") == "accounts"
    assert limits.front_door("/admin/catalog/") == "pages"
    assert limits.front_door("/api/edr") == "edr" and limits.front_door("/api/edrx/") == "api"
    assert limits.front_door("/wms/") == "api" and limits.front_door("/wmsx/") == "pages"
    assert limits.front_door("/health/") is None and limits.front_door("/static/css/portal.css") is None
    assert limits.front_door("/datasets/x/series.json") == "pages"


@pytest.mark.parametrize("door", sorted(DOORS))
def test_an_anonymous_client_over_the_rate_of_a_door_gets_429_with_retry_after(client, low_rates, door):
    ip = fresh_ip()
    fresh_window(f"ip:{ip}")
    for i in range(3):
        response = client.get(DOORS[door], REMOTE_ADDR=ip)
        assert response.status_code != 429, (door, i)
        assert response["X-RateLimit-Limit"] == "3" and response["X-RateLimit-Remaining"] == str(2 - i)
    response = client.get(DOORS[door], REMOTE_ADDR=ip)
    assert response.status_code == 429
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 60
    if door in JSON_DOORS:
        body = response.json()
        assert body["limit"] == 3 and body["retry_after"] == retry_after and door in body["detail"]
    else:
        assert response["Content-Type"].startswith("text/html")
        assert b"Too many requests" in response.content and f"{door} front door".encode() in response.content
    # other doors and other clients are counted apart
    other = "pages" if door != "pages" else "api"
    assert client.get(DOORS[other], REMOTE_ADDR=ip).status_code != 429
    assert client.get(DOORS[door], REMOTE_ADDR=fresh_ip()).status_code != 429


def test_token_users_are_counted_as_themselves_not_by_address(client, low_rates):
    ip = fresh_ip()
    alice, bob = make_user("alice-rate@example.org"), make_user("bob-rate@example.org")
    alice_auth, bob_auth = f"Bearer {token_for(alice)}", f"Bearer {token_for(bob)}"
    fresh_window(f"user:{alice.pk}", f"user:{bob.pk}", f"ip:{ip}")
    for _ in range(4):
        assert client.get("/api/datasets/", REMOTE_ADDR=ip, HTTP_AUTHORIZATION=alice_auth).status_code == 200
    response = client.get("/api/datasets/", REMOTE_ADDR=ip, HTTP_AUTHORIZATION=alice_auth)
    assert response.status_code == 429 and response.json()["limit"] == 4
    # the same address: Bob (token) and an anonymous client are not blocked by Alice's exhaustion
    response = client.get("/api/datasets/", REMOTE_ADDR=ip, HTTP_AUTHORIZATION=bob_auth)
    assert response.status_code == 200 and response["X-RateLimit-Limit"] == "4"
    response = client.get("/api/datasets/", REMOTE_ADDR=ip)
    assert response.status_code == 200 and response["X-RateLimit-Limit"] == "3"
    # Alice from another address is still Alice
    assert client.get("/api/datasets/", REMOTE_ADDR=fresh_ip(), HTTP_AUTHORIZATION=alice_auth).status_code == 429


def test_a_session_user_is_counted_as_the_user(client, low_rates):
    user = make_user("session-rate@example.org")
    client.force_login(user)
    fresh_window(f"user:{user.pk}")
    for ip in (fresh_ip() for _ in range(4)):  # four addresses, one user
        assert client.get("/datasets/", REMOTE_ADDR=ip).status_code == 200
    assert client.get("/datasets/", REMOTE_ADDR=fresh_ip()).status_code == 429


def test_a_quota_row_raises_a_users_rate(client, low_rates):
    from portal.accounts.models import Quota

    user = make_user("fast@example.org")
    Quota.objects.create(user=user, requests_per_minute=7)
    auth = f"Bearer {token_for(user)}"
    fresh_window(f"user:{user.pk}")
    statuses = [client.get("/api/datasets/", HTTP_AUTHORIZATION=auth).status_code for _ in range(8)]
    assert statuses == [200] * 7 + [429]
    assert limits.limits_for(user).requests_per_minute == 7


def test_posts_to_the_login_have_a_stricter_rate_than_its_page(client, low_rates):
    ip = fresh_ip(margin=40)  # a login POST hashes a password: seconds each on a busy machine
    fresh_window(f"ip:{ip}", margin=40)  # (no wait: the address was chosen with that margin)
    for _ in range(2):
        assert (
            client.post("/accounts/login/", {"login": "x@example.org", "password": "wrong"}, REMOTE_ADDR=ip).status_code
            == 200
        )  # the form again, with its error
    response = client.post("/accounts/login/", {"login": "x@example.org", "password": "wrong"}, REMOTE_ADDR=ip)
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert client.get("/accounts/login/", REMOTE_ADDR=ip).status_code == 200  # reading the page: its own count
    response = client.post("/admin/login/", {"username": "x", "password": "wrong"}, REMOTE_ADDR=ip)
    assert response.status_code == 429  # the admin's login counts with the portal's: one count of guesses
    assert (
        client.post("/admin/login/", {"username": "x", "password": "wrong"}, REMOTE_ADDR=fresh_ip()).status_code == 200
    )


def test_health_and_static_files_are_never_limited(client, low_rates):
    ip = fresh_ip()
    for _ in range(5):
        response = client.get("/health/", REMOTE_ADDR=ip)
        assert response.status_code == 200 and "X-RateLimit-Limit" not in response


def test_the_limiter_fails_open_when_the_cache_is_down(client, low_rates, monkeypatch, caplog):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(limits, "_cache_down_until", 0.0)
    monkeypatch.setattr(search, "_cache_down_until", 0.0)  # the search's cache fails open too (restored after)
    low_rates.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/1",
            "KEY_PREFIX": "down",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    ip = fresh_ip()
    with caplog.at_level(logging.WARNING, logger="portal.limits"):
        statuses = [client.get("/api/datasets/", REMOTE_ADDR=ip).status_code for _ in range(5)]
    assert statuses == [200] * 5  # over the rate of 3, but nothing counts: served, not a 500
    warnings = [r for r in caplog.records if "rate limits are off" in r.getMessage()]
    assert len(warnings) == 1  # and the cache is not asked again for a while
    assert "ConnectionError" in warnings[0].getMessage()
    assert search._cache_down_until > 0  # the search answered from the database and stopped asking the cache
