"""Ingestion: every source file read by its reader, checked, and loaded all or nothing.

Point data (stations + long observation tables) are loaded with PostgreSQL ``COPY`` (psycopg 3)
into a staging table and merged with ``INSERT ... ON CONFLICT DO NOTHING``, in one transaction
per file. Gridded files are registered (:class:`GridFile`: variables, extent, time span, grid),
their values stay in the files. Every file gets an :class:`IngestRun`; a file whose checksum
(over the file and its companions) was already loaded is skipped, and a changed file replaces
the rows of its previous run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pandas as pd
from django.conf import settings
from django.contrib.gis.geos import Point, Polygon
from django.db import connection, transaction
from django.utils import timezone

from products.methods.files import sha256

from .models import GridFile, IngestRun, Observation, Station
from .readers import ameriflux, ascat, basins, cardamom, ecostress, fluxnet, grids, ismn, reddyproc
from .readers.base import PointData
from .readers.gridtools import describe

# KIND -> reader module (ingestion/readers/, the contract is at the end of readers/base.py)
READERS: dict[str, ModuleType] = {
    "cardamom": cardamom,
    "fluxnet": fluxnet,
    "ameriflux": ameriflux,
    "reddyproc": reddyproc,
    "ecostress": ecostress,
    "ismn": ismn,
    "ascat": ascat,
    "basins": basins,
    "grid": grids,
}


class IngestError(ValueError):
    """A request that cannot be carried out (unknown kind, missing path); nothing was written."""


@dataclass
class FileResult:
    path: str
    run: IngestRun | None
    skipped: bool = False  # same checksum already loaded
    error: str = ""


@dataclass
class IngestSummary:
    """Totals over the files of one ``ingest`` call (the command's ``--json`` line)."""

    results: list[FileResult] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        loaded = [r.run for r in self.results if r.run is not None and not r.skipped and not r.error]
        return {
            "files": len(self.results),
            "stations": sum(r.stations for r in loaded),
            "observations": sum(r.observations for r in loaded),
            "rejected_files": sum(1 for r in self.results if r.error),
            "skipped_duplicates": sum(r.skipped_duplicates for r in loaded)
            + sum(r.run.observations for r in self.results if r.skipped and r.run),
        }

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.error]


def reader_module(kind: str) -> ModuleType:
    """The reader module of ``kind``. Raises IngestError for an unknown kind."""
    if kind not in READERS:
        raise IngestError(f"unknown kind {kind!r}: expected one of {', '.join(sorted(READERS))}")
    return READERS[kind]


def source_files(kind: str, path: Path | str) -> list[Path]:
    """``path`` itself, or every file below the directory ``path`` matching the reader's FILE_PATTERNS, sorted."""
    path = Path(path).resolve()  # IngestRun.source_path is always absolute
    if not path.exists():
        raise IngestError(f"{path}: no such file or directory")
    if path.is_file():
        return [path]
    patterns = reader_module(kind).FILE_PATTERNS
    files = sorted({f for pattern in patterns for f in path.rglob(pattern) if f.is_file()})
    if not files:
        raise IngestError(f"{path}: no file matching {', '.join(patterns)} below it")
    return files


def file_checksums(paths: list[Path]) -> list[dict]:
    """``[{path, size, sha256}]`` of the given files."""
    return [{"path": str(f), "size": f.stat().st_size, "sha256": sha256(f)} for f in paths]


def combined_checksum(files: list[dict]) -> str:
    """One SHA-256 over the (name, sha256) pairs of a file and its companions, in order."""
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{Path(f['path']).name}:{f['sha256']}\n".encode())
    return digest.hexdigest()


def ingest(kind: str, paths: list[Path | str] | Path | str, *, network: str | None = None) -> IngestSummary:
    """Ingest every file of ``paths`` (files, or directories walked for the reader's patterns).

    Parameters
    ----------
    kind : a key of :data:`READERS`.
    paths : files or directories.
    network : overrides the network name the reader gives the stations (point data only).

    Returns
    -------
    IngestSummary, one :class:`FileResult` per file. A file that fails is recorded (failed
    IngestRun, error message naming the file) and the next files are still ingested; what
    earlier files loaded stays loaded.

    Raises
    ------
    IngestError
        Unknown kind, a path that does not exist, or a directory without matching files
        (raised before anything is read).
    """
    module = reader_module(kind)
    files = [f for p in ([paths] if isinstance(paths, str | Path) else paths) for f in source_files(kind, p)]
    summary = IngestSummary()
    for f in files:
        summary.results.append(ingest_file(kind, f, module=module, network=network))
    return summary


