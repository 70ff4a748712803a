"""Asynchronous subset jobs and the download log."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class SubsetJob(models.Model):
    """A subset, point-series or area-mean request too large to answer directly, run by Celery.

    ``params`` holds the request exactly as the API received it (query-string names), so a
    retry or a worker re-reads it through the same parser. ``attempt`` counts runs: a task
    carrying an older attempt number (a redelivered message after a retry) does nothing.

    A job belongs to its owner: a signed-in ``user``, or for an anonymous request the holder of
    the per-client key whose sha256 is ``owner_key`` (see :mod:`portal.subsets.ownership`).
    ``client`` is the requesting address (the anonymous quota of concurrent jobs counts by it).
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        EXPIRED = "expired"
        CANCELLED = "cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    owner_key = models.CharField(
        max_length=64,
        blank=True,
        db_index=True,
        help_text="sha256 of the anonymous owner's key (empty for a signed-in user's job)",
    )
    client = models.GenericIPAddressField(null=True, blank=True, help_text="the address that asked for it")
    dataset = models.ForeignKey("catalog.Dataset", on_delete=models.CASCADE, related_name="subset_jobs")
    version = models.ForeignKey("catalog.DatasetVersion", on_delete=models.CASCADE, related_name="subset_jobs")
    file_name = models.CharField(max_length=300, help_text="the published NetCDF the subset is cut from")
    kind = models.CharField(max_length=20, help_text="subset, point or area")
    params = models.JSONField(help_text="the request's parameters as given to the API")
    request_key = models.CharField(
        max_length=64, db_index=True, help_text="sha256 of version, file, kind, params, owner"
    )
    estimated_bytes = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0, help_text="0..1 while running")
    attempt = models.PositiveIntegerField(default=1)
    error = models.TextField(blank=True)
    result_path = models.CharField(max_length=500, blank=True, help_text="relative to DATA_ROOT")
    result_name = models.CharField(max_length=300, blank=True)
    media_type = models.CharField(max_length=100, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="last sign of life of the worker")
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="the result file is deleted after this")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} job {self.id} ({self.status})"


class DownloadLog(models.Model):
    """One finished download of a subset, series, job result or station subset: who, what, how big, when."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    dataset = models.ForeignKey(
        "catalog.Dataset",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="download_logs",
        help_text="empty for station observations",
    )
    version_number = models.PositiveIntegerField(null=True, blank=True)
    file_name = models.CharField(max_length=300, blank=True)
    kind = models.CharField(max_length=20, help_text="subset, point, area, job (a job's result) or stations")
    params = models.JSONField()
    format = models.CharField(max_length=20)
    size = models.BigIntegerField(help_text="bytes sent")
    seconds = models.FloatField(help_text="time to prepare the answer")
    job = models.ForeignKey(SubsetJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="downloads")
    client = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
