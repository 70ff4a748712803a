"""Who may see and download what: the one access policy of every front door.

Pages, whole-file links, ``series.json``, subsets, point and area series, jobs, OGC API-EDR,
OPeNDAP and station observations all ask :func:`decide` (through :func:`can_download` /
:func:`check_download`) before reading a byte. TPDC's share types:

* open access (also a blank share type): anyone;
* login access: any signed-in user whose e-mail address is verified;
* protected (apply access): a user whose application a data manager approved.

Staff may download everything. A dataset whose licence must be accepted (``licence_acceptance``)
needs a signed-in user who accepted its current licence once. A token without the ``download``
scope may read records but download nothing. Station networks follow a rule of their own
(:class:`~portal.catalog.models.NetworkAccess`): a network whose source allows no redistribution
is login-access.
"""

from __future__ import annotations

from dataclasses import dataclass

from allauth.account.models import EmailAddress
from django.http import JsonResponse

from portal.accounts.models import AccessApplication, LicenceAcceptance
from portal.accounts.tokens import BEARER_CHALLENGE, scopes_of

from .models import Dataset, NetworkAccess


@dataclass(frozen=True)
class Decision:
    """The answer of :func:`decide`. ``need`` says what would let the user in.

    ``need`` is one of ``None`` (allowed), ``"login"`` (401: sign in), ``"verify"`` (verify the
    e-mail address), ``"scope"`` (a token without the download scope), ``"apply"`` (apply for
    access), ``"pending"`` (the application awaits a decision), ``"refused"``, ``"licence"``
    (accept the licence first).
    """

    allowed: bool
    need: str | None = None
    message: str = ""

    @property
    def status(self) -> int:
        """The HTTP status a front door answers: 200, 401 (no user) or 403."""
        return 200 if self.allowed else (401 if self.need == "login" else 403)


class AccessDenied(PermissionError):
    """The user may not download; ``decision`` says why and what to do."""

    def __init__(self, decision: Decision):
        super().__init__(decision.message)
        self.decision = decision

    @property
    def status(self) -> int:
        return self.decision.status


ALLOWED = Decision(True)


def challenge(status: int) -> dict[str, str] | None:
    """The ``WWW-Authenticate`` header a refusal with ``status`` carries (on a 401 only), else None."""
    return {"WWW-Authenticate": BEARER_CHALLENGE} if status == 401 else None


def denied_json(decision: Decision) -> JsonResponse:
    """The refusal every JSON front door answers: 401 (sign in or send a token, with the challenge) or
    403, ``{"detail": why, "need": what would let the user in}``."""
    body = {"detail": decision.message, "need": decision.need}
    return JsonResponse(body, status=decision.status, headers=challenge(decision.status))


def is_verified(user) -> bool:
    """A signed-in user with a verified e-mail address (staff count as verified)."""
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_staff:
        return True
    cached = getattr(user, "_portal_verified", None)
    if cached is None:
        cached = EmailAddress.objects.filter(user=user, verified=True).exists()
        user._portal_verified = cached
    return cached


def share_type(dataset: Dataset) -> str:
    return dataset.share_type or Dataset.ShareType.OPEN


def decide(user, dataset: Dataset) -> Decision:
    """Whether ``user`` (possibly anonymous, possibly a token's) may download from ``dataset``.

    Parameters
    ----------
    user : django.contrib.auth.models.User or AnonymousUser
        ``user.token_scopes`` (set by the token middleware) limits a token's rights.
    dataset : Dataset

    Returns
    -------
    Decision
    """
    kind = share_type(dataset)
    signed_in = bool(getattr(user, "is_authenticated", False))
    if signed_in and "download" not in scopes_of(user):
        return Decision(False, "scope", "this API token has no 'download' scope: create one with it on your profile")
    if signed_in and user.is_staff:
        return ALLOWED
    restricted = kind in (Dataset.ShareType.LOGIN, Dataset.ShareType.PROTECTED) or dataset.licence_acceptance
    if restricted and not signed_in:
        what = {Dataset.ShareType.LOGIN: "login-access", Dataset.ShareType.PROTECTED: "protected (apply access)"}
        return Decision(
            False,
            "login",
            f"this dataset is {what.get(kind, 'open but its licence must be accepted')}: "
            "sign in (or send an API token) to download",
        )
    if restricted and not is_verified(user):
        return Decision(False, "verify", "verify your e-mail address (the link sent at sign-up) to download")
    if kind == Dataset.ShareType.PROTECTED:
        latest = AccessApplication.objects.filter(user=user, dataset=dataset).order_by("-created_at").first()
        if latest is None:
            return Decision(
                False,
                "apply",
                "this dataset is protected: apply for access on its page, stating your purpose; a data manager decides",
            )
        if latest.status == AccessApplication.Status.PENDING:
            return Decision(False, "pending", "your application for this dataset awaits a data manager's decision")
        if latest.status == AccessApplication.Status.REFUSED:
            return Decision(
                False,
                "refused",
                "your application for this dataset was refused" + (f": {latest.reply}" if latest.reply else ""),
            )
    if (
        dataset.licence_acceptance
        and not LicenceAcceptance.objects.filter(user=user, dataset=dataset, licence_url=dataset.license_url).exists()
    ):
        return Decision(
            False,
            "licence",
            f"accept the licence ({dataset.license_url or 'see the dataset page'}) on "
            "the dataset's page before the first download",
        )
    return ALLOWED


def can_download(user, dataset: Dataset) -> bool:
    """Whether ``user`` may read ``dataset``'s files, subsets, series and jobs."""
    return decide(user, dataset).allowed


def check_download(user, dataset: Dataset) -> None:
    """Raise :class:`AccessDenied` unless ``user`` may download from ``dataset``.

    Raises
    ------
    AccessDenied
        With the :class:`Decision` (its ``status`` is 401 or 403, its message what to do).
    """
    decision = decide(user, dataset)
    if not decision.allowed:
        raise AccessDenied(decision)


def public_anonymously(dataset: Dataset) -> bool:
    """Whether anyone may download (shared caches may then keep the answers)."""
    return share_type(dataset) == Dataset.ShareType.OPEN and not dataset.licence_acceptance


def restricted_networks(user) -> set[str]:
    """Station networks ``user`` may not download (login-access networks for anonymous or unverified users)."""
    if is_verified(user) and "download" in scopes_of(user):
        return set()
    return set(NetworkAccess.objects.exclude(share_type=Dataset.ShareType.OPEN).values_list("network", flat=True))


def check_networks(user, networks) -> None:
    """Raise :class:`AccessDenied` if any of ``networks`` is closed to ``user``."""
    closed = sorted(set(networks) & restricted_networks(user))
    if closed:
        signed_in = bool(getattr(user, "is_authenticated", False))
        raise AccessDenied(
            Decision(
                False,
                "verify" if signed_in else "login",
                f"station network(s) {closed} may not be redistributed to anonymous users "
                "(their source gives no open licence): sign in with a verified account",
            )
        )
