"""A real gunicorn whose OAI-PMH lists come in pages of two records (five records: three pages)."""

from __future__ import annotations

import pytest

from tests.conftest import web_server

PAGE_SIZE = 2
REPOSITORY = "hydro.example.org"


@pytest.fixture(scope="module")
def oai_url(service_env):
    env = dict(
        service_env,
        OAI_PAGE_SIZE=str(PAGE_SIZE),
        OAI_REPOSITORY_IDENTIFIER=REPOSITORY,
        PORTAL_CONTACT_EMAIL="data@hydro.example.org",
    )
    with web_server(env) as url:
        yield f"{url}/oai/"
