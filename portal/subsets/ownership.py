"""Who owns a subset job, and who may see it.

A signed-in user's job is theirs (``SubsetJob.user``). An anonymous job belongs to whoever holds
its key: a random token (``secrets.token_urlsafe(32)``, 43 characters) of which the job stores only
the sha256 (``SubsetJob.owner_key``). The key lives in the client's Django session (the
``sessionid`` cookie; the session is created when an anonymous client first submits a job), one
key per session, shared by its jobs. Clients without cookies (scripts) get it in the answer: every
job URL answered for an anonymous job (``url``, ``page_url``, ``download_url``, ``script_url``,
``retry_url``, ``cancel_url`` and the ``Location`` header) carries ``?key=<key>``; a request that
presents it (``?key=``, or the session) is the owner, and a script may send the same ``?key=``
when it submits again so that its identical live request returns the same job.

Nobody else learns that the job exists: status, download, script, retry and cancel answer 404
(the job page too). Staff see every job.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from urllib.parse import urlencode

from django.http import Http404

from .models import SubsetJob

SESSION_KEY = "subset_job_key"
KEY_PARAMETER = "key"
_WELL_FORMED = re.compile(r"[A-Za-z0-9_-]{32,64}")


def hash_key(raw: str) -> str:
    """The sha256 (hex) of an anonymous owner's key, as stored in ``SubsetJob.owner_key``."""
    return hashlib.sha256(raw.encode()).hexdigest()


def presented_key(request) -> str | None:
    """The anonymous owner key a request presents: ``?key=`` (when well-formed), else its session's; or None."""
    raw = request.GET.get(KEY_PARAMETER, "")
    if _WELL_FORMED.fullmatch(raw):
        return raw
    session = getattr(request, "session", None)
    return session.get(SESSION_KEY) if session is not None else None


def anonymous_key(request) -> str:
    """The key that owns the jobs an anonymous ``request`` submits (created now, with the session, if none).

    A well-formed ``?key=`` wins (a cookie-less script submitting again); else the session's key;
    else a new one, kept in the session (``Set-Cookie`` on the answer).
    """
    raw = presented_key(request)
    if raw is None:
        raw = secrets.token_urlsafe(32)
        request.session[SESSION_KEY] = raw
    return raw


def owns(job: SubsetJob, user, raw_key: str | None) -> bool:
    """Whether ``user`` (or the anonymous holder of ``raw_key``) may see ``job``: its owner, or staff."""
    if getattr(user, "is_authenticated", False) and (user.is_staff or job.user_id == user.pk):
        return True
    if job.user_id is None and job.owner_key and raw_key:
        return hmac.compare_digest(job.owner_key, hash_key(raw_key))
    return False


def key_query(job: SubsetJob, request) -> str:
    """``?key=<key>`` for the URLs of an anonymous ``job`` when ``request`` presents its key, else ``""``."""
    key = presented_key(request) if job.user_id is None and job.owner_key else None
    if key and hmac.compare_digest(hash_key(key), job.owner_key):
        return "?" + urlencode({KEY_PARAMETER: key})
    return ""


def visible_job(request, job_id, queryset=None) -> SubsetJob:
    """The job ``job_id`` if the request's user or key owns it (or staff asks).

    Raises
    ------
    django.http.Http404
        No such job, or someone else's (the same answer: a job's existence is not revealed).
    """
    queryset = queryset if queryset is not None else SubsetJob.objects.select_related("version", "dataset")
    try:
        job = queryset.filter(id=uuid.UUID(str(job_id))).first()
    except ValueError:
        job = None
    if job is None or not owns(job, request.user, presented_key(request)):
        raise Http404("no such job")
    return job
