"""What a user holds: API tokens, applications for protected datasets, accepted licences, quotas.

Accounts themselves (sign-up, e-mail verification, passwords) are django-allauth's; these models
hang off Django's user. The decision who may download what is :mod:`portal.catalog.access`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiToken(models.Model):
    """A personal API token: shown once, stored as its SHA-256, with scopes and an expiry.

    The plain token is ``hp_<prefix>_<secret>``; ``prefix`` finds the row, ``key_hash`` proves it
    (:mod:`portal.accounts.tokens`).
    """

    class Scope(models.TextChoices):
        READ = "read", "read (records, estimates, job status)"
        DOWNLOAD = "download", "download (files, subsets, OPeNDAP, jobs)"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="what the token is for, e.g. 'laptop notebook'")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False, help_text="sha256 of the whole token")
    scopes = models.JSONField(default=list, help_text="subset of ['read', 'download']")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} (hp_{self.prefix}_…)"

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class AccessApplication(models.Model):
    """An application to download a protected dataset: the user's purpose and a data manager's decision."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        APPROVED = "approved", "approved"
        REFUSED = "refused", "refused"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_applications")
    dataset = models.ForeignKey("catalog.Dataset", on_delete=models.CASCADE, related_name="access_applications")
    purpose = models.TextField(help_text="what the data will be used for")
    institution = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    reply = models.TextField(blank=True, help_text="the data manager's note to the applicant")
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.user} → {self.dataset_id} ({self.status})"


class LicenceAcceptance(models.Model):
    """A user accepted a dataset's licence (its URL at the time) before downloading a version."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="licence_acceptances")
    dataset = models.ForeignKey("catalog.Dataset", on_delete=models.CASCADE, related_name="licence_acceptances")
    licence_url = models.CharField(max_length=300)
    version_number = models.PositiveIntegerField(null=True, blank=True, help_text="the version about to be downloaded")
    accepted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-accepted_at"]
        constraints = [models.UniqueConstraint(fields=["user", "dataset", "licence_url"], name="licence_once")]

    def __str__(self) -> str:
        return f"{self.user} accepted {self.licence_url} for {self.dataset_id}"


class Quota(models.Model):
    """A user's limits where staff raised (or lowered) them; empty fields take the settings' defaults."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota")
    concurrent_jobs = models.PositiveIntegerField(null=True, blank=True, help_text="queued + running jobs at once")
    bytes_per_day = models.BigIntegerField(null=True, blank=True, help_text="bytes downloaded in any 24 hours")
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True, help_text="per front door")
    note = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"limits of {self.user}"
