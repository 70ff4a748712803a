"""The subset service: subsets, point series and area means of published grids, direct or as jobs.

One path for every caller (API, dataset page, OGC API-EDR, jobs):

1. :func:`parse_query` turns request parameters (query-string names, the same for the API and
   for a stored job) into a :class:`Query`, raising :class:`portal.subsets.core.SubsetError`
   naming the field;
2. :func:`plan` estimates the output (and, for area means, what must be read) from coordinates
   only and says whether it is answered directly, as an asynchronous job, or refused;
3. :func:`answer` writes the result (to a temporary file for a direct answer, into the job's
   folder for a job), reading through :func:`open_cube`, which picks the cube store
   (:mod:`portal.subsets.store`) that serves the request fastest.

Jobs: :func:`submit_job` (deduplicated by request), :func:`run_job` (the Celery task's body; a
heartbeat thread records progress), :func:`reap_stale_jobs` (a running job whose worker stopped
answering is marked failed), :func:`retry_job`, :func:`expire_jobs`. Every finished download is
logged by :func:`log_download`.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import dask
import xarray as xr
from dask.callbacks import Callback
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from portal.catalog.models import Dataset, DatasetFile, DatasetVersion
from products.methods.files import atomic_path, sha256

from . import core, store, writers
from .models import DownloadLog, SubsetJob

logger = logging.getLogger(__name__)

KINDS = ("subset", "point", "area")
"""What a query asks for: a gridded ``subset`` (box or polygon), a ``point`` series, an ``area`` mean series."""
SERIES_FORMATS = ("csv", "netcdf", "zarr", "coveragejson")
"""Formats of point and area series (GeoTIFF needs a grid)."""

# format -> (file suffix, media type)
OUTPUTS = {"netcdf": (".nc", "application/x-netcdf"), "geotiff": (".tif", "image/tiff"), "csv": (".csv", "text/csv"),
           "zarr": (".zarr.zip", "application/zip"), "coveragejson": (".covjson", "application/prs.coverage+json")}


class SubsetTooLarge(core.SubsetError):
    """The estimated output exceeds what the service writes, even as a job."""


@dataclass(frozen=True)
class Query:
    """A parsed request: ``kind``, the :class:`core.SubsetRequest`, the point for point series, and
    ``params`` (the request's parameters as given, kept for jobs and the download log)."""

    kind: str
    request: core.SubsetRequest
    params: Mapping[str, str]
    lon: float | None = None
    lat: float | None = None


@dataclass
class Plan:
    """What answering a query takes: ``estimated_bytes`` (uncompressed output), ``read_bytes``
    (uncompressed values read), ``mode`` (``direct``, ``job`` or ``refused``), ``detail``, and the
    cube store ``layout`` that reads it fastest (:func:`portal.subsets.store.choose_layout`)."""

    estimated_bytes: int
    read_bytes: int
    mode: str
    detail: str
    layout: str = "map"

    def as_dict(self) -> dict:
        return {"estimated_bytes": self.estimated_bytes, "read_bytes": self.read_bytes, "mode": self.mode,
                "direct_limit_bytes": settings.SUBSET_SYNC_MAX_BYTES, "job_limit_bytes": settings.SUBSET_JOB_MAX_BYTES,
                "detail": self.detail}


@dataclass
class SubsetResult:
    """A written answer: ``path``, ``filename`` (for the user), ``media_type``, ``size`` (bytes)."""

    path: Path
    filename: str
    media_type: str
    size: int


# --------------------------------------------------------------------------- finding and opening grids


def latest_version(dataset: Dataset, number: str | int | None) -> DatasetVersion:
    """Version ``number`` of ``dataset`` (the latest when empty).

    Raises
    ------
    portal.subsets.core.SubsetError
        Field ``version``: not an integer, or no such published version.
    """
    versions = dataset.versions.order_by("-number")
    if number in (None, ""):
        version = versions.first()
    else:
        try:
            version = versions.filter(number=int(number)).first()
        except (TypeError, ValueError):
            raise core.SubsetError("version", f"expected a version number, got {number!r}") from None
    if version is None:
        raise core.SubsetError("version", f"{dataset.id} has no published version {number or ''}".strip())
    return version


def gridded_file(version: DatasetVersion, name: str | None) -> DatasetFile:
    """The version's NetCDF file ``name``, or its only gridded one when ``name`` is empty.

    Raises
    ------
    portal.subsets.core.SubsetError
        Field ``file``: no such NetCDF file, or several and none named.
    """
    files = [f for f in version.files.all() if f.name.endswith(".nc")]
    if name:
        match = [f for f in files if f.name == name]
        if not match:
            raise core.SubsetError("file", f"{name!r} is not a NetCDF file of {version}: expected one of "
                                           f"{[f.name for f in files]}")
        return match[0]
    if len(files) != 1:
        raise core.SubsetError("file", f"{version} has {len(files)} NetCDF files: name one of {[f.name for f in files]}")
    return files[0]


def open_cube(f: DatasetFile, request: core.SubsetRequest | None = None, *, layout: str | None = None,
              chunked: bool = False) -> xr.Dataset:
    """Open the published grid ``f`` lazily, from the store that serves ``request`` fastest.

    Every reader of published grids (subset downloads, series, jobs, OGC API-EDR, OPeNDAP) opens
    them here; nothing is loaded until values are indexed. Use as a context manager.

    Parameters
    ----------
    f : DatasetFile
        A CF grid NetCDF of a published version (dims time, lat, lon).
    request : portal.subsets.core.SubsetRequest, optional
        What will be read: chooses the cube store with the fewest values to decompress
        (:func:`portal.subsets.store.choose_layout`). None: the map store.
    layout : {"map", "series"}, optional
        Force a store (point series always read the time-chunked one).
    chunked : bool
        Back the variables with dask arrays of the store's chunks (jobs: computed chunk by chunk,
        with progress); default plain lazy indexing (fastest for small reads).

    Returns
    -------
    xarray.Dataset
        CF-decoded (scale/offset/fill applied), lazily indexed.

    Raises
    ------
    portal.subsets.core.SubsetError
        As :func:`portal.subsets.core.select` for ``request``.

    Notes
    -----
    A version published before the cube stores existed is read from its NetCDF until
    ``manage.py build_cubes`` has built them.
    """
    nc = Path(settings.DATA_ROOT) / f.path
    paths = store.store_paths(nc)
    chunks = {} if chunked else None
    if not paths["map"].exists():
        return xr.open_dataset(nc, mask_and_scale=True, chunks=chunks)
    if layout is None:
        layout = "map"
        if request is not None:
            meta = planning_view(f)
            layout = store.choose_layout(core.selection_indices(meta, request), meta.sizes)
    return store.open_store(paths[layout], chunks=chunks)


def planning_view(f: DatasetFile) -> xr.Dataset:
    """The grid ``f`` opened once per process for planning: coordinates, dtypes and attributes only.

    Cached (the map store, or the NetCDF of a version without stores, keyed by its modification
    time); callers must not close it or read values through it. Saves an open (10-15 ms) per request.

    Raises
    ------
    FileNotFoundError
        The published file is missing.
    """
    nc = Path(settings.DATA_ROOT) / f.path
    target = store.store_paths(nc)["map"]
    if not target.exists():
        target = nc
    return _opened(str(target), target.stat().st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _opened(path: str, mtime_ns: int) -> xr.Dataset:
    if path.endswith(".zarr"):
        return store.open_store(path)
    return xr.open_dataset(path, mask_and_scale=True)


# --------------------------------------------------------------------------- parsing


def parse_query(kind: str, params: Mapping[str, str]) -> Query:
    """A :class:`Query` from request parameters (all strings, as in a query string).

    Parameters
    ----------
    kind : {"subset", "point", "area"}
    params : mapping
        ``variables`` (comma-separated), ``bbox`` (min_lon,min_lat,max_lon,max_lat; min_lon >
        max_lon crosses the antimeridian) or ``polygon`` (WKT or GeoJSON), ``lon`` and ``lat``
        (point series), ``time`` (start/end, ISO, either may be empty), ``time_stride``,
        ``space_stride``, ``f`` (format). Other keys (``version``, ``file``, ``estimate``) are
        ignored here.

    Raises
    ------
    portal.subsets.core.SubsetError
        Naming the field: malformed numbers, a missing point, a format the kind cannot have.
    """
    if kind not in KINDS:
        raise core.SubsetError("kind", f"expected one of {list(KINDS)}, got {kind!r}")

    def numbers(name, text, n):
        try:
            values = [float(v) for v in str(text).split(",")]
        except ValueError:
            raise core.SubsetError(name, f"expected {n} comma-separated numbers, got {text!r}") from None
        if len(values) != n:
            raise core.SubsetError(name, f"expected {n} comma-separated numbers, got {len(values)}")
        return values

    def integer(name):
        text = params.get(name) or "1"
        try:
            return int(text)
        except ValueError:
            raise core.SubsetError(name, f"expected an integer >= 1, got {text!r}") from None

    time_text = params.get("time") or None
    if time_text is not None and "/" not in time_text:
        raise core.SubsetError("time", f"expected start/end (ISO dates, either may be empty), got {time_text!r}")
    fmt = params.get("f") or ("netcdf" if kind == "subset" else "csv")
    if kind != "subset" and fmt not in SERIES_FORMATS:
        raise core.SubsetError("format", f"{fmt!r}: a {kind} series can be one of {list(SERIES_FORMATS)}")
    lon = lat = None
    if kind == "point":
        for name in ("lon", "lat"):
            if not params.get(name):
                raise core.SubsetError(name, "a point series needs lon and lat (degrees)")
        lon, lat = numbers("lon", params["lon"], 1)[0], numbers("lat", params["lat"], 1)[0]
    request = core.SubsetRequest(
        variables=[v for v in (params.get("variables") or "").split(",") if v],
        bbox=tuple(numbers("bbox", params["bbox"], 4)) if params.get("bbox") and kind != "point" else None,
        polygon=(params.get("polygon") or None) if kind != "point" else None,
        time=tuple(t or None for t in time_text.split("/", 1)) if time_text else None,
        time_stride=integer("time_stride"), space_stride=integer("space_stride"), format=fmt)
    if kind == "area" and request.bbox is None and request.geometry is None:
        raise core.SubsetError("bbox", "an area mean needs a bbox or a polygon")
    kept = {k: str(v) for k, v in params.items() if k not in ("estimate", "format") and v not in (None, "")}
    return Query(kind, request, kept, lon, lat)


# --------------------------------------------------------------------------- planning and answering


def plan(f: DatasetFile, query: Query) -> Plan:
    """Estimate a query from coordinates only and decide how it is answered.

    ``direct`` up to ``settings.SUBSET_SYNC_MAX_BYTES``, ``job`` up to
    ``settings.SUBSET_JOB_MAX_BYTES``, else ``refused`` with what to do instead. Subsets are
    judged by their output, area means by what they read, point series are always direct.

    Raises
    ------
    portal.subsets.core.SubsetError
        Empty, out-of-extent or malformed requests (naming the field).
    """
    ds = planning_view(f)
    if query.kind == "point":
        series, _ = core.point_series(ds, query.lon, query.lat, query.request.variables, query.request.time)
        size = int(series.nbytes)
        return Plan(size, size, "direct", "a point series is answered directly", "series")
    indices = core.selection_indices(ds, query.request)
    layout = store.choose_layout(indices, ds.sizes)
    read = core.estimate_bytes(ds, query.request)
    if query.kind == "area":
        n_time = len(indices["time"])
        size = n_time * 8 * (len(query.request.variables) or len(ds.data_vars)) + n_time * 8
    else:
        size = read
    mib = read / 2**20
    if read <= settings.SUBSET_SYNC_MAX_BYTES:
        return Plan(size, read, "direct", f"about {mib:.1f} MiB to read: answered directly", layout)
    if read <= settings.SUBSET_JOB_MAX_BYTES:
        return Plan(size, read, "job", f"about {mib:.0f} MiB to read: above the direct limit of "
                                       f"{settings.SUBSET_SYNC_MAX_BYTES / 2**20:.0f} MiB, so it runs as a job", layout)
    return Plan(size, read, "refused",
                f"about {mib / 1024:.1f} GiB, above the {settings.SUBSET_JOB_MAX_BYTES / 2**30:.0f} GiB limit of a job: "
                "split the request into smaller boxes or periods, use time_stride / space_stride, or ask for fewer variables",
                layout)


def prepare(dataset: Dataset, kind: str, params: Mapping[str, str]) -> tuple[DatasetFile, Query, Plan]:
    """Everything before an answer: the grid file (``version``, ``file``), the parsed query, its plan.

    A ``refused`` plan is returned, not raised (an estimate reports it); :func:`refuse` turns it
    into the error.

    Raises
    ------
    portal.subsets.core.SubsetError
        A bad field, an empty or out-of-extent request (naming the field).
    """
    version = latest_version(dataset, params.get("version"))
    f = gridded_file(version, params.get("file"))
    query = parse_query(kind, params)
    return f, query, plan(f, query)


def refuse(query: Query, estimate: Plan) -> SubsetTooLarge:
    """The error for a ``refused`` plan (field ``bbox``, ``time`` for point series; says what to do)."""
    return SubsetTooLarge("time" if query.kind == "point" else "bbox", estimate.detail)


def _compute(ds: xr.Dataset, query: Query) -> xr.Dataset:
    """The answer as a (lazy) dataset: the selection, the point series or the area mean."""
    if query.kind == "point":
        series, _ = core.point_series(ds, query.lon, query.lat, query.request.variables, query.request.time)
        return series
    if query.kind == "area":
        return core.area_mean(ds, query.request)
    return core.select(ds, query.request)


def answer(f: DatasetFile, query: Query, path: Path, *, chunked: bool = False, layout: str | None = None) -> None:
    """Write the answer to ``query`` on the grid ``f`` at ``path`` in ``query.request.format``.

    ``chunked``: compute with dask, chunk by chunk (jobs: bounded memory and progress callbacks);
    direct answers (at most ``SUBSET_SYNC_MAX_BYTES``) index the store directly, which is faster.
    ``layout``: the store to read (:attr:`Plan.layout`); chosen here when not given.

    Raises
    ------
    portal.subsets.core.SubsetError
        As :func:`portal.subsets.core.select`; nothing is left at ``path``.
    """
    dataset = f.version.dataset
    layout = layout or ("series" if query.kind == "point" else None)
    with open_cube(f, None if layout else query.request, layout=layout, chunked=chunked) as ds:
        result = _compute(ds, query)
        fmt = query.request.format
        if fmt == "netcdf":
            writers.to_netcdf(result, path, citation=dataset.ref_way_en or dataset.ref_way_cn or dataset.title_en,
                           complevel=1, attrs={"title": dataset.title_en, "doi": dataset.doi, "source_file": f.name,
                                  "source_version": f.version.number})
        elif fmt == "geotiff":
            writers.to_geotiff(result, path)
        elif fmt == "csv":
            writers.to_csv(result, path, drop_empty=query.kind == "subset" and query.request.geometry is not None)
        elif fmt == "zarr":
            writers.to_zarr_zip(result, path, attrs={"title": dataset.title_en, "doi": dataset.doi,
                                                  "citation": dataset.ref_way_en or dataset.title_en})
        else:
            document = writers.to_coveragejson(result.load())
            with atomic_path(path) as tmp:
                tmp.write_text(json.dumps(document))


def result_name(f: DatasetFile, query: Query) -> tuple[str, str]:
    """``(file name, media type)`` of the answer to ``query``."""
    suffix, media_type = OUTPUTS[query.request.format]
    stem = f"{f.version.dataset_id}_v{f.version.number}_{Path(f.name).stem}_{query.kind}"
    return stem + suffix, media_type


def answer_directly(f: DatasetFile, query: Query, layout: str | None = None) -> SubsetResult:
    """Write the answer to a temporary file the caller streams and deletes (``layout``: as :func:`answer`).

    Raises
    ------
    portal.subsets.core.SubsetError
        As :func:`answer`.
    """
    tmp_dir = Path(settings.DATA_ROOT) / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    name, media_type = result_name(f, query)
    fd, tmp = tempfile.mkstemp(suffix=Path(name).suffix, dir=tmp_dir)
    os.close(fd)
    out = Path(tmp)
    try:
        answer(f, query, out, layout=layout)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return SubsetResult(out, name, media_type, out.stat().st_size)


def log_download(*, user, f: DatasetFile | None, query: Query | None, size: int, seconds: float,
                 job: SubsetJob | None = None, client: str | None = None, kind: str | None = None,
                 params: Mapping[str, str] | None = None, format: str | None = None) -> DownloadLog:
    """Record a finished download (who, what, size, time).

    What was asked comes from ``job`` (a job's result), else ``query``, else ``kind``, ``params``
    and ``format`` (station subsets, which have no grid file ``f``).
    """
    if job is not None:
        kind, params = "job", job.params
    elif query is not None:
        kind, params, format = query.kind, query.params, query.request.format
    params = dict(params or {})
    return DownloadLog.objects.create(
        user=user if getattr(user, "is_authenticated", False) else None,
        dataset_id=f.version.dataset_id if f else None, version_number=f.version.number if f else None,
        file_name=f.name if f else "", kind=kind, params=params, format=format or params.get("f", ""),
        size=size, seconds=seconds, job=job, client=client)


# --------------------------------------------------------------------------- jobs


def request_key(f: DatasetFile, query: Query) -> str:
    """sha256 of version, file, kind and the normalised parameters (identical requests share a job)."""
    text = json.dumps([f.version_id, f.name, query.kind, sorted(query.params.items())])
    return hashlib.sha256(text.encode()).hexdigest()


def submit_job(f: DatasetFile, query: Query, estimate: Plan, user=None) -> tuple[SubsetJob, bool]:
    """Queue a job for ``query`` (or return the live job for the same request of the same user).

    Returns
    -------
    (SubsetJob, bool)
        The job and whether it was created now.
    """
    from .tasks import run_subset_job

    key = request_key(f, query)
    owner = user if getattr(user, "is_authenticated", False) else None
    live = (SubsetJob.objects.filter(request_key=key, user=owner)
            .exclude(status__in=[SubsetJob.Status.FAILED, SubsetJob.Status.EXPIRED]).first())
    if live is not None:
        return live, False
    with transaction.atomic():
        job = SubsetJob.objects.create(
            user=owner, dataset_id=f.version.dataset_id, version=f.version, file_name=f.name, kind=query.kind,
            params=dict(query.params), request_key=key, estimated_bytes=estimate.estimated_bytes)
        transaction.on_commit(lambda: run_subset_job.delay(str(job.id), job.attempt))
    return job, True


def retry_job(job: SubsetJob) -> SubsetJob:
    """Queue a failed job again (a new attempt; its old file, if any, is gone).

    Raises
    ------
    ValueError
        The job is not failed.
    """
    from .tasks import run_subset_job

    with transaction.atomic():
        job = SubsetJob.objects.select_for_update().get(id=job.id)
        if job.status != SubsetJob.Status.FAILED:
            raise ValueError(f"only a failed job can be retried; this one is {job.status}")
        job.status, job.attempt, job.progress, job.error = SubsetJob.Status.QUEUED, job.attempt + 1, 0.0, ""
        job.started_at = job.heartbeat_at = job.finished_at = None
        job.save()
        transaction.on_commit(lambda: run_subset_job.delay(str(job.id), job.attempt))
    return job


class _Progress(Callback):
    """dask callback counting finished tasks of the computations it watches."""

    def __init__(self):
        super().__init__()
        self.done = self.total = 0
        self.fraction = 0.0

    def _start_state(self, dsk, state):
        self.total += sum(len(state[k]) for k in ("ready", "waiting", "running")) or 1

    def _posttask(self, key, result, dsk, state, worker_id):
        self.done += 1
        self.fraction = min(0.99, self.done / max(self.total, 1))


def run_job(job_id: str, attempt: int) -> SubsetJob:
    """Carry out a job (the Celery task's body): write its file, record size, checksum, expiry.

    Progress (dask tasks done / total) and a heartbeat are written by a side thread every
    ``settings.SUBSET_JOB_HEARTBEAT_SECONDS``. A job that is not queued with this ``attempt``
    (already run, retried since, expired) is left alone. A failure is recorded with its reason.
    """
    with transaction.atomic():
        job = SubsetJob.objects.select_for_update().get(id=job_id)
        if job.status != SubsetJob.Status.QUEUED or job.attempt != attempt:
            logger.info("job %s attempt %s: nothing to do (%s, attempt %s)", job_id, attempt, job.status, job.attempt)
            return job
        now = timezone.now()
        job.status, job.started_at, job.heartbeat_at = SubsetJob.Status.RUNNING, now, now
        job.save(update_fields=["status", "started_at", "heartbeat_at"])
    progress, stop = _Progress(), threading.Event()

    def heartbeat():
        try:
            while not stop.wait(settings.SUBSET_JOB_HEARTBEAT_SECONDS):
                SubsetJob.objects.filter(id=job.id, attempt=attempt, status=SubsetJob.Status.RUNNING).update(
                    progress=progress.fraction, heartbeat_at=timezone.now())
        finally:
            connection.close()

    beat = threading.Thread(target=heartbeat, name=f"job-{job.id}-heartbeat", daemon=True)
    beat.start()
    folder = Path(settings.DATA_ROOT) / "jobs" / str(job.id)
    try:
        f = gridded_file(job.version, job.file_name)
        query = parse_query(job.kind, job.params)
        name, media_type = result_name(f, query)
        folder.mkdir(parents=True, exist_ok=True)
        with progress, dask.config.set(scheduler="threads"):
            answer(f, query, folder / name, chunked=True)
    except Exception as exc:  # the reason goes to the user; the worker goes on
        stop.set()
        beat.join()
        logger.exception("job %s failed", job.id)
        SubsetJob.objects.filter(id=job.id, attempt=attempt).update(
            status=SubsetJob.Status.FAILED, error=str(exc) or type(exc).__name__, finished_at=timezone.now())
        return SubsetJob.objects.get(id=job.id)
    stop.set()
    beat.join()
    path = folder / name
    finished = timezone.now()
    SubsetJob.objects.filter(id=job.id, attempt=attempt).update(
        status=SubsetJob.Status.DONE, progress=1.0, finished_at=finished, heartbeat_at=finished,
        result_path=str(path.relative_to(settings.DATA_ROOT)), result_name=name, media_type=media_type,
        size=path.stat().st_size, sha256=sha256(path),
        expires_at=finished + timedelta(hours=settings.SUBSET_JOB_TTL_HOURS))
    return SubsetJob.objects.get(id=job.id)


def reap_stale_jobs() -> int:
    """Mark failed every running job whose worker has not written a heartbeat for
    ``settings.SUBSET_JOB_STALE_SECONDS`` (the worker was killed or lost). Returns how many."""
    limit = timezone.now() - timedelta(seconds=settings.SUBSET_JOB_STALE_SECONDS)
    return SubsetJob.objects.filter(status=SubsetJob.Status.RUNNING, heartbeat_at__lt=limit).update(
        status=SubsetJob.Status.FAILED, finished_at=timezone.now(),
        error=f"the worker stopped answering (no heartbeat for {settings.SUBSET_JOB_STALE_SECONDS:.0f} s): "
              "retry the job")


def expire_jobs() -> int:
    """Delete the files of finished jobs past ``expires_at`` and mark them expired. Returns how many."""
    n = 0
    for job in SubsetJob.objects.filter(status=SubsetJob.Status.DONE, expires_at__lt=timezone.now()):
        if job.result_path:
            (Path(settings.DATA_ROOT) / job.result_path).unlink(missing_ok=True)
            try:
                (Path(settings.DATA_ROOT) / job.result_path).parent.rmdir()
            except OSError:
                pass
        SubsetJob.objects.filter(id=job.id).update(status=SubsetJob.Status.EXPIRED)
        n += 1
    return n


def job_file(job: SubsetJob) -> Path:
    """The finished job's result file."""
    return Path(settings.DATA_ROOT) / job.result_path


def download_script(job: SubsetJob, url: str, tool: str) -> str:
    """A shell script that fetches the job's file with ``curl`` or ``wget`` and checks its sha256.

    Raises
    ------
    ValueError
        ``tool`` is neither ``curl`` nor ``wget``.
    """
    if tool not in ("curl", "wget"):
        raise ValueError(f"tool: expected curl or wget, got {tool!r}")
    fetch = (f"curl --fail --location --retry 3 -o '{job.result_name}' '{url}'" if tool == "curl"
             else f"wget --tries=3 -O '{job.result_name}' '{url}'")
    return ("#!/bin/sh\n"
            f"# {job.kind} job {job.id} of dataset {job.dataset_id} v{job.version.number} ({job.size} bytes)\n"
            f"# the file expires at {job.expires_at:%Y-%m-%d %H:%M} UTC\n"
            "set -e\n"
            f"{fetch}\n"
            f"echo '{job.sha256}  {job.result_name}' | sha256sum -c -\n")
