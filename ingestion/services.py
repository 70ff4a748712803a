"""Ingestion: every source file read by its reader, checked, and loaded all or nothing.

Point data (stations + long observation tables) are loaded with PostgreSQL binary ``COPY``
(psycopg 3, rows built by :mod:`ingestion.pgcopy`), in one transaction per file: a large file of
new stations into a partition of its own (indexed after the load, then attached), any other
into a staging table merged with ``INSERT ... ON CONFLICT DO NOTHING`` (:func:`load_point_data`).
Gridded files are registered (:class:`GridFile`: variables, extent, time span, grid), their
values stay in the files. Every file gets an :class:`IngestRun`; a file whose checksum
(over the file and its companions) was already loaded is skipped, and a changed file replaces
the rows of its previous run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
from django.contrib.gis.geos import Point, Polygon
from django.db import connection, transaction
from django.utils import timezone

from portal import storage
from products.methods.files import sha256

from .models import GridFile, IngestRun, Observation, Station
from .pgcopy import Column, binary_copy
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


# Observations of a run at least this large, whose stations have no observations yet, load into a partition of
# their own (indexes built after the load, foreign keys checked in one query); smaller runs merge through the parent.
PARTITION_MIN_ROWS = 100_000
# Serialises the choice and attachment of new observation partitions (pg_advisory_xact_lock key).
PARTITION_LOCK = 7_301_018
OBSERVATION_COLUMNS = (
    "station_id",
    "variable",
    "time",
    "value",
    "units",
    "quality_flag",
    "is_validation",
    "ingest_run_id",
)
IDENTITY = ["station_id", "variable", "time", "is_validation"]
_RANGE_BOUND = re.compile(r"FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)")


def observation_rows(data: PointData, station_id: dict[str, int], run_id: int) -> dict[str, np.ndarray]:
    """The observation table of a PointData as arrays of the database columns (:data:`OBSERVATION_COLUMNS`).

    ``station_id`` maps each station code to its Station id (int64); ``time`` stays datetime64[us]
    (naive UTC); text columns are object arrays (a missing quality flag is written as "").
    """
    obs = data.observations
    codes, uniques = pd.factorize(obs["station"].to_numpy(dtype=object))
    return {
        "station_id": np.array([station_id[code] for code in uniques], dtype=np.int64)[codes],
        "variable": obs["variable"].to_numpy(dtype=object),
        "time": obs["time"].to_numpy(dtype="datetime64[us]"),
        "value": obs["value"].to_numpy(dtype=np.float64),
        "units": obs["units"].to_numpy(dtype=object),
        "quality_flag": obs["quality_flag"].to_numpy(dtype=object),
        "is_validation": obs["is_validation"].to_numpy(dtype=bool),
        "ingest_run_id": np.full(len(obs), run_id, dtype=np.int64),
    }


def identity_order(rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``rows`` in the order of the observation identity (station, variable, time, validation flag),
    each identity once (the first given, as the merge keeps it).

    Rows copied in this order make the primary key's build a pass over presorted input and lay each
    station's series out contiguously. Rows already in that order are only checked; rows given series
    by series, each in time order (most readers write them so), have their series moved into place
    whole; anything else is sorted (stable). Variables are ordered by code point, as the database's
    C.UTF-8 collation orders them.
    """
    n = len(rows["station_id"])
    if n == 0:
        return rows
    variable, _ = pd.factorize(rows["variable"], sort=True)
    station, _ = pd.factorize(rows["station_id"], sort=True)
    series = station.astype(np.int64) * (int(variable.max()) + 1) + variable  # (station, variable), in order
    when, flag = rows["time"].view(np.int64), rows["is_validation"].astype(np.int8)
    same_series = series[1:] == series[:-1]
    step = np.where(when[1:] != when[:-1], np.sign(when[1:] - when[:-1]), flag[1:] - flag[:-1])
    order = None
    if (step[same_series] >= 0).all():  # each run of one series is in order
        starts = np.flatnonzero(np.r_[True, ~same_series])
        run_series = series[starts]
        if (np.diff(run_series) <= 0).any():
            if len(np.unique(run_series)) == len(run_series):  # one run per series: move the runs
                lengths = np.diff(np.r_[starts, n])
                by = np.argsort(run_series)
                moved_starts, moved_lengths = starts[by], lengths[by]
                shift = moved_starts - np.r_[0, np.cumsum(moved_lengths)[:-1]]
                order = np.repeat(shift, moved_lengths) + np.arange(n)
            else:
                order = np.lexsort((flag, when, series))
    else:
        order = np.lexsort((flag, when, series))  # stable: the first of equal identities stays first
    if order is not None:
        rows = {name: values[order] for name, values in rows.items()}
        series, when, flag = series[order], when[order], flag[order]
    same = (series[1:] == series[:-1]) & (when[1:] == when[:-1]) & (flag[1:] == flag[:-1])
    if same.any():
        keep = np.r_[True, ~same]
        rows = {name: values[keep] for name, values in rows.items()}
    return rows


