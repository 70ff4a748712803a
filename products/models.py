"""Generation runs of the products and the validation results they produce."""

from __future__ import annotations

from django.conf import settings
from django.contrib.gis.db import models


class GenerationRun(models.Model):
    """One run of a product generator, with its lineage and outcome.

    Status moves ``queued -> running -> succeeded | failed``; the worker claims a run with a
    conditional UPDATE on ``status='queued'`` so a task delivered twice runs once.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    product = models.CharField(max_length=50)
    dataset = models.ForeignKey("catalog.Dataset", on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True)
    parameters = models.JSONField(default=dict)
    inputs = models.JSONField(default=list, help_text="[{path, sha256, size, role}] read by the run")
    code_version = models.CharField(max_length=100, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    timings = models.JSONField(default=dict, help_text="seconds per stage")
    summary = models.JSONField(default=dict, help_text="headline metrics and counts")
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)
    version = models.OneToOneField(
        "catalog.DatasetVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="generation_run"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.product} run {self.pk} ({self.status})"

    @property
    def seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)


class ValidationResult(models.Model):
    """Agreement of a product with independent observations, for one scope.

    ``scope`` is ``pooled`` (all stations together), ``site`` (one station) or ``class``
    (a land-cover class); ``split`` says which rows were compared (e.g. ``validation`` for the
    held-out rows, ``cv`` for cross-validated training rows).
    """

    class Scope(models.TextChoices):
        POOLED = "pooled", "Pooled"
        SITE = "site", "Site"
        CLASS = "class", "Class"

    run = models.ForeignKey(GenerationRun, on_delete=models.CASCADE, related_name="validation_results")
    version = models.ForeignKey(
        "catalog.DatasetVersion", null=True, blank=True, on_delete=models.CASCADE, related_name="validation_results"
    )
    variable = models.CharField(max_length=50)
    units = models.CharField(max_length=50)
    split = models.CharField(max_length=30)
    scope = models.CharField(max_length=10, choices=Scope.choices)
    label = models.CharField(max_length=100, blank=True, help_text="site code or class name")
    station = models.ForeignKey("ingestion.Station", null=True, blank=True, on_delete=models.SET_NULL)
    n = models.PositiveIntegerField()
    kge = models.FloatField(null=True)
    r = models.FloatField(null=True)
    alpha = models.FloatField(null=True)
    beta = models.FloatField(null=True)
    rmse = models.FloatField(null=True)
    bias = models.FloatField(null=True)
    ubrmse = models.FloatField(null=True)
    nse = models.FloatField(null=True)
    not_meaningful = models.CharField(
        max_length=200,
        blank=True,
        default="",
        help_text="why kge and beta are no numbers for this reference (e.g. zero-mean anomaly); empty when they are",
    )

    class Meta:
        ordering = ["split", "scope", "label"]
