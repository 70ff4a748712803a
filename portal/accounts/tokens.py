"""Personal API tokens: issue, hash, find; and the one reader of the ``Authorization`` header.

A token is ``hp_<prefix>_<secret>`` (``secrets.token_urlsafe``); only its SHA-256 is stored, so a
database dump reveals no token (a fast hash suffices for 256 random bits, as GitHub's and
Django REST Knox's tokens do). Scripts send it as ``Authorization: Bearer <token>`` (or
``Token <token>``), or as the password of HTTP Basic (``~/.netrc`` for OPeNDAP clients).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import authenticate
from django.utils import timezone

from .models import ApiToken

PREFIX = "hp_"
ALL_SCOPES = (ApiToken.Scope.READ.value, ApiToken.Scope.DOWNLOAD.value)
MAX_DAYS = 366
BEARER_CHALLENGE = 'Bearer realm="data portal"'
"""What a 401 asks for (``WWW-Authenticate``, RFC 9110 section 11.6.1): a session or a personal API token."""


class InvalidCredentials(Exception):
    """The Authorization header names a token or password that is wrong, revoked or expired."""


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue(user, name: str, scopes=ALL_SCOPES, days: int = 90) -> tuple[ApiToken, str]:
    """Create a token for ``user``; return the row and the plain token (shown once, never stored).

    Raises
    ------
    ValueError
        An unknown scope, no scope, or ``days`` outside 1..366.
    """
    scopes = sorted(set(scopes))
    if not scopes or any(s not in ALL_SCOPES for s in scopes):
        raise ValueError(f"scopes {scopes}: expected one or more of {list(ALL_SCOPES)}")
    if not 1 <= int(days) <= MAX_DAYS:
        raise ValueError(f"days={days}: expected 1 to {MAX_DAYS}")
    prefix = secrets.token_hex(6)
    raw = f"{PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        user=user,
        name=name[:100] or "token",
        prefix=prefix,
        key_hash=_hash(raw),
        scopes=scopes,
        expires_at=timezone.now() + timedelta(days=int(days)),
    )
    return token, raw


def revoke(token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])


def find(raw: str) -> ApiToken:
    """The active token ``raw`` names.

    Raises
    ------
    InvalidCredentials
        Malformed, unknown, revoked or expired (the message says which, never whose).
    """
    parts = raw[len(PREFIX) :].split("_", 1) if raw.startswith(PREFIX) else []
    if len(parts) != 2 or not parts[0].isalnum():
        raise InvalidCredentials("malformed API token: expected hp_<prefix>_<secret> as shown when it was created")
    token = ApiToken.objects.select_related("user").filter(prefix=parts[0]).first()
    if token is None or not hmac.compare_digest(token.key_hash, _hash(raw)):
        raise InvalidCredentials("unknown API token")
    if token.revoked_at is not None:
        raise InvalidCredentials("this API token was revoked: create a new one on your profile")
    if token.expires_at <= timezone.now():
        raise InvalidCredentials(
            f"this API token expired at {token.expires_at:%Y-%m-%d %H:%M} UTC: create a new one on your profile"
        )
    if not token.user.is_active:
        raise InvalidCredentials("the account of this API token is disabled")
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


@dataclass(frozen=True)
class Credentials:
    """Who the ``Authorization`` header says the client is: a user and, for a token, its scopes."""

    user: object
    token: ApiToken | None
    scheme: str


def from_request(request) -> Credentials | None:
    """Read ``Authorization``: ``Bearer``/``Token`` with an API token, or ``Basic`` with a token or a password.

    Returns None when the header is absent or names another scheme. A Basic password that is
    not a token goes through Django's ``authenticate`` (so django-axes counts failures).

    Raises
    ------
    InvalidCredentials
        A token or password that does not authenticate.
    """
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.strip().partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme in ("bearer", "token"):
        if not value:
            raise InvalidCredentials(f"{scheme.title()} without a token")
        token = find(value)
        return Credentials(token.user, token, scheme)
    if scheme == "basic":
        try:
            username, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidCredentials("malformed HTTP Basic credentials") from None
        if password.startswith(PREFIX):
            token = find(password)
            return Credentials(token.user, token, scheme)
        user = authenticate(request, username=username, password=password)
        if user is None and getattr(request, "axes_locked_out", False):
            raise InvalidCredentials("too many wrong passwords for this user from your address: try again later")
        if user is None:
            raise InvalidCredentials("wrong user name or password (HTTP Basic)")
        return Credentials(user, None, scheme)
    return None


def scopes_of(user) -> frozenset[str]:
    """The scopes a request's user acts with: a token's own, or all for a session or password."""
    return frozenset(getattr(user, "token_scopes", ALL_SCOPES))
