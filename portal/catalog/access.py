"""Who may download what: the one access check of every front door.

The dataset API, jobs, OGC API-EDR, OPeNDAP and whole-file downloads all ask
:func:`check_download` before reading a byte. (Issue 13 grows the policy: licences, applications,
tokens; the front doors keep calling this one function.)
"""
from __future__ import annotations

from .models import Dataset


class AccessDenied(PermissionError):
    """The user may not download from the dataset; the message says what to do."""


def can_download(user, dataset: Dataset) -> bool:
    """Whether ``user`` (possibly anonymous) may read ``dataset``'s files and subsets."""
    if dataset.share_type == Dataset.ShareType.LOGIN:
        return bool(getattr(user, "is_authenticated", False))
    return True


def check_download(user, dataset: Dataset) -> None:
    """Raise :class:`AccessDenied` unless ``user`` may download from ``dataset``.

    Raises
    ------
    AccessDenied
        A login-access dataset and an anonymous user.
    """
    if not can_download(user, dataset):
        raise AccessDenied("this dataset is login-access: log in to download")
