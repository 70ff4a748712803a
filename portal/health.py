"""``/health/``: whether the portal can serve, for a load balancer or a monitor.

Checks the database (a query), the broker (Redis ``PING``) and the data root (a file written and
removed). JSON ``{"status": "ok"|"unavailable", "checks": {name: {"ok": bool, "detail": str}}}``,
200 when every check passes, 503 otherwise. Each check is bounded by a short timeout.
"""

from __future__ import annotations

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from portal import storage


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "reachable"


def _broker() -> str:
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    finally:
        client.close()
    return "answers PING"


def _data_root() -> str:
    return storage.describe()  # local disk or S3-compatible object storage: a file written and removed


CHECKS = {"database": _database, "broker": _broker, "data_root": _data_root}


def checks() -> dict[str, dict]:
    """Run every check; each is ``{"ok": bool, "detail": str}`` (the error's type and text on failure)."""
    out = {}
    for name, check in CHECKS.items():
        try:
            out[name] = {"ok": True, "detail": check()}
        except Exception as exc:  # a failed check is the answer, not an error of this view
            out[name] = {"ok": False, "detail": f"{type(exc).__name__}: {str(exc)[:200]}"}
    return out


@never_cache
def health(request):
    results = checks()
    ok = all(c["ok"] for c in results.values())
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": results}, status=200 if ok else 503)
