"""Accounts through Django's test client on the real database: sign-up, e-mail verification, login,
the profile's tokens, applications for protected data, the admin's decisions and their mails,
licence acceptance, the refusals of bad input, both languages.

The dataset is the subset tests' synthetic grid (``grid_version``, in the test's transaction),
its share type changed per test.
"""

from __future__ import annotations

import base64
import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.urls import reverse

from portal.accounts.models import AccessApplication, ApiToken, LicenceAcceptance
from portal.catalog.models import Dataset
from tests.grids import FT

from ..conftest import make_user

pytestmark = pytest.mark.django_db

PASSWORD = "pa55-word-ok"


def file_url(version) -> str:
    return f"/datasets/{FT}/versions/{version.number}/files/grid.nc"


def basic(email: str, password: str = PASSWORD) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{email}:{password}".encode()).decode()}


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def share(kind: str, **fields) -> Dataset:
    Dataset.objects.filter(pk=FT).update(share_type=kind, **fields)
    return Dataset.objects.get(pk=FT)


def page_text(response) -> str:
    return response.content.decode()


@pytest.fixture
def manager(db):
    """A data manager (staff) with an address: applications are mailed to them."""
    return make_user("manager@example.org", is_staff=True, is_superuser=True, username="manager")


# --------------------------------------------------------------------------- sign-up and verification


def test_sign_up_verify_and_log_in_then_download_login_access_data(client, grid_version):
    share(Dataset.ShareType.LOGIN)
    email = "new.researcher@example.org"
    response = client.post("/accounts/signup/", {"email": email, "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("account_email_verification_sent")
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [email]
    link = re.search(r"https?://testserver(/accounts/confirm-email/[^/\s]+/)", mail.outbox[0].body).group(1)

    # before verification: the password works over HTTP Basic, but login-access data is refused (verify)
    refused = client.get(file_url(grid_version), **basic(email))
    assert refused.status_code == 403 and refused.json()["need"] == "verify"
    assert client.post("/accounts/login/", {"login": email, "password": PASSWORD}).status_code == 302
    assert client.get(reverse("accounts:profile")).status_code == 302  # not signed in before verification

    confirm = client.get(link)
    assert confirm.status_code == 200 and email in page_text(confirm)
    assert not EmailAddress.objects.get(email=email).verified  # a GET confirms nothing
    assert client.post(link).status_code == 302
    assert EmailAddress.objects.get(email=email).verified

    client.logout()
    login = client.post("/accounts/login/", {"login": email, "password": PASSWORD})
    assert login.status_code == 302 and login["Location"] == reverse("accounts:profile")
    profile = client.get(reverse("accounts:profile"))
    assert profile.status_code == 200 and email in page_text(profile)
    assert client.get(file_url(grid_version)).status_code == 200
    assert client.get(file_url(grid_version), **basic(email)).status_code == 200


def test_the_pages_look_like_the_portal_and_the_nav_follows_the_session(client, verified_user):
    signup = page_text(client.get("/accounts/signup/"))
    assert 'href="/static/' in signup and 'class="site-header"' in signup  # the portal's layout
    assert 'class="account-form entrance signup"' in signup and "password2" in signup
    assert 'href="/accounts/login/"' in signup and 'href="/accounts/signup/"' in signup  # nav: sign in, sign up
    assert "style=" not in signup and not re.search(r"<script(?![^>]*\bsrc=)", signup)  # CSP: no inline code
    client.force_login(verified_user)
    home = page_text(client.get("/"))
    assert 'href="/accounts/profile/"' in home
    assert re.search(r'<form class="nav-logout" action="/accounts/logout/" method="post">', home)
    assert client.post("/accounts/logout/").status_code == 302
    assert 'href="/accounts/profile/"' not in page_text(client.get("/"))
    for path in ("/accounts/password/reset/", "/accounts/login/"):
        assert 'class="site-header"' in page_text(client.get(path))


def test_password_reset_mails_a_link_that_sets_a_new_password(client, verified_user):
    assert client.post("/accounts/password/reset/", {"email": verified_user.email}).status_code == 302
    link = re.search(r"https?://testserver(/accounts/password/reset/key/\S+/)", mail.outbox[-1].body).group(1)
    form = client.get(link, follow=True)
    assert form.status_code == 200
    done = client.post(
        form.redirect_chain[-1][0] if form.redirect_chain else link,
        {"password1": "an0ther-pass-word", "password2": "an0ther-pass-word"},
    )
    assert done.status_code == 302
    login = client.post("/accounts/login/", {"login": verified_user.email, "password": "an0ther-pass-word"})
    assert login.status_code == 302 and login["Location"] == reverse("accounts:profile")


# --------------------------------------------------------------------------- tokens on the profile


def create_token(client, name="laptop", scopes=("read", "download"), days="30"):
    return client.post(
        reverse("accounts:token_create"), {"token-name": name, "token-scopes": list(scopes), "token-days": days}
    )


def test_a_token_is_shown_once_and_works_until_revoked(client, verified_user, grid_version):
    share(Dataset.ShareType.LOGIN)
    client.force_login(verified_user)
    assert create_token(client).status_code == 302
    first = page_text(client.get(reverse("accounts:profile")))
    raw = re.search(r'<code id="new-token-value">(hp_[^<]+)</code>', first).group(1)
    token = ApiToken.objects.get(user=verified_user)
    assert raw.startswith(f"hp_{token.prefix}_") and raw not in token.key_hash and token.scopes == ["download", "read"]
    assert f"hp_{token.prefix}_…" in first and "laptop" in first
    second = page_text(client.get(reverse("accounts:profile")))
    assert raw not in second and "new-token-value" not in second and f"hp_{token.prefix}_…" in second

    anonymous = client.__class__()
    assert anonymous.get("/api/datasets/", **bearer(raw)).status_code == 200
    assert anonymous.get(file_url(grid_version), **bearer(raw)).status_code == 200
    assert client.post(reverse("accounts:token_revoke", args=[token.pk])).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    revoked = anonymous.get("/api/datasets/", **bearer(raw))
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]
    assert "revoked" in page_text(client.get(reverse("accounts:profile")))


def test_a_read_only_token_may_not_download(client, verified_user, grid_version):
    share(Dataset.ShareType.LOGIN)
    client.force_login(verified_user)
    create_token(client, scopes=["read"])
    raw = re.search(r'id="new-token-value">(hp_[^<]+)<', page_text(client.get(reverse("accounts:profile")))).group(1)
    other = client.__class__()
    assert other.get("/api/datasets/", **bearer(raw)).status_code == 200
    refused = other.get(file_url(grid_version), **bearer(raw))
    assert refused.status_code == 403 and refused.json()["need"] == "scope"


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"token-name": "", "token-scopes": ["read"], "token-days": "30"}, "name"),
        ({"token-name": "x", "token-scopes": ["admin"], "token-days": "30"}, "scopes"),
        ({"token-name": "x", "token-days": "30"}, "scopes"),
        ({"token-name": "x", "token-scopes": ["read"], "token-days": "0"}, "days"),
        ({"token-name": "x", "token-scopes": ["read"], "token-days": "367"}, "days"),
        ({"token-name": "x", "token-scopes": ["read"], "token-days": "٣٠"}, "days"),
        ({"token-name": "x", "token-scopes": ["read"], "token-days": "1e9"}, "days"),
    ],
)
def test_a_bad_token_form_is_a_400_naming_the_field(client, verified_user, fields, field):
    client.force_login(verified_user)
    response = client.post(reverse("accounts:token_create"), fields)
    assert response.status_code == 400
    errors = response.context["token_form"].errors
    assert list(errors) == [field]
    assert f'id="id_token-{field}' in page_text(response) and 'class="errorlist' in page_text(response)
    assert not ApiToken.objects.filter(user=verified_user).exists()


