"""Fixtures of the attack tests: a published SYNTHETIC grid, committed, and a real gunicorn on the session's
test database with the rate limits and quotas raised (so that 429 answers do not hide what is tested)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import web_server
from tests.grids import FT, committed_grid

NO_LIMITS = {
    "RATE_USER_PER_MINUTE": "1000000",
    "RATE_ANON_PER_MINUTE": "1000000",
    "QUOTA_USER_CONCURRENT_JOBS": "1000000",
    "QUOTA_ANON_CONCURRENT_JOBS": "1000000",
    "QUOTA_USER_BYTES_PER_DAY": str(2**50),
    "QUOTA_ANON_BYTES_PER_DAY": str(2**50),
}


@pytest.fixture(autouse=True)
def _no_limits(settings):
    for name, value in NO_LIMITS.items():
        setattr(settings, name, int(value))


@pytest.fixture(scope="package")
def attack_grid(django_db_setup, django_db_blocker):
    """A SYNTHETIC 1-degree global grid of 5 days published (committed) as a new version of :data:`FT`;
    deleted once tests/attack is done (package scope: later tests see FT as before), with the jobs and download
    logs the servers wrote meanwhile (tests run
    in transactions rolled back, so what a real server committed is removed here)."""
    with committed_grid(django_db_blocker, FT, days=5, step=1.0) as version:
        yield version


@pytest.fixture(scope="package")
def attack_env(service_env) -> dict:
    return dict(service_env, **NO_LIMITS)


@pytest.fixture(scope="package")
def attack_url(attack_env, attack_grid):
    """A real gunicorn (2 workers, as `make run`) on the session's test database, limits raised."""
    with web_server(attack_env) as url:
        yield url


def tmp_files() -> set[Path]:
    """The subset service's temporary answer files (``DATA_ROOT/tmp``: services.answer, stations.write_temporary)."""
    return set((Path(settings.DATA_ROOT) / "tmp").glob("*"))