def ingest_file(kind: str, path: Path, *, module: ModuleType | None = None, network: str | None = None) -> FileResult:
    """Read and load one file in one transaction; see :func:`ingest`."""
    module = module or reader_module(kind)
    started = time.perf_counter()
    try:
        companions = list(getattr(module, "companions", lambda p: [])(path))
        files = file_checksums([path, *companions])
    except (OSError, ValueError) as exc:
        return FileResult(str(path), None, error=f"{path.name}: {exc}")
    checksum = combined_checksum(files)
    previous = IngestRun.objects.filter(kind=kind, source_path=str(path), status=IngestRun.Status.SUCCEEDED).first()
    version = getattr(module, "READER_VERSION", "1")
    # the same bytes read by the same reader version: nothing new; a newer reader (more variables) reads it again
    if previous and previous.checksum == checksum and previous.reader_version == version:
        return FileResult(str(path), previous, skipped=True)
    run = IngestRun.objects.create(
        kind=kind,
        source_path=str(path),
        checksum=checksum,
        files=files,
        reader=module.__name__,
        reader_version=version,
    )
    try:
        if kind == "grid":
            with transaction.atomic():
                register_grid(module.open_any(path), run=run, path=path)
        else:
            data: PointData = module.read(path)
            data.validate(path)
            if network:
                data.stations["network"] = network
            with transaction.atomic():
                if previous:  # the file changed: its new rows replace those of the previous run
                    Observation.objects.filter(ingest_run=previous).delete()
                    IngestRun.objects.filter(id=previous.id).update(status=IngestRun.Status.SUPERSEDED)
                stations, inserted, skipped = load_point_data(data, run)
            run.stations, run.observations, run.skipped_duplicates = stations, inserted, skipped
    except Exception as exc:  # every failure is recorded on the run, nothing of the file is written
        _finish(run, started, IngestRun.Status.FAILED, errors=f"{type(exc).__name__}: {exc}")
        return FileResult(str(path), run, error=str(exc) if str(path.name) in str(exc) else f"{path.name}: {exc}")
    _finish(run, started, IngestRun.Status.SUCCEEDED)
    return FileResult(str(path), run)


def _finish(run: IngestRun, started: float, status: str, errors: str = "") -> None:
    run.status, run.errors = status, errors
    run.finished_at = timezone.now()
    run.seconds = time.perf_counter() - started
    run.save()