def test_tokens_manage_nothing_and_others_tokens_are_out_of_reach(client, verified_user):
    other = make_user("other@example.org")
    client.force_login(other)
    create_token(client)
    raw = re.search(r'id="new-token-value">(hp_[^<]+)<', page_text(client.get(reverse("accounts:profile")))).group(1)
    theirs = ApiToken.objects.get(user=other)
    script = client.__class__()
    for response in (
        script.post(
            reverse("accounts:token_create"),
            {"token-name": "more", "token-scopes": ["read"], "token-days": "30"},
            **bearer(raw),
        ),
        script.get(reverse("accounts:profile"), **bearer(raw)),
        script.post(reverse("accounts:token_revoke", args=[theirs.pk]), **bearer(raw)),
    ):
        assert response.status_code == 403 and "browser session" in response.json()["detail"]
    assert ApiToken.objects.filter(user=other).count() == 1
    client.force_login(verified_user)
    assert client.post(reverse("accounts:token_revoke", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("accounts:token_revoke", args=[theirs.pk])).status_code == 405
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


# --------------------------------------------------------------------------- protected data: apply, decide


def apply(client, purpose="Validating a basin water balance", institution="Hydro Lab"):
    return client.post(reverse("accounts:apply", args=[FT]), {"purpose": purpose, "institution": institution})


def test_apply_approve_in_the_admin_then_download(client, admin_client, verified_user, manager, grid_version):
    share(Dataset.ShareType.PROTECTED)
    anonymous = client.__class__()
    page = page_text(anonymous.get(f"/datasets/{FT}/"))
    assert 'id="access"' in page and f"/accounts/login/?next=%2Fdatasets%2F{FT}%2F" in page
    assert anonymous.get(file_url(grid_version), headers={"Accept": "text/html"}).status_code == 302  # to the login
    assert anonymous.get(file_url(grid_version)).status_code == 401  # a script

    client.force_login(verified_user)
    assert client.get(file_url(grid_version)).json()["need"] == "apply"
    page = page_text(client.get(f"/datasets/{FT}/"))
    assert f'action="/accounts/apply/{FT}/"' in page and 'name="purpose"' in page

    assert apply(client).status_code == 302
    application = AccessApplication.objects.get(user=verified_user, dataset_id=FT)
    assert application.status == "pending" and application.institution == "Hydro Lab"
    assert "manager@example.org" in mail.outbox[-1].to and verified_user.email in mail.outbox[-1].body
    assert f"/admin/accounts/accessapplication/{application.pk}/change/" in mail.outbox[-1].body
    assert "申请访问受保护数据集" in mail.outbox[-1].body  # both languages
    assert "awaits a data manager" in page_text(client.get(f"/datasets/{FT}/"))
    assert client.get(file_url(grid_version)).json()["need"] == "pending"
    assert apply(client).status_code == 409  # once pending, not again

    before = len(mail.outbox)
    response = admin_client.post(
        "/admin/accounts/accessapplication/", {"action": "approve", "_selected_action": [application.pk]}
    )
    assert response.status_code == 302
    application.refresh_from_db()
    assert application.status == "approved" and application.decided_by.username == "admin"
    assert application.decided_at is not None
    assert len(mail.outbox) == before + 1
    decided = mail.outbox[-1]
    assert decided.to == [verified_user.email] and "approved" in decided.subject
    assert f"/datasets/{FT}/" in decided.body and "已获批准" in decided.body
    assert client.get(file_url(grid_version)).status_code == 200
    assert "approved" in page_text(client.get(f"/datasets/{FT}/"))
    assert "approved" in page_text(client.get(reverse("accounts:profile")))
    admin_client.post("/admin/accounts/accessapplication/", {"action": "approve", "_selected_action": [application.pk]})
    assert len(mail.outbox) == before + 1  # the same decision again mails nobody


def test_refused_with_a_reply_in_the_admin_form(client, admin_client, verified_user, grid_version):
    share(Dataset.ShareType.PROTECTED)
    client.force_login(verified_user)
    apply(client)
    application = AccessApplication.objects.get(user=verified_user)
    reply = "Please name the project that funds the study."
    change = admin_client.post(
        f"/admin/accounts/accessapplication/{application.pk}/change/", {"status": "refused", "reply": reply}
    )
    assert change.status_code == 302
    application.refresh_from_db()
    assert application.status == "refused" and application.reply == reply and application.decided_at
    assert mail.outbox[-1].to == [verified_user.email] and reply in mail.outbox[-1].body
    assert "refused" in mail.outbox[-1].subject
    refused = client.get(file_url(grid_version))
    assert refused.status_code == 403 and refused.json()["need"] == "refused" and reply in refused.json()["detail"]
    page = page_text(client.get(f"/datasets/{FT}/"))
    assert "was refused" in page and reply in page and 'name="purpose"' in page  # may apply again
    assert apply(client, purpose="For the Hydro project (grant 42).").status_code == 302
    assert AccessApplication.objects.filter(user=verified_user, status="pending").count() == 1


def test_the_admin_shows_tokens_without_their_key_and_raises_quotas(admin_client, verified_user):
    from portal.accounts.tokens import issue
    from portal.limits import limits_for

    token, raw = issue(verified_user, "notebook")
    listing = page_text(admin_client.get("/admin/accounts/apitoken/"))
    assert token.prefix in listing and raw not in listing and token.key_hash not in listing
    detail = page_text(admin_client.get(f"/admin/accounts/apitoken/{token.pk}/change/"))
    assert token.key_hash not in detail and raw not in detail
    admin_client.post("/admin/accounts/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.revoked_at is not None

    user_page = admin_client.get(f"/admin/auth/user/{verified_user.pk}/change/")
    assert user_page.status_code == 200 and "quota-__prefix__-bytes_per_day" in page_text(user_page)
    before = limits_for(verified_user).bytes_per_day
    response = admin_client.post(
        "/admin/accounts/quota/add/",
        {
            "user": verified_user.pk,
            "concurrent_jobs": "",
            "bytes_per_day": str(before * 10),
            "requests_per_minute": "",
            "note": "project X",
        },
    )
    assert response.status_code == 302
    verified_user.refresh_from_db()
    assert limits_for(verified_user).bytes_per_day == before * 10
    assert admin_client.get("/admin/accounts/licenceacceptance/").status_code == 200


@pytest.mark.parametrize(
    "fields, status, text",
    [
        ({"purpose": "  ", "institution": "x"}, 400, "purpose"),
        ({"institution": "x"}, 400, "purpose"),
        ({"purpose": "p" * 10_001}, 400, "purpose"),
    ],
)
def test_a_bad_application_is_a_400_naming_the_field(client, verified_user, grid_version, fields, status, text):
    share(Dataset.ShareType.PROTECTED)
    client.force_login(verified_user)
    response = client.post(reverse("accounts:apply", args=[FT]), fields)
    assert response.status_code == status and list(response.context["form"].errors) == [text]
    assert not AccessApplication.objects.exists()


def test_applications_refused_where_they_make_no_sense(client, verified_user, grid_version):
    unverified = make_user("unverified@example.org", verified=False)
    share(Dataset.ShareType.LOGIN)
    client.force_login(verified_user)
    not_protected = apply(client)
    assert not_protected.status_code == 400 and 'data-field="dataset"' in page_text(not_protected)
    assert client.post("/accounts/apply/no-such-dataset/", {"purpose": "x"}).status_code == 404
    assert client.post("/accounts/apply/a%00b/", {"purpose": "x"}).status_code in (400, 404)
    share(Dataset.ShareType.PROTECTED)
    client.force_login(unverified)
    assert apply(client).status_code == 403
    anonymous = client.__class__()
    response = anonymous.post(reverse("accounts:apply", args=[FT]), {"purpose": "x"})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert not AccessApplication.objects.exists()


# --------------------------------------------------------------------------- licence acceptance


def test_licence_acceptance_before_the_first_download(client, verified_user, grid_version):
    licence = "https://creativecommons.org/licenses/by/4.0/"
    share(
        Dataset.ShareType.OPEN,
        licence_acceptance=True,
        license_url=licence,
        ref_way_en="Doe, J. (2024). A soil-moisture grid. doi:10.0000/example",
    )
    client.force_login(verified_user)
    refused = client.get(file_url(grid_version))
    assert refused.status_code == 403 and refused.json()["need"] == "licence"
    page = page_text(client.get(f"/datasets/{FT}/"))
    assert f'action="/accounts/licence/{FT}/"' in page and licence in page and "doi:10.0000/example" in page
    assert client.post(reverse("accounts:licence", args=[FT])).status_code == 302
    acceptance = LicenceAcceptance.objects.get(user=verified_user, dataset_id=FT)
    assert acceptance.licence_url == licence and acceptance.version_number == grid_version.number
    assert client.post(reverse("accounts:licence", args=[FT])).status_code == 302  # twice: still one row
    assert LicenceAcceptance.objects.filter(user=verified_user).count() == 1
    assert client.get(file_url(grid_version)).status_code == 200
    assert f'action="/accounts/licence/{FT}/"' not in page_text(client.get(f"/datasets/{FT}/"))
    assert licence in page_text(client.get(reverse("accounts:profile")))

    share(Dataset.ShareType.OPEN, licence_acceptance=False)
    assert client.post(reverse("accounts:licence", args=[FT])).status_code == 400


# --------------------------------------------------------------------------- the profile's contents, languages


def test_the_profile_lists_downloads_jobs_and_limits(client, verified_user, grid_version):
    from portal.subsets.models import DownloadLog, SubsetJob

    job = SubsetJob.objects.create(
        user=verified_user,
        dataset_id=FT,
        version=grid_version,
        file_name="grid.nc",
        kind="subset",
        params={},
        request_key="k" * 64,
        estimated_bytes=2048,
    )
    DownloadLog.objects.create(
        user=verified_user,
        dataset_id=FT,
        version_number=grid_version.number,
        kind="subset",
        params={},
        format="netcdf",
        size=3 * 2**20,
        seconds=0.1,
    )
    client.force_login(verified_user)
    page = page_text(client.get(reverse("accounts:profile")))
    assert f'href="/jobs/{job.id}/"' in page and "3.0\xa0MB" in page
    assert re.search(r"Jobs queued or running</th><td>1 / \d+</td>", page)
    assert re.search(r"Downloads in the last 24 hours</th><td>3.0\xa0MB / ", page)


def test_sign_up_and_profile_speak_chinese(client, verified_user):
    client.cookies["django_language"] = "zh-hans"
    signup = page_text(client.get("/accounts/signup/"))
    assert "注册" in signup and "登录" in signup and "密码" in signup
    client.force_login(verified_user)
    profile = page_text(client.get(reverse("accounts:profile")))
    assert "API 令牌" in profile and "创建令牌" in profile and "使用限额" in profile and "退出" in profile
    english = client.__class__(HTTP_ACCEPT_LANGUAGE="en")
    english.force_login(verified_user)
    assert "Create token" in page_text(english.get(reverse("accounts:profile")))
