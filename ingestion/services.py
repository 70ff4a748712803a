"""Loading point data into PostGIS: stations upserted, observations bulk-loaded with COPY.

Each call reads a source path with the reader of its kind (``ingestion/readers``, no Django),
then, in one transaction, copies the long table into a staging table with PostgreSQL ``COPY``
(psycopg 3) and merges it with ``INSERT ... ON CONFLICT``. A path whose files have the same
checksum as an earlier successful run is not read again.
"""
from __future__ import annotations

import hashlib
import importlib
import io
import time
from dataclasses import dataclass
from pathlib import Path

from django.contrib.gis.geos import Point
from django.db import connection, transaction
from django.utils import timezone

from .models import IngestRun, Station
from .readers.base import PointData


@dataclass(frozen=True)
class ReaderSpec:
    module: str
    function: str
    pattern: str  # files below a directory that belong to the source (for the checksum)


READERS: dict[str, ReaderSpec] = {
    "cardamom": ReaderSpec("ingestion.readers.cardamom", "read_cardamom", "*"),
}


class IngestError(ValueError):
    """An ingestion that could not be done; nothing of it was written."""


@dataclass
class IngestResult:
    run: IngestRun
    skipped: bool  # True when the same files were already loaded


def file_checksums(path: Path, pattern: str) -> list[dict]:
    """``[{path, size, sha256}]`` of ``path`` or of the files below it matching ``pattern``, sorted."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob(pattern) if p.is_file())
    out = []
    for f in files:
        digest = hashlib.sha256()
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        out.append({"path": str(f), "size": f.stat().st_size, "sha256": digest.hexdigest()})
    return out


def combined_checksum(files: list[dict]) -> str:
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{Path(f['path']).name}:{f['sha256']}\n".encode())
    return digest.hexdigest()


def ingest(kind: str, path: Path | str, *, network: str | None = None) -> IngestResult:
    """Read ``path`` with the reader of ``kind`` and load its stations and observations.

    Parameters
    ----------
    kind : key of :data:`READERS` (e.g. ``"cardamom"``).
    path : a file or a directory of the source.
    network : overrides the network name the reader gives the stations.

    Returns
    -------
    IngestResult; ``skipped`` is True when a successful run with the same checksum exists
    (re-ingesting the same files adds nothing).

    Raises
    ------
    IngestError
        Unknown kind or missing path.
    ReaderError
        The reader rejected the input (message names file, line or field). A failed
        IngestRun row is kept; no station or observation of the path is written.
    """
    if kind not in READERS:
        raise IngestError(f"unknown kind {kind!r}: expected one of {', '.join(sorted(READERS))}")
    path = Path(path)
    if not path.exists():
        raise IngestError(f"{path}: no such file or directory")
    spec = READERS[kind]
    module = importlib.import_module(spec.module)
    files = file_checksums(path, spec.pattern)
    checksum = combined_checksum(files)
    done = IngestRun.objects.filter(kind=kind, checksum=checksum, status=IngestRun.Status.SUCCEEDED).first()
    if done:
        return IngestResult(run=done, skipped=True)

    started = time.perf_counter()
    run = IngestRun.objects.create(
        kind=kind, source_path=str(path), checksum=checksum, files=files,
        reader=f"{spec.module}.{spec.function}", reader_version=getattr(module, "READER_VERSION", "1"),
    )
    try:
        data: PointData = getattr(module, spec.function)(path)
        data.validate(path)
        if network:
            data.stations["network"] = network
        with transaction.atomic():
            n_stations, inserted, skipped = load_point_data(data, run)
    except Exception as exc:  # a failed run is recorded whatever went wrong, then the error goes on
        _finish(run, started, status=IngestRun.Status.FAILED, errors=f"{type(exc).__name__}: {exc}")
        raise
    _finish(run, started, status=IngestRun.Status.SUCCEEDED, stations=n_stations,
            observations=inserted, skipped_duplicates=skipped)
    return IngestResult(run=run, skipped=False)


def _finish(run: IngestRun, started: float, **fields) -> None:
    for key, value in fields.items():
        setattr(run, key, value)
    run.finished_at = timezone.now()
    run.seconds = time.perf_counter() - started
    run.save()


def upsert_stations(stations) -> dict[tuple[str, str], int]:
    """Create or update stations from a PointData station table; returns ``{(network, code): id}``."""
    ids = {}
    for row in stations.itertuples(index=False):
        elevation = None if row.elevation != row.elevation else float(row.elevation)  # NaN -> None
        station, _ = Station.objects.update_or_create(
            network=row.network, code=row.code,
            defaults=dict(name=row.name, geom=Point(float(row.lon), float(row.lat), srid=4326),
                          elevation=elevation, land_cover=row.land_cover or "", source=row.source),
        )
        ids[(row.network, row.code)] = station.id
    return ids


def load_point_data(data: PointData, run: IngestRun) -> tuple[int, int, int]:
    """Upsert stations, COPY observations into a staging table and merge them (call inside a transaction).

    Parameters
    ----------
    data : validated PointData (stations and long-form observations).
    run : the IngestRun the new rows are attributed to.

    Returns
    -------
    (stations, inserted, skipped): stations upserted, observations inserted, and observations
    already present (same station, variable, time and validation flag), which are left as they are.
    """
    ids = upsert_stations(data.stations)
    network_of = dict(zip(data.stations["code"], data.stations["network"], strict=False))
    obs = data.observations
    table = obs.assign(station_id=[ids[(network_of[c], c)] for c in obs["station"]])
    buffer = io.StringIO()
    table[["station_id", "variable", "time", "value", "units", "quality_flag", "is_validation"]].to_csv(
        buffer, index=False, header=False, date_format="%Y-%m-%dT%H:%M:%S+00:00")
    buffer.seek(0)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS observation_staging")
        cursor.execute(
            "CREATE TEMP TABLE observation_staging (station_id bigint, variable text, time timestamptz, "
            "value double precision, units text, quality_flag text, is_validation boolean) ON COMMIT DROP")
        with cursor.cursor.copy("COPY observation_staging FROM STDIN (FORMAT csv)") as copy:
            while block := buffer.read(1 << 20):
                copy.write(block)
        cursor.execute(
            "INSERT INTO ingestion_observation "
            "(station_id, variable, time, value, units, quality_flag, is_validation, ingest_run_id) "
            "SELECT station_id, variable, time, value, units, coalesce(quality_flag, ''), is_validation, %s "
            "FROM observation_staging "
            "ON CONFLICT (station_id, variable, time, is_validation) DO NOTHING", [run.id])
        inserted = cursor.rowcount
        cursor.execute("DROP TABLE observation_staging")
    return len(ids), inserted, len(table) - inserted