def upsert_stations(stations) -> dict[tuple[str, str], int]:
    """Create or update the stations of a PointData station table, in one statement.

    ``INSERT ... ON CONFLICT (network, code) DO UPDATE``: a station already known (same network and
    code) takes the table's name, location, elevation, land cover and source, a new one is created;
    a (network, code) repeated in the table counts once, with its last row.

    Returns
    -------
    dict
        ``{(network, code): Station id}`` of every station of the table.
    """
    rows = {}
    for row in stations.itertuples(index=False):
        elevation = None if row.elevation != row.elevation else float(row.elevation)  # NaN -> None
        located = row.lat == row.lat and row.lon == row.lon
        rows[(row.network, row.code)] = Station(
            network=row.network,
            code=row.code,
            name=row.name,
            geom=Point(float(row.lon), float(row.lat), srid=4326) if located else None,
            elevation=elevation,
            land_cover=row.land_cover or "",
            source=row.source,
        )
    saved = Station.objects.bulk_create(
        rows.values(),
        update_conflicts=True,
        unique_fields=["network", "code"],
        update_fields=["name", "geom", "elevation", "land_cover", "source"],
    )
    return {(station.network, station.code): station.id for station in saved}


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
    station_id = {
        code: ids[(network, code)]
        for code, network in zip(data.stations["code"], data.stations["network"], strict=True)
    }
    obs = data.observations
    # Integers format much faster than timestamps: time travels as epoch seconds (UTC).
    table = pd.DataFrame(
        {
            "station_id": obs["station"].map(station_id),
            "variable": obs["variable"],
            "time": obs["time"].to_numpy().astype("datetime64[s]").astype("int64"),
            "value": obs["value"],
            "units": obs["units"],
            "quality_flag": obs["quality_flag"],
            "is_validation": obs["is_validation"],
        }
    )
    buffer = io.StringIO()
    table.to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS observation_staging")
        cursor.execute(
            "CREATE TEMP TABLE observation_staging (station_id bigint, variable text, time bigint, "
            "value double precision, units text, quality_flag text, is_validation boolean) ON COMMIT DROP"
        )
        with cursor.cursor.copy("COPY observation_staging FROM STDIN (FORMAT csv)") as copy:
            while block := buffer.read(1 << 22):
                copy.write(block)
        cursor.execute(
            "INSERT INTO ingestion_observation "
            "(station_id, variable, time, value, units, quality_flag, is_validation, ingest_run_id) "
            "SELECT station_id, variable, to_timestamp(time), value, units, coalesce(quality_flag, ''), "
            "is_validation, %s FROM observation_staging "
            "ON CONFLICT (station_id, variable, time, is_validation) DO NOTHING",
            [run.id],
        )
        inserted = cursor.rowcount
        cursor.execute("DROP TABLE observation_staging")
    return len(ids), inserted, len(table) - inserted


def register_grid(ds, *, run: IngestRun, path: Path) -> GridFile:
    """Record a gridded file's variables, extent, time span and grid (from ``gridtools.describe``)."""
    info = describe(ds)
    bbox = info.get("bbox")
    times = info.get("time") or {}

    def aware(value):
        return None if value is None else timezone.make_aware(dt.datetime.fromisoformat(str(value)[:19]), dt.UTC)

    return GridFile.objects.create(
        ingest_run=run,
        path=str(path),
        sha256=run.files[0]["sha256"],
        reader=run.reader,
        variables=info.get("variables", []),
        bbox=Polygon.from_bbox(bbox) if bbox else None,
        time_start=aware(times.get("start")),
        time_end=aware(times.get("end")),
        time_steps=times.get("steps", 0),
        grid=info.get("grid", {}),
    )


def cube_for(grid: GridFile) -> Path:
    """The chunked, compressed NetCDF4 copy of a registered grid, written on first use.

    Products read their gridded inputs from this store (``DATA_ROOT/cubes/<sha256>.nc``) rather
    than from the source files: one layout and one reader for every source format. Variables
    are chunked one time step by at most 256 x 256 cells (map-oriented; the layout for serving
    point series is chosen with the subset service) and deflated (zlib level 4). The file is
    written to a temporary name and moved into place, so a reader never sees half a cube; an
    existing cube with the same checksum is reused.

    Returns
    -------
    Path of the cube file.

    Raises
    ------
    ReaderError
        The source file no longer opens as it did when registered.
    """
    target = Path(settings.DATA_ROOT) / "cubes" / f"{grid.sha256}.nc"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with grids.open_any(grid.path) as ds:
            encoding = {}
            for name, var in ds.data_vars.items():
                if var.dtype.kind not in "fiu" or var.ndim == 0:
                    continue
                chunks = tuple(
                    1 if dim == "time" else min(size, 256) for dim, size in zip(var.dims, var.shape, strict=True)
                )
                encoding[name] = {"zlib": True, "complevel": 4, "chunksizes": chunks}
            partial = target.with_suffix(f".tmp{os.getpid()}")
            ds.attrs["source_file"], ds.attrs["source_sha256"] = grid.path, grid.sha256
            ds.to_netcdf(partial, format="NETCDF4", encoding=encoding)
        os.replace(partial, target)
    relative = str(target.relative_to(settings.DATA_ROOT))
    if grid.cube_path != relative:
        GridFile.objects.filter(id=grid.id).update(cube_path=relative)
        grid.cube_path = relative
    return target
