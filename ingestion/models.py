"""Stations, their observations, and the record of every ingestion."""

from __future__ import annotations

from django.contrib.gis.db import models


class IngestRun(models.Model):
    """One ingestion of a source path: what was read, with which reader, and what came of it."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SUPERSEDED = "superseded", "Superseded (the file changed; its rows were replaced)"

    kind = models.CharField(max_length=30)
    source_path = models.CharField(max_length=1000, db_index=True)
    checksum = models.CharField(max_length=64, help_text="sha256 over the file and its companions")
    files = models.JSONField(default=list, help_text="[{path, size, sha256}]: the file and its companions")
    reader = models.CharField(max_length=200)
    reader_version = models.CharField(max_length=50)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    stations = models.PositiveIntegerField(default=0)
    observations = models.PositiveIntegerField(default=0)
    skipped_duplicates = models.PositiveIntegerField(default=0)
    errors = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.source_path} ({self.status})"


class Station(models.Model):
    """A measuring site: flux tower, soil-moisture station, basin outlet or reanalysis point."""

    network = models.CharField(max_length=100)
    code = models.CharField(max_length=100)
    name = models.CharField(max_length=300, blank=True)
    geom = models.PointField(srid=4326, null=True, blank=True, help_text="empty when the source gives no location")
    elevation = models.FloatField(null=True, blank=True, help_text="m above sea level")
    land_cover = models.CharField(max_length=50, blank=True, help_text="IGBP class where known")
    source = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["network", "code"]
        constraints = [models.UniqueConstraint(fields=["network", "code"], name="station_network_code")]

    def __str__(self) -> str:
        return f"{self.network}:{self.code}"


class Observation(models.Model):
    """One value of one variable at one station and time (long form).

    ``is_validation`` marks rows held out from training (e.g. CARDAMOM-FluxVal validation CSVs).
    """

    # No separate index on station: the unique constraint below starts with it.
    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="observations", db_index=False)
    variable = models.CharField(max_length=50)
    time = models.DateTimeField()
    value = models.FloatField()
    units = models.CharField(max_length=50)
    quality_flag = models.CharField(
        max_length=50, blank=True, help_text="as the source writes it (e.g. ISMN 'D03,D05')"
    )
    is_validation = models.BooleanField(default=False)
    # Not indexed: an index here costs ~25 % of the bulk-load rate (tests/bench); the only lookup by
    # run is replacing the rows of a changed file, which is rare and may scan.
    ingest_run = models.ForeignKey(
        IngestRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["station", "variable", "time", "is_validation"], name="observation_identity"
            )
        ]


class GridFile(models.Model):
    """A registered gridded file: what it holds and where, never its values (those stay in the file)."""

    ingest_run = models.OneToOneField(IngestRun, on_delete=models.CASCADE, related_name="grid")
    path = models.CharField(max_length=1000)
    sha256 = models.CharField(max_length=64)
    reader = models.CharField(max_length=200)
    variables = models.JSONField(default=list, help_text="[{name, units, standard_name, dims, dtype}]")
    bbox = models.PolygonField(srid=4326, null=True, blank=True, help_text="(min_lon, min_lat, max_lon, max_lat)")
    time_start = models.DateTimeField(null=True, blank=True)
    time_end = models.DateTimeField(null=True, blank=True)
    time_steps = models.PositiveIntegerField(default=0)
    grid = models.JSONField(default=dict, help_text="shape, resolution, crs")
    cube_path = models.CharField(
        max_length=500, blank=True, help_text="chunked NetCDF4 copy under DATA_ROOT, made when a product reads it"
    )

    class Meta:
        ordering = ["path"]

    def __str__(self) -> str:
        return self.path