def _copy_rows(cursor, table: str, rows: dict[str, np.ndarray]) -> None:
    """Binary COPY of ``rows`` (columns :data:`OBSERVATION_COLUMNS`) into ``table``."""
    types = {"station_id": "int8", "time": "timestamptz", "value": "float8", "is_validation": "bool"}
    columns = [
        Column(name, types.get(name, "text" if name != "ingest_run_id" else "int8"), rows[name])
        for name in OBSERVATION_COLUMNS
    ]
    with cursor.copy(f"COPY {table} ({', '.join(OBSERVATION_COLUMNS)}) FROM STDIN (FORMAT binary)") as copy:
        for block in binary_copy(columns):
            copy.write(block)


def _free_station_range(cursor, station_ids: np.ndarray) -> tuple[int, int] | None:
    """``(lo, hi)`` (hi exclusive) spanning ``station_ids`` when no observation of any station id in it exists
    and no partition covers any of it; None otherwise."""
    lo, hi = int(station_ids.min()), int(station_ids.max()) + 1
    cursor.execute(
        "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'ingestion_observation'::regclass"
    )
    for (bound,) in cursor.fetchall():
        match = _RANGE_BOUND.search(bound)
        if match and int(match[1]) < hi and lo < int(match[2]):
            return None
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM ingestion_observation WHERE station_id >= %s AND station_id < %s)", [lo, hi]
    )
    return None if cursor.fetchone()[0] else (lo, hi)


def _load_partition(cursor, rows: dict[str, np.ndarray], bounds: tuple[int, int], run: IngestRun, timings: dict) -> int:
    """COPY ``rows`` (no duplicate identities) into a new table, index it, check its keys, attach it."""
    table = f"ingestion_observation_r{run.id}"
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = timings.get(name, 0.0) + now - clock
        clock = now

    cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
    lo, hi = bounds
    # the range checked row by row as it is copied in, so that ATTACH need not scan the table for it
    cursor.execute(
        f"CREATE TABLE {table} (LIKE ingestion_observation INCLUDING DEFAULTS, "
        f"CONSTRAINT {table}_range CHECK (station_id >= {lo} AND station_id < {hi}))"
    )
    _copy_rows(cursor, table, rows)
    lap("copy")
    cursor.execute(
        f"ALTER TABLE {table} ADD CONSTRAINT {table}_identity PRIMARY KEY (station_id, variable, time, is_validation)"
    )
    cursor.execute(f"CREATE INDEX {table}_id_brin ON {table} USING brin (id)")
    lap("indexes")
    # the parent's foreign keys, checked here in one query each (not row by row at commit)
    cursor.execute(
        f"ALTER TABLE {table} "
        f"ADD CONSTRAINT {table}_station_fk FOREIGN KEY (station_id) REFERENCES ingestion_station (id) "
        "DEFERRABLE INITIALLY DEFERRED, "
        f"ADD CONSTRAINT {table}_run_fk FOREIGN KEY (ingest_run_id) REFERENCES ingestion_ingestrun (id) "
        "DEFERRABLE INITIALLY DEFERRED"
    )
    lap("foreign_keys")
    cursor.execute(f"ALTER TABLE ingestion_observation ATTACH PARTITION {table} FOR VALUES FROM ({lo}) TO ({hi})")
    lap("attach")
    return len(rows["station_id"])


def _merge(cursor, rows: dict[str, np.ndarray], timings: dict) -> int:
    """COPY ``rows`` into a staging table and insert those whose identity is new (ON CONFLICT DO NOTHING)."""
    clock = time.perf_counter()
    cursor.execute("DROP TABLE IF EXISTS observation_staging")
    cursor.execute(
        "CREATE TEMP TABLE observation_staging (station_id bigint, variable text, time timestamptz, "
        "value double precision, units text, quality_flag text, is_validation boolean, ingest_run_id bigint) "
        "ON COMMIT DROP"
    )
    _copy_rows(cursor, "observation_staging", rows)
    timings["copy"] = timings.get("copy", 0.0) + time.perf_counter() - clock
    clock = time.perf_counter()
    cursor.execute(
        f"INSERT INTO ingestion_observation ({', '.join(OBSERVATION_COLUMNS)}) "
        f"SELECT {', '.join(OBSERVATION_COLUMNS)} FROM observation_staging "
        "ON CONFLICT (station_id, variable, time, is_validation) DO NOTHING"
    )
    inserted = cursor.rowcount
    cursor.execute("DROP TABLE observation_staging")
    timings["merge"] = timings.get("merge", 0.0) + time.perf_counter() - clock
    return inserted


