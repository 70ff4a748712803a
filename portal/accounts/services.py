"""What the account pages do: the profile's contents, tokens, applications for protected data, licences.

The views (:mod:`portal.accounts.views`) and the admin (:mod:`portal.accounts.admin`) call these;
whether a user may download is :func:`portal.catalog.access.decide`'s alone. Mails go through
Django's e-mail backend (:func:`django.core.mail.send_mail`), in English and Chinese.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from portal.catalog import access
from portal.catalog.models import Dataset
from portal.limits import usage
from portal.subsets.models import DownloadLog, SubsetJob

from . import tokens
from .models import AccessApplication, ApiToken, LicenceAcceptance

LATEST = 50
MAIL_LANGUAGES = ("en", "zh-hans")


class AccountError(Exception):
    """A request the account pages refuse; ``status`` is the HTTP status (400, 403, 404, 409), ``field`` the input."""

    def __init__(self, message: str, status: int = 400, field: str | None = None):
        super().__init__(message)
        self.status, self.field = status, field


def find_dataset(dataset_id: str) -> Dataset:
    """The dataset ``dataset_id`` names.

    Raises
    ------
    AccountError
        404 when there is none (a NUL byte, which PostgreSQL text cannot hold, included).
    """
    dataset = None if "\x00" in dataset_id else Dataset.objects.filter(pk=dataset_id).first()
    if dataset is None:
        raise AccountError(f"no dataset {dataset_id!r}", status=404, field="dataset")
    return dataset


def dataset_url(dataset: Dataset) -> str:
    """The absolute URL of ``dataset``'s page (``PORTAL_URL`` + its path), for mails."""
    return settings.PORTAL_URL + reverse("catalog:dataset_detail", args=[dataset.pk])


# --------------------------------------------------------------------------- profile


def profile(user) -> dict:
    """What the profile page shows of ``user``.

    Parameters
    ----------
    user : django.contrib.auth.models.User
        A signed-in user.

    Returns
    -------
    dict
        ``downloads`` and ``jobs`` (the latest 50 of each), ``licences``, ``applications``, ``tokens``
        and ``limits`` (:func:`portal.limits.usage`: each quota's ``limit`` and ``used``).
    """
    return {
        "downloads": list(DownloadLog.objects.filter(user=user).select_related("dataset")[:LATEST]),
        "jobs": list(
            SubsetJob.objects.filter(user=user).select_related("dataset", "version").order_by("-created_at")[:LATEST]
        ),
        "licences": list(LicenceAcceptance.objects.filter(user=user).select_related("dataset")),
        "applications": list(AccessApplication.objects.filter(user=user).select_related("dataset")),
        "tokens": list(ApiToken.objects.filter(user=user)),
        "limits": usage(user),
    }


# --------------------------------------------------------------------------- tokens


def create_token(user, name: str, scopes, days: int) -> tuple[ApiToken, str]:
    """Issue a personal API token (:func:`portal.accounts.tokens.issue`); the plain token is returned once.

    Raises
    ------
    AccountError
        400 for an unknown or missing scope or ``days`` out of range.
    """
    try:
        return tokens.issue(user, name.strip(), scopes=scopes, days=days)
    except ValueError as exc:
        raise AccountError(str(exc), field="scopes" if "scope" in str(exc) else "days") from None


def revoke_token(user, token_id: int) -> ApiToken:
    """Revoke ``user``'s token ``token_id`` (revoking twice is harmless).

    Raises
    ------
    AccountError
        404 when ``user`` has no such token (another user's token included).
    """
    token = ApiToken.objects.filter(user=user, pk=token_id).first()
    if token is None:
        raise AccountError(f"you have no token {token_id}", status=404, field="token")
    tokens.revoke(token)
    return token


# --------------------------------------------------------------------------- applications


def latest_application(user, dataset: Dataset) -> AccessApplication | None:
    """``user``'s latest application for ``dataset``, or None."""
    if not getattr(user, "is_authenticated", False):
        return None
    return AccessApplication.objects.filter(user=user, dataset=dataset).order_by("-created_at").first()


def apply_for_access(user, dataset: Dataset, purpose: str, institution: str = "") -> AccessApplication:
    """Record ``user``'s application for the protected ``dataset`` and tell the data managers.

    A user may apply when :func:`~portal.catalog.access.decide` says ``apply`` or ``refused``
    (applying again after a refusal); not while an application is pending or once allowed.

    Raises
    ------
    AccountError
        400 when ``purpose`` is empty or the dataset is not protected; 403 for an unverified
        address; 409 when an application is pending or access is already granted.
    """
    purpose, institution = purpose.strip(), institution.strip()
    if access.share_type(dataset) != Dataset.ShareType.PROTECTED:
        raise AccountError("this dataset is not protected: no application is needed", field="dataset")
    if not purpose:
        raise AccountError("purpose: say what the data will be used for", field="purpose")
    decision = access.decide(user, dataset)
    if decision.need == "verify":
        raise AccountError(decision.message, status=403)
    if decision.need == "pending":
        raise AccountError("you already applied for this dataset: the application awaits a decision", status=409)
    if decision.need not in ("apply", "refused"):
        raise AccountError("you may already download this dataset: no application is needed", status=409)
    with transaction.atomic():
        application = AccessApplication.objects.create(
            user=user, dataset=dataset, purpose=purpose[:10_000], institution=institution[:300]
        )
    notify_managers(application)
    return application


