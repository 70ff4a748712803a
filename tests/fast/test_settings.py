"""The typed environment helpers of portal/settings.py (no database): bad values name the variable."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal import settings as portal_settings


@pytest.mark.parametrize(
    "url",
    [
        "postgres://alice:secret@db.example.org:5433/hydro",
        "postgresql://alice:secret@db.example.org:5433/hydro",
        "postgis://alice:secret@db.example.org:5433/hydro",
    ],
)
def test_a_postgres_or_postgresql_url_uses_the_postgis_backend(monkeypatch, url):
    monkeypatch.setenv("TEST_DATABASE_URL", url)
    db = portal_settings.envdatabase("TEST_DATABASE_URL", "postgis://unused/unused", conn_max_age=60)
    assert db["ENGINE"] == "django.contrib.gis.db.backends.postgis"
    assert (db["USER"], db["PASSWORD"], db["HOST"], db["PORT"], db["NAME"]) == (
        "alice",
        "secret",
        "db.example.org",
        5433,
        "hydro",
    )
    assert db["CONN_MAX_AGE"] == 60


def test_a_url_of_another_database_names_the_variable_and_the_schemes(monkeypatch):
    monkeypatch.setenv("TEST_DATABASE_URL", "mysql://alice@db.example.org/hydro")
    with pytest.raises(
        ImproperlyConfigured, match=r"TEST_DATABASE_URL='mysql://.*postgis://, postgres:// or postgresql://"
    ):
        portal_settings.envdatabase("TEST_DATABASE_URL", "postgis://unused/unused")


def test_the_number_helpers_read_the_variable_or_the_default(monkeypatch):
    monkeypatch.setenv("TEST_SETTING", "2.5")
    assert portal_settings.envfloat("TEST_SETTING", "1") == 2.5
    monkeypatch.setenv("TEST_SETTING", "7")
    assert portal_settings.envint("TEST_SETTING", "1") == 7 and portal_settings.envfloat("TEST_SETTING", "1") == 7.0
    monkeypatch.delenv("TEST_SETTING")
    assert portal_settings.envint("TEST_SETTING", "3") == 3 and portal_settings.envfloat("TEST_SETTING", "0.5") == 0.5


@pytest.mark.parametrize(
    "helper, value, expected",
    [
        ("envint", "1.5", "an integer"),
        ("envint", "many", "an integer"),
        ("envfloat", "fast", "a number"),
        ("envbool", "maybe", "a boolean"),
    ],
)
def test_a_bad_value_names_the_variable_and_what_was_expected(monkeypatch, helper, value, expected):
    monkeypatch.setenv("SUBSET_JOB_TTL_HOURS", value)
    with pytest.raises(ImproperlyConfigured, match=rf"SUBSET_JOB_TTL_HOURS='{value}': expected {expected}"):
        getattr(portal_settings, helper)("SUBSET_JOB_TTL_HOURS", "1")