def load_point_data(
    data: PointData, run: IngestRun, *, timings: dict[str, float] | None = None
) -> tuple[int, int, int]:
    """Upsert stations and load observations (call inside a transaction).

    A run of at least :data:`PARTITION_MIN_ROWS` observations whose stations (and every station id
    between the smallest and largest of them) have no observation yet, and whose station id range
    no partition covers, is COPYed into a table of its own, indexed after the load, its foreign
    keys checked in one query each, and attached as the partition of that station id range. Any
    other run is COPYed into a staging table and merged into the parent with ``INSERT ... ON
    CONFLICT DO NOTHING`` (its rows go to the partition of their station, else the default one).
    Either way an observation whose identity (station, variable, time, validation flag) is already
    stored, or repeated in the file, is kept once, as first stored.

    Parameters
    ----------
    data : validated PointData (stations and long-form observations).
    run : the IngestRun the new rows are attributed to.
    timings : dict, optional
        Filled with the seconds of each step: ``stations``, ``format``, ``check`` (a run large
        enough for a partition of its own), then ``sort``, ``copy``, ``indexes``,
        ``foreign_keys`` and ``attach`` for a new partition, or ``copy`` (into staging) and
        ``merge`` otherwise. A new partition is not ANALYZEd here: autovacuum analyzes it
        after the commit, as any table with that many new rows.

    Returns
    -------
    (stations, inserted, skipped): stations upserted, observations inserted, and observations
    already present or repeated, which are left as they are.
    """
    timings = {} if timings is None else timings
    clock = time.perf_counter()
    ids = upsert_stations(data.stations)
    station_id = {
        code: ids[(network, code)]
        for code, network in zip(data.stations["code"], data.stations["network"], strict=True)
    }
    timings["stations"] = time.perf_counter() - clock
    clock = time.perf_counter()
    rows = observation_rows(data, station_id, run.id)
    timings["format"] = time.perf_counter() - clock
    n = len(rows["station_id"])
    with connection.cursor() as cursor:
        bounds = None
        if n >= PARTITION_MIN_ROWS:
            clock = time.perf_counter()
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITION_LOCK])
            bounds = _free_station_range(cursor, rows["station_id"])
            timings["check"] = time.perf_counter() - clock
        if bounds is not None:
            clock = time.perf_counter()
            fresh = identity_order(rows)
            timings["sort"] = time.perf_counter() - clock
            inserted = _load_partition(cursor.cursor, fresh, bounds, run, timings)
        else:
            inserted = _merge(cursor.cursor, rows, timings)
    return len(ids), inserted, n - inserted


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

    Products read their gridded inputs from this store (``DATA_ROOT/cubes/<sha256>.nc``, see
    :mod:`portal.storage`; on S3 a local read-through copy is returned) rather
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
    relative = f"cubes/{grid.sha256}.nc"
    if not storage.is_file(relative):
        partial = storage.work_root() / "tmp" / f"cube-{grid.sha256}.tmp{os.getpid()}.nc"  # local scratch
        partial.parent.mkdir(parents=True, exist_ok=True)
        with grids.open_any(grid.path) as ds:
            encoding = {}
            for name, var in ds.data_vars.items():
                if var.dtype.kind not in "fiu" or var.ndim == 0:
                    continue
                chunks = tuple(
                    1 if dim == "time" else min(size, 256) for dim, size in zip(var.dims, var.shape, strict=True)
                )
                encoding[name] = {"zlib": True, "complevel": 4, "chunksizes": chunks}
            ds.attrs["source_file"], ds.attrs["source_sha256"] = grid.path, grid.sha256
            ds.to_netcdf(partial, format="NETCDF4", encoding=encoding)
        storage.put_file(partial, relative)  # local: renamed into place; S3: uploaded whole
    if grid.cube_path != relative:
        GridFile.objects.filter(id=grid.id).update(cube_path=relative)
        grid.cube_path = relative
    return storage.local_path(relative)  # on S3 the read-through local copy (the readers need a file)