def manager_addresses() -> list[str]:
    """Where applications are sent: active staff users' addresses, else ``PORTAL_CONTACT_EMAIL``."""
    staff = get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="")
    return sorted(set(staff.values_list("email", flat=True))) or [settings.PORTAL_CONTACT_EMAIL]


def _bilingual(template: str, context: dict) -> str:
    parts = []
    for language in MAIL_LANGUAGES:
        with translation.override(language):
            parts.append(render_to_string(template, context).strip())
    return "\n\n----\n\n".join(parts) + "\n"


def _subject(template: str, context: dict) -> str:
    subjects = []
    for language in MAIL_LANGUAGES:
        with translation.override(language):
            subjects.append(" ".join(render_to_string(template, context).split()))
    return settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + " / ".join(subjects)


def notify_managers(application: AccessApplication) -> int:
    """Mail the data managers (:func:`manager_addresses`) about a new ``application``; returns mails sent."""
    context = {
        "application": application,
        "dataset": application.dataset,
        "applicant": application.user,
        "dataset_url": dataset_url(application.dataset),
        "admin_url": settings.PORTAL_URL + reverse("admin:accounts_accessapplication_change", args=[application.pk]),
    }
    return send_mail(
        _subject("accounts/email/application_submitted_subject.txt", context),
        _bilingual("accounts/email/application_submitted_message.txt", context),
        None,
        manager_addresses(),
    )


def decide_application(application: AccessApplication, status: str, by, reply: str | None = None) -> bool:
    """Approve or refuse ``application`` as the staff user ``by``, and mail the applicant the decision.

    Parameters
    ----------
    application : AccessApplication
    status : {"approved", "refused"}
    by : django.contrib.auth.models.User
        The data manager deciding.
    reply : str, optional
        The note to the applicant (kept as it is when None).

    Returns
    -------
    bool
        False when the application already had this decision (nothing changed, no mail).

    Raises
    ------
    AccountError
        400 for another ``status``.
    """
    if status not in (AccessApplication.Status.APPROVED, AccessApplication.Status.REFUSED):
        raise AccountError(f"status={status!r}: expected 'approved' or 'refused'", field="status")
    if reply is not None:
        application.reply = reply
    if application.status == status and application.decided_at is not None:
        if reply is not None:
            application.save(update_fields=["reply"])
        return False
    application.status, application.decided_at, application.decided_by = status, timezone.now(), by
    application.save(update_fields=["status", "reply", "decided_at", "decided_by"])
    notify_applicant(application)
    return True


def notify_applicant(application: AccessApplication) -> int:
    """Mail the applicant the decision on ``application`` (with the reply and the dataset's URL)."""
    address = application.user.email
    if not address:
        return 0
    context = {
        "application": application,
        "dataset": application.dataset,
        "dataset_url": dataset_url(application.dataset),
        "approved": application.status == AccessApplication.Status.APPROVED,
        "profile_url": settings.PORTAL_URL + reverse("accounts:profile"),
    }
    return send_mail(
        _subject("accounts/email/application_decided_subject.txt", context),
        _bilingual("accounts/email/application_decided_message.txt", context),
        None,
        [address],
    )


# --------------------------------------------------------------------------- licences


def accept_licence(user, dataset: Dataset) -> LicenceAcceptance:
    """Record that ``user`` accepted ``dataset``'s current licence (once per licence URL).

    Raises
    ------
    AccountError
        400 when the dataset asks for no acceptance; 403 for an unverified address.
    """
    if not dataset.licence_acceptance:
        raise AccountError("this dataset's licence needs no acceptance", field="dataset")
    if not access.is_verified(user):
        raise AccountError("verify your e-mail address (the link sent at sign-up) first", status=403)
    latest = dataset.versions.order_by("-number").values_list("number", flat=True).first()
    acceptance, _ = LicenceAcceptance.objects.get_or_create(
        user=user, dataset=dataset, licence_url=dataset.license_url, defaults={"version_number": latest}
    )
    return acceptance


def has_accepted(user, dataset: Dataset) -> bool:
    """Whether ``user`` accepted ``dataset``'s current licence."""
    return (
        bool(getattr(user, "is_authenticated", False))
        and LicenceAcceptance.objects.filter(user=user, dataset=dataset, licence_url=dataset.license_url).exists()
    )
