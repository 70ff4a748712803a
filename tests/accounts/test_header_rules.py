"""What an Authorization header may do: read data with Basic, write with Bearer, never touch the account."""

from __future__ import annotations

import base64

import pytest
from allauth.account.models import EmailAddress
from django.test import Client

from portal.accounts.tokens import issue
from portal.subsets.models import SubsetJob
from tests.conftest import make_user
from tests.grids import FT

pytestmark = pytest.mark.django_db


def basic(email: str, password: str = "pa55-word-ok") -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{email}:{password}".encode()).decode()}


def test_a_token_cannot_change_its_account(verified_user):
    _, plain = issue(verified_user, "read only", ["read"], 7)
    script = Client(headers={"Authorization": f"Bearer {plain}"})
    response = script.post("/accounts/email/", {"email": "attacker@example.org", "action_add": ""})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]  # not signed in there
    assert not EmailAddress.objects.filter(email="attacker@example.org").exists()
    assert script.get("/admin/").status_code == 302  # the admin ignores the header too
    assert script.get("/accounts/profile/").status_code == 403  # and says why on the portal's own pages


def test_basic_reads_but_writes_need_a_bearer_token(grid_version):
    user = make_user("script@example.org")
    body = {"dataset": FT, "kind": "area", "params": {"bbox": "0,0,10,10"}}
    with_basic = Client(headers=basic(user.email))
    assert with_basic.get(f"/api/datasets/{FT}/").status_code == 200
    refused = with_basic.post("/api/jobs/", body, content_type="application/json")
    assert refused.status_code == 401 and "Bearer" in refused.json()["detail"]
    assert not SubsetJob.objects.filter(user=user).exists()
    _, plain = issue(user, "script", ["read", "download"], 7)
    created = Client(headers={"Authorization": f"Bearer {plain}"}).post(
        "/api/jobs/", body, content_type="application/json"
    )
    assert created.status_code == 201 and SubsetJob.objects.filter(user=user).count() == 1
