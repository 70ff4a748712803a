"""Quotas that keep the portal up: concurrent jobs and bytes per day, per user or anonymous client.

The defaults are settings (``QUOTA_*``); staff raise or lower a user's own in the admin
(:class:`portal.accounts.models.Quota`). An anonymous client is its IP address (``client``).
Every download is logged (:class:`portal.subsets.models.DownloadLog`), so the bytes of the last
24 hours are a sum over the log; jobs count while queued or running. Front doors turn
:class:`QuotaExceeded` into a 429 with ``Retry-After`` and the body :meth:`QuotaExceeded.as_dict`.

Request rates are limited here too (:func:`hit_rate`), per front door (:func:`front_door`) and per
user or anonymous client, counted in the Redis cache by django-ratelimit's core so that every web
worker sees the same counts; :class:`portal.edge.RateLimitMiddleware` applies it to every request.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q, Sum
from django.utils import timezone
from django_ratelimit.core import get_usage

from portal.subsets.models import DownloadLog, SubsetJob

DAY = timedelta(hours=24)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """One user's or client's limits. ``requests_per_minute`` is per front door."""

    concurrent_jobs: int
    bytes_per_day: int
    requests_per_minute: int


class QuotaExceeded(Exception):
    """A quota is used up; ``retry_after`` seconds until it may allow the request (429)."""

    def __init__(self, quota: str, message: str, *, limit: int, used: int, retry_after: int):
        super().__init__(message)
        self.quota, self.limit, self.used, self.retry_after = quota, limit, used, max(int(retry_after), 1)

    def as_dict(self) -> dict:
        return {
            "detail": str(self),
            "quota": self.quota,
            "limit": self.limit,
            "used": self.used,
            "retry_after": self.retry_after,
        }


def limits_for(user) -> Limits:
    """The limits of ``user`` (anonymous: the anonymous defaults; staff's own Quota row wins)."""
    if not getattr(user, "is_authenticated", False):
        return Limits(
            settings.QUOTA_ANON_CONCURRENT_JOBS, settings.QUOTA_ANON_BYTES_PER_DAY, settings.RATE_ANON_PER_MINUTE
        )
    base = Limits(settings.QUOTA_USER_CONCURRENT_JOBS, settings.QUOTA_USER_BYTES_PER_DAY, settings.RATE_USER_PER_MINUTE)
    own = getattr(user, "quota", None)  # a missing row raises RelatedObjectDoesNotExist, an AttributeError
    if own is None:
        return base
    return Limits(
        own.concurrent_jobs if own.concurrent_jobs is not None else base.concurrent_jobs,
        own.bytes_per_day if own.bytes_per_day is not None else base.bytes_per_day,
        own.requests_per_minute if own.requests_per_minute is not None else base.requests_per_minute,
    )


def _owner_filter(user, client: str | None) -> Q:
    if getattr(user, "is_authenticated", False):
        return Q(user=user)
    return Q(user__isnull=True, client=client)


def bytes_today(user, client: str | None) -> int:
    """Bytes downloaded by ``user`` (or the anonymous ``client``) in the last 24 hours."""
    since = timezone.now() - DAY
    return (
        DownloadLog.objects.filter(_owner_filter(user, client), created_at__gte=since).aggregate(total=Sum("size"))[
            "total"
        ]
        or 0
    )


def jobs_running(user, client: str | None) -> int:
    """Jobs of ``user`` (or the anonymous ``client``) queued or running now."""
    return SubsetJob.objects.filter(_owner_filter(user, client), status__in=("queued", "running")).count()


def check_bytes(user, client: str | None, size: int) -> None:
    """Raise :class:`QuotaExceeded` if downloading ``size`` more bytes passes the day's quota.

    A single answer larger than the whole quota is let through when nothing was downloaded in
    the day (a quota limits a day's traffic, it does not cap one file: sizes are capped elsewhere).
    """
    limit = limits_for(user).bytes_per_day
    used = bytes_today(user, client)
    if used and used + size > limit:
        raise QuotaExceeded(
            "bytes_per_day",
            f"this would take your downloads of the last 24 hours to "
            f"{(used + size) / 2**20:.1f} MiB, above your quota of {limit / 2**20:.0f} MiB"
            + ("" if getattr(user, "is_authenticated", False) else " (anonymous; signed-in users have more)"),
            limit=limit,
            used=used,
            retry_after=_seconds_until_bytes_free(user, client),
        )


def _seconds_until_bytes_free(user, client) -> int:
    first = (
        DownloadLog.objects.filter(_owner_filter(user, client), created_at__gte=timezone.now() - DAY)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return int(((first + DAY) - timezone.now()).total_seconds()) if first else 60


def check_jobs(user, client: str | None) -> None:
    """Raise :class:`QuotaExceeded` if ``user`` (or the anonymous ``client``) has as many live jobs as allowed."""
    limit = limits_for(user).concurrent_jobs
    used = jobs_running(user, client)
    if used >= limit:
        raise QuotaExceeded(
            "concurrent_jobs",
            f"you have {used} job(s) queued or running, the most allowed at "
            f"once is {limit}: wait for one to finish or cancel one",
            limit=limit,
            used=used,
            retry_after=30,
        )


def usage(user, client: str | None = None) -> dict:
    """Limits and what is used of them, for the profile page and the API."""
    limits = limits_for(user)
    return {
        "concurrent_jobs": {"limit": limits.concurrent_jobs, "used": jobs_running(user, client)},
        "bytes_per_day": {"limit": limits.bytes_per_day, "used": bytes_today(user, client)},
        "requests_per_minute": {"limit": limits.requests_per_minute},
    }


# Front doors by path, first match wins; None: not rate limited (static files, the health check).
FRONT_DOORS = (
    (re.compile(r"^/(static/|health/|favicon\.ico$)"), None),
    (re.compile(r"^/api/edr(/|$)"), "edr"),
    (re.compile(r"^/api(/|$)"), "api"),
    (re.compile(r"^/wms(/|$)"), "api"),  # OGC WMS: map clients ask many tiles, as API clients do
    (re.compile(r"^/opendap(/|$)"), "opendap"),
    (re.compile(r"^/datasets/[^/]+/versions/[^/]+/files/"), "files"),
    (re.compile(r"^/jobs(/|$)"), "jobs"),
    (re.compile(r"^/(accounts/|admin/login/)"), "accounts"),
)


def front_door(path: str) -> str | None:
    """The front door a request path belongs to, for rate limits.

    Parameters
    ----------
    path : str
        The request's path (``request.path_info``).

    Returns
    -------
    str or None
        ``api``, ``edr``, ``opendap``, ``files``, ``jobs``, ``accounts`` or ``pages``; None for
        static files and ``/health/``, which are never limited.
    """
    for pattern, door in FRONT_DOORS:
        if pattern.match(path):
            return door
    return "pages"


@dataclass(frozen=True)
class RateUsage:
    """One request counted against its rate: ``count`` requests of ``limit`` in the window so far."""

    door: str
    limit: int
    count: int
    retry_after: int

    @property
    def exceeded(self) -> bool:
        return self.count > self.limit

    @property
    def remaining(self) -> int:
        return max(self.limit - self.count, 0)

    def as_dict(self) -> dict:
        return {
            "detail": f"too many requests to the {self.door} front door: at most {self.limit} a minute; "
            f"try again in {self.retry_after} s",
            "limit": self.limit,
            "retry_after": self.retry_after,
        }


_cache_down_until = 0.0  # per process: after a cache failure the limiter is skipped for a few seconds


def rate_for(user, door: str, method: str) -> int:
    """Requests per minute allowed to ``user`` at ``door``.

    ``limits_for(user).requests_per_minute`` (a user's Quota row can raise it), but a POST to the
    ``accounts`` door (login, sign-up, password reset) gets ``RATE_ACCOUNTS_POST_PER_MINUTE`` at most.
    """
    rate = limits_for(user).requests_per_minute
    if door == "accounts" and method == "POST":
        rate = min(rate, settings.RATE_ACCOUNTS_POST_PER_MINUTE)
    return rate


def client_key(request) -> str:
    """Who a request counts for: ``user:<id>`` (session or token) or ``ip:<address>``."""
    user = getattr(request, "user", None)
    if getattr(user, "is_authenticated", False):
        return f"user:{user.pk}"
    return f"ip:{request.META.get('REMOTE_ADDR') or 'unknown'}"


def hit_rate(request) -> RateUsage | None:
    """Count ``request`` against its front door's rate for its user or client (one-minute windows).

    Parameters
    ----------
    request : HttpRequest
        After authentication (``request.user`` is the session's or the token's user).

    Returns
    -------
    RateUsage or None
        The count so far in this window (``exceeded`` when over the limit); None when the path is
        not limited, rate limiting is off (``RATELIMIT_ENABLE``), or the cache does not answer:
        the limiter fails open (a warning is logged) rather than refusing every request.
    """
    global _cache_down_until
    door = front_door(request.path_info)
    if door is None or not settings.RATELIMIT_ENABLE:
        return None
    if time.monotonic() < _cache_down_until:
        return None
    group = f"door:{door}" + (":post" if door == "accounts" and request.method == "POST" else "")
    key = client_key(request)
    rate = rate_for(getattr(request, "user", None), door, request.method)
    try:
        usage = get_usage(request, group=group, key=lambda _group, _request: key, rate=f"{rate}/m", increment=True)
    except Exception as exc:  # the cache (Redis) is down or slow: serve without a limit
        _cache_down_until = time.monotonic() + settings.RATELIMIT_RETRY_CACHE_SECONDS
        log.warning(
            "rate limits are off for %s s: the cache does not answer (%s: %s)",
            settings.RATELIMIT_RETRY_CACHE_SECONDS,
            type(exc).__name__,
            exc,
        )
        return None
    if usage is None:
        return None
    return RateUsage(door=door, limit=usage["limit"], count=usage["count"], retry_after=max(usage["time_left"], 1))
