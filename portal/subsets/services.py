"""The subset service: subsets, point series and area means of published grids, direct or as jobs.

One path for every front door (dataset API, dataset page, ``POST /api/jobs/``, OGC API-EDR):
:func:`handle` takes a request's parameters and returns an :class:`Answer`. On the way:

1. :func:`portal.catalog.access.check_download`, the one access check;
2. :mod:`portal.subsets.params` parses the parameters into a :class:`~portal.subsets.params.Query`
   (unknown names, bad values and bad times refused, naming the parameter as the user wrote it);
3. :func:`plan` works out the selection once, from coordinates only, estimates the output and
   says whether it is answered directly, as an asynchronous job, or refused;
4. :func:`answer` writes the result with :mod:`portal.subsets.writers` (to a temporary file for a
   direct answer, into the job's folder for a job), reading through :func:`open_cube` the cube
   store (:mod:`portal.subsets.store`) the plan chose.

Jobs: :func:`submit_job` (deduplicated by request and owner; quotas of live jobs applied),
:func:`run_job` (the Celery task's body; a heartbeat thread records progress and notices a
cancellation), :func:`reap_stale_jobs` (a running job whose worker stopped answering is marked
failed), :func:`retry_job`, :func:`cancel_job`, :func:`expire_jobs`. A job belongs to its owner
(:mod:`portal.subsets.ownership`). Every finished download is logged by :func:`log_download`;
a direct answer first passes the day's byte quota (:func:`portal.limits.check_bytes`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import dask
import xarray as xr
from dask.callbacks import Callback
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from portal import limits, queue, storage
from portal.catalog import access, metadata
from portal.catalog.models import Dataset, DatasetFile, DatasetVersion
from portal.files import bytes_sent, media_type_for, stored_file_response
from products.methods.files import sha256

from . import core, ownership, store, writers
from . import params as params_module
from .models import DownloadLog, SubsetJob
from .params import KINDS, SERIES_FORMATS, Query

__all__ = [
    "KINDS",
    "SERIES_FORMATS",
    "Query",
    "Answer",
    "Plan",
    "QueueUnavailable",
    "SubsetResult",
    "SubsetTooLarge",
    "handle",
]

logger = logging.getLogger(__name__)

SUFFIXES = {"netcdf": ".nc", "geotiff": ".tif", "csv": ".csv", "zarr": ".zarr.zip", "coveragejson": ".covjson"}
"""format -> file suffix of the answer (its media type: :func:`portal.files.media_type_for`)."""


class SubsetTooLarge(core.SubsetError):
    """The estimated output exceeds what the front door answers; ``job`` is the equivalent
    ``POST /api/jobs/`` body when a job would take it (front doors that answer only directly)."""

    def __init__(self, field: str, message: str, job: dict[str, Any] | None = None):
        super().__init__(field, message)
        self.job = job

    def __reduce__(self):
        return (type(self), (self.field, self.message, self.job))


class QueueUnavailable(RuntimeError):
    """The job could not be handed to the broker; the job (``job``) is marked failed, to be retried."""

    def __init__(self, message: str, job: SubsetJob):
        super().__init__(message)
        self.job = job


@dataclass
class Plan:
    """What answering a query takes: ``estimated_bytes`` (uncompressed output), ``read_bytes``
    (uncompressed values read), ``mode`` (``direct``, ``job`` or ``refused``), ``detail``, the
    cube store ``layout`` that reads it fastest (:func:`portal.subsets.store.choose_layout`), and
    the ``selection`` (:func:`portal.subsets.core.plan_selection`; None for point series)."""

    estimated_bytes: int
    read_bytes: int
    mode: str
    detail: str
    layout: str = "map"
    selection: core.Selection | None = None

    def as_dict(self) -> dict:
        return {
            "estimated_bytes": self.estimated_bytes,
            "read_bytes": self.read_bytes,
            "mode": self.mode,
            "direct_limit_bytes": settings.SUBSET_SYNC_MAX_BYTES,
            "job_limit_bytes": settings.SUBSET_JOB_MAX_BYTES,
            "detail": self.detail,
        }


@dataclass
class SubsetResult:
    """A written answer: ``path``, ``filename`` (for the user), ``media_type``, ``size`` (bytes)."""

    path: Path
    filename: str
    media_type: str
    size: int


@dataclass
class Answer:
    """What :func:`handle` returns: ``mode`` ``estimate``, ``job`` or ``file``, the parsed
    ``query``, its ``plan``, the grid ``file``; the ``job`` (and whether it was ``created`` now)
    for a job; the written ``result`` for a file."""

    mode: str
    query: Query
    plan: Plan
    file: DatasetFile
    job: SubsetJob | None = None
    created: bool = False
    result: SubsetResult | None = None


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
        if not str(number).isascii() or not str(number).strip().isdigit() or len(str(number)) > 9:
            raise core.SubsetError("version", f"expected a version number (ASCII digits), got {str(number)[:20]!r}")
        version = versions.filter(number=int(number)).first()
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
            raise core.SubsetError(
                "file", f"{name!r} is not a NetCDF file of {version}: expected one of {[f.name for f in files]}"
            )
        return match[0]
    if len(files) != 1:
        raise core.SubsetError(
            "file", f"{version} has {len(files)} NetCDF files: name one of {[f.name for f in files]}"
        )
    return files[0]


def open_cube(
    f: DatasetFile, request: core.SubsetRequest | None = None, *, layout: str | None = None, chunked: bool = False
) -> xr.Dataset:
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
    chunks = {} if chunked else None
    source, _ = cube_source(f)
    if source == f.path:
        return storage.open_dataset(f.path, mask_and_scale=True, chunks=chunks)
    if layout is None:
        layout = "map"
        if request is not None:
            meta = planning_view(f)
            layout = store.choose_layout(core.selection_indices(meta, request), meta.sizes)
    return storage.open_zarr(store.store_paths(f.path)[layout].as_posix(), chunks=chunks)


def cube_source(f: DatasetFile) -> tuple[str, tuple]:
    """What plans and reads of the grid ``f`` open first: the map store, or the NetCDF of a version
    without stores, as ``(path relative to the data root, version token)``.

    On disk the token is the target's modification time and size (checked on every call, as a
    rebuilt store changes it); on S3 published objects never change, so the answer is remembered
    per file and checksum (no request to the store).

    Raises
    ------
    FileNotFoundError
        The published file is missing.
    """
    target = store.store_paths(f.path)["map"].as_posix()
    if storage.is_remote():
        return _remote_source(storage.root(), f.path, target, f.sha256)
    if not storage.exists(target):
        target = f.path
    return target, storage.version_token(target)


@functools.lru_cache(maxsize=256)
def _remote_source(root: str, nc: str, target: str, sha256: str) -> tuple[str, tuple]:
    if storage.is_file(f"{target}/.zmetadata"):
        return target, (sha256,)
    if not storage.is_file(nc):
        raise FileNotFoundError(f"{nc} is not in the data root")
    return nc, (sha256,)


def planning_view(f: DatasetFile) -> xr.Dataset:
    """The grid ``f`` opened once per process for planning: coordinates, dtypes and attributes only.

    Cached (the map store, or the NetCDF of a version without stores, keyed by its modification
    time); callers must not close it or read values through it. Saves an open (10-15 ms) per request.

    Raises
    ------
    FileNotFoundError
        The published file is missing.
    """
    target, token = cube_source(f)
    return _opened(storage.root(), target, token)


@functools.lru_cache(maxsize=32)
def _opened(root: str, relative: str, token: tuple) -> xr.Dataset:
    if relative.endswith(".zarr"):
        return storage.open_zarr(relative)
    return storage.open_dataset(relative, mask_and_scale=True)


# --------------------------------------------------------------------------- planning and answering


def plan(f: DatasetFile, query: Query) -> Plan:
    """Estimate a query from coordinates only and decide how it is answered.

    ``direct`` up to ``settings.SUBSET_SYNC_MAX_BYTES``, ``job`` up to
    ``settings.SUBSET_JOB_MAX_BYTES``, else ``refused`` with what to do instead. Subsets are
    judged by their output, area means by what they read, point series are always direct. The
    selection is worked out once, here, and carried in the plan to :func:`answer`.

    Raises
    ------
    portal.subsets.core.SubsetError
        Empty, out-of-extent or malformed requests (naming the field); ``variables``: several
        variables asked for as one GeoTIFF.
    """
    ds = planning_view(f)
    if query.kind == "point":
        series, _ = core.point_series(
            ds, query.lon, query.lat, query.request.variables, query.request.time, companions=False
        )
        size = int(series.nbytes)
        return Plan(size, size, "direct", "a point series is answered directly", "series")
    selection = core.plan_selection(ds, query.request)
    if query.request.format == "geotiff" and len(selection.variables) > 1:
        raise core.SubsetError(
            "variables",
            f"a GeoTIFF holds one variable: choose one of {selection.variables} "
            "(variables=...), or use f=netcdf or f=zarr for several",
        )
    indices = core.selection_indices(ds, query.request, selection)
    layout = store.choose_layout(indices, ds.sizes)
    read = core.estimate_bytes(ds, query.request, selection)
    if query.kind == "area":
        n_time = len(indices["time"])
        size = n_time * 8 * len(selection.variables) + n_time * 8
    else:
        size = read
    mib = read / 2**20
    if read <= settings.SUBSET_SYNC_MAX_BYTES:
        return Plan(size, read, "direct", f"about {mib:.1f} MiB to read: answered directly", layout, selection)
    if read <= settings.SUBSET_JOB_MAX_BYTES:
        return Plan(
            size,
            read,
            "job",
            f"about {mib:.0f} MiB to read: above the direct limit of "
            f"{settings.SUBSET_SYNC_MAX_BYTES / 2**20:.0f} MiB, so it runs as a job",
            layout,
            selection,
        )
    return Plan(
        size,
        read,
        "refused",
        f"about {mib / 1024:.1f} GiB, above the {settings.SUBSET_JOB_MAX_BYTES / 2**30:.0f} GiB limit of a job: "
        "split the request into smaller boxes or periods, use time_stride / space_stride, or ask for fewer variables",
        layout,
        selection,
    )


def handle(
    dataset: Dataset,
    kind: str,
    params: Mapping[str, str],
    *,
    user,
    client: str | None = None,
    front_door: str = "api",
    accept: str | None = None,
    file: str | None = None,
    version: int | None = None,
    jobs: bool = True,
    force_job: bool = False,
    owner_key: Callable[[], str] | None = None,
) -> Answer:
    """The one path of a subset request, from its parameters to an answer, for every front door.

    Checks access, parses the parameters (:mod:`portal.subsets.params`), finds the version and
    grid file, plans once, then estimates, queues a job, refuses, or writes the file (logged).

    Parameters
    ----------
    dataset : Dataset
    kind : str
        ``subset``, ``point`` or ``area`` (dataset API and jobs), or an EDR query type
        (``position``, ``area``, ``cube``) when ``front_door`` is ``edr``.
    params : mapping of str to str
        The request's query parameters (the API's ``version`` and ``file`` choose the grid).
    user : User or AnonymousUser
    client : str, optional
        The client's address, for the download log and the quotas (:mod:`portal.limits`).
    front_door : {"api", "edr"}
        Which parameters are accepted, and how errors name them.
    accept : str, optional
        HTTP Accept header (EDR chooses the format from it when ``f`` is absent).
    file : str, optional
        The grid file of an EDR collection (EDR has no ``file`` parameter).
    version : int, optional
        The version of an EDR collection (EDR has no version parameter); default the latest.
    jobs : bool
        Whether a request above the direct limit may become a job (EDR answers only directly: it
        gets :class:`SubsetTooLarge` with the equivalent job request in ``job``).
    force_job : bool
        Queue a job whatever the size (``POST /api/jobs/``).
    owner_key : callable, optional
        Called (only when an anonymous request becomes a job) for the anonymous owner's key
        (:func:`portal.subsets.ownership.anonymous_key`); without it an anonymous job has no owner
        but staff.

    Returns
    -------
    Answer
        ``mode`` ``estimate`` (only the plan), ``job`` (queued or an identical live one) or
        ``file`` (a temporary file the caller streams and deletes).

    Raises
    ------
    portal.catalog.access.AccessDenied
        The user may not download from the dataset.
    portal.limits.QuotaExceeded
        Too many live jobs (a new job), or the day's bytes would be passed (a direct answer).
    SubsetTooLarge
        Above what is answered (naming the parameter; says what to do instead).
    portal.subsets.core.SubsetError
        A bad, unknown, empty or out-of-extent parameter, named as the user wrote it.
    """
    access.check_download(user, dataset)
    query_type = kind
    try:
        if front_door == "edr":
            query = params_module.parse_edr(kind, params, accept, file=file, version=version)
        else:
            query = params_module.parse_api(kind, params)
        version = latest_version(dataset, query.params.get("version"))
        f = gridded_file(version, query.params.get("file"))
        estimate = plan(f, query)
        if query.estimate:
            return Answer("estimate", query, estimate, f)
        if estimate.mode == "refused":
            raise SubsetTooLarge("time" if query.kind == "point" else "bbox", estimate.detail)
        if estimate.mode == "job" or force_job:
            if not jobs:
                raise _direct_only(f, query, estimate)
            anonymous = not getattr(user, "is_authenticated", False)
            job, created = submit_job(
                f,
                query,
                estimate,
                user,
                client=client,
                owner_key=ownership.hash_key(owner_key()) if anonymous and owner_key else "",
            )
            return Answer("job", query, estimate, f, job=job, created=created)
        limits.check_bytes(user, client, estimate.estimated_bytes)
        start = time.monotonic()
        result = answer_directly(f, query, estimate)
    except params_module.UnknownParameter:
        raise  # named as sent already
    except core.SubsetError as exc:
        exc.field = params_module.public_name(exc.field, front_door, query_type)
        exc.args = (f"{exc.field}: {exc.message}",)
        raise
    try:
        log_download(user=user, f=f, query=query, size=result.size, seconds=time.monotonic() - start, client=client)
    except BaseException:  # the answer is not sent: its file must not stay behind
        result.path.unlink(missing_ok=True)
        raise
    return Answer("file", query, estimate, f, result=result)


def _direct_only(f: DatasetFile, query: Query, estimate: Plan) -> SubsetTooLarge:
    """The refusal of a front door that answers only directly, with the equivalent job request."""
    field = "time" if query.kind == "point" else "bbox"
    size = f"about {estimate.read_bytes / 2**20:.3g} MiB to read"
    limit = f"the {settings.SUBSET_SYNC_MAX_BYTES / 2**20:.3g} MiB answered directly"
    if estimate.mode != "job":
        return SubsetTooLarge(
            field, f"{size}, above {limit} and above the size of an asynchronous job (/api/jobs/): {estimate.detail}"
        )
    job = {"dataset": f.version.dataset_id, "kind": query.kind, "params": dict(query.params)}
    return SubsetTooLarge(
        field,
        f"{size}, above {limit}: ask for a smaller area or period or fewer parameters, "
        f"or submit it as an asynchronous job: POST /api/jobs/ with {json.dumps(job)}",
        job,
    )


def _compute(ds: xr.Dataset, query: Query, selection: core.Selection | None) -> xr.Dataset:
    """The answer as a (lazy) dataset: the selection, the point series or the area mean."""
    if query.kind == "point":
        series, _ = core.point_series(ds, query.lon, query.lat, query.request.variables, query.request.time)
        return series
    if query.kind == "area":
        return core.area_mean(ds, query.request, selection)
    return core.select(ds, query.request, selection)


def answer(f: DatasetFile, query: Query, path: Path, *, estimate: Plan | None = None, chunked: bool = False) -> None:
    """Write the answer to ``query`` on the grid ``f`` at ``path`` in ``query.request.format``.

    ``estimate``: the query's :func:`plan` (its selection and cube store are reused; planned here
    when not given). ``chunked``: compute with dask, chunk by chunk (jobs: bounded memory and
    progress callbacks); direct answers (at most ``SUBSET_SYNC_MAX_BYTES``) index the store
    directly, which is faster. Global attributes: the source file's, the record's
    (:func:`portal.catalog.metadata.acdd_attributes`) and the extent of the answer.

    Raises
    ------
    portal.subsets.core.SubsetError
        As :func:`portal.subsets.core.select`; nothing is left at ``path``.
    """
    estimate = estimate or plan(f, query)
    with open_cube(f, layout=estimate.layout, chunked=chunked) as ds:
        result = _compute(ds, query, estimate.selection)
        attrs = {}
        if query.request.format in writers.WITH_GLOBAL_ATTRIBUTES:  # the record's attributes (people, tags and
            # the formatted citation: a fifth of a point request's time) only for the formats that hold them
            record = metadata.acdd_attributes(f.version.dataset, f.version)
            # platform and instrument are the published file's own (a synthetic twin names none): kept from it
            attrs = {
                **{k: v for k, v in record.items() if k not in metadata.FILE_LEVEL},
                "source_file": f.name,
                "source_version": str(f.version.number),
            }
        writers.write(
            result,
            path,
            query.request.format,
            attrs=attrs,
            drop_empty=query.kind == "subset" and query.request.geometry is not None,
        )


def _token(text: str, limit: int = 40) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-")[:limit] or "x"


def _number(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".")


def result_name(f: DatasetFile, query: Query) -> tuple[str, str]:
    """``(file name, media type)`` of the answer: what it holds, so that two answers never share a name.

    ``<product>_v<n>_<variables>_<region>_<period>_<kind><suffix>``: the product (or dataset id),
    the version, up to three variable names (``all`` for every one), the box (``bbox<W>_<S>_<E>_<N>``),
    the polygon's bounds and a hash of it, or the point, the period (``all`` when open), and for
    strided requests the strides; a file chosen among several grids is named too.
    """
    suffix = SUFFIXES[query.request.format]
    media_type = media_type_for(suffix)
    request = query.request
    product = (f.version.lineage or {}).get("product") or f.version.dataset_id
    parts = [_token(product), f"v{f.version.number}"]
    if query.params.get("file"):
        parts.append(_token(Path(f.name).stem))
    names = list(request.variables)
    parts.append(
        "-".join(_token(v, 20) for v in names[:3]) + (f"+{len(names) - 3}" if len(names) > 3 else "")
        if names
        else "all"
    )
    if query.kind == "point":
        parts.append(f"point{_number(query.lon)}_{_number(query.lat)}")
    elif request.geometry is not None:
        digest = hashlib.sha256(request.geometry.wkb).hexdigest()[:8]
        parts.append("polygon" + "_".join(_number(v) for v in request.geometry.bounds) + f"-{digest}")
    elif request.bbox is not None:
        parts.append("bbox" + "_".join(_number(v) for v in request.bbox))
    else:
        parts.append("global")
    if request.time is not None:
        parts.append(
            "_".join(
                _token(core.iso_time(t) if not isinstance(t, str) else t) if t is not None else "open"
                for t in request.time
            )
        )
    else:
        parts.append("alltime")
    if request.time_stride > 1 or request.space_stride > 1:
        parts.append(f"stride{request.time_stride}x{request.space_stride}")
    parts.append(query.kind)
    return "_".join(parts) + suffix, media_type


def answer_directly(f: DatasetFile, query: Query, estimate: Plan | None = None) -> SubsetResult:
    """Write the answer to a temporary file the caller streams and deletes (``estimate``: as :func:`answer`).

    Raises
    ------
    portal.subsets.core.SubsetError
        As :func:`answer`; nothing is left behind.
    """
    tmp_dir = storage.work_root() / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    name, media_type = result_name(f, query)
    fd, tmp = tempfile.mkstemp(suffix=Path(name).suffix, dir=tmp_dir)
    os.close(fd)
    out = Path(tmp)
    try:
        answer(f, query, out, estimate=estimate)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return SubsetResult(out, name, media_type, out.stat().st_size)


def send_published(
    request,
    f: DatasetFile,
    relative: str,
    *,
    kind: str,
    content_type: str,
    filename: str,
    sha256: str | None = None,
    params: Mapping[str, str] | None = None,
    format: str = "",
):
    """A file of a published version (the file itself, or a file of its Zarr stores) at ``relative`` under
    the data root, once the access policy has let the user in: the day's byte quota (GET), ranges and
    validators (versions are immutable: a year's immutable cache, private unless anyone may download;
    ``sha256`` as the ``Digest``), and a GET answered 200/206 logged with the bytes sent (and the range of
    a 206). On S3 a large file is a 302 to a pre-signed URL (:func:`portal.files.stored_file_response`),
    logged with the file's size.

    Raises
    ------
    portal.limits.QuotaExceeded
        The day's bytes are used up (the front door answers 429 in its own shape).
    """
    client = request.META.get("REMOTE_ADDR")
    if request.method == "GET":
        try:
            planned = storage.size(relative)
        except (OSError, storage.StorageError):
            planned = 0  # answered 404 below
        limits.check_bytes(request.user, client, planned)
    response = stored_file_response(
        request,
        relative,
        filename=filename,
        content_type=content_type,
        immutable=True,
        private=not access.public_anonymously(f.version.dataset),
        sha256=sha256,
    )
    if request.method == "GET" and response.status_code in (200, 206, 302):  # not HEAD, 304 or 416
        params = {
            **(params or {}),
            **({"range": request.META["HTTP_RANGE"][:200]} if response.status_code == 206 else {}),
        }
        log_download(
            user=request.user,
            f=f,
            query=None,
            size=bytes_sent(response),
            seconds=0.0,
            client=client,
            kind=kind,
            format=format,
            params=params,
        )
    return response


def log_download(
    *,
    user,
    f: DatasetFile | None,
    query: Query | None,
    size: int,
    seconds: float,
    job: SubsetJob | None = None,
    client: str | None = None,
    kind: str | None = None,
    params: Mapping[str, str] | None = None,
    format: str | None = None,
) -> DownloadLog:
    """Record a finished download (who, what, size, time).

    What was asked comes from ``job`` (a job's result), else ``query``, else ``kind``, ``params``
    and ``format`` (station subsets, which have no grid file ``f``).
    """
    if job is not None:
        kind, params = "job", job.params
    elif query is not None:
        kind, params, format = query.kind, query.params, query.request.format
    params = dict(params or {})
    with transaction.atomic():
        # Asynchronous commit (PostgreSQL 30.4): the log entry does not wait for its WAL flush, a 4 ms
        # fsync on this machine's disk, a quarter of a request's budget above raw reading. A database
        # crash may lose the last fraction of a second of entries (never corrupt them): their bytes are
        # then missing from the day's quota, which is acceptable for a log.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        return DownloadLog.objects.create(
            user=user if getattr(user, "is_authenticated", False) else None,
            dataset_id=f.version.dataset_id if f else None,
            version_number=f.version.number if f else None,
            file_name=f.name if f else "",
            kind=kind,
            params=params,
            format=format or params.get("f", ""),
            size=size,
            seconds=seconds,
            job=job,
            client=client,
        )


# --------------------------------------------------------------------------- jobs


def request_key(f: DatasetFile, query: Query, owner: str = "") -> str:
    """sha256 of version, file, kind, the normalised parameters and the owner (``user:<id>`` or
    ``anonymous:<owner key>``): the same owner's identical requests share a job, two owners' never do."""
    text = json.dumps([f.version_id, f.name, query.kind, sorted(query.params.items()), owner])
    return hashlib.sha256(text.encode()).hexdigest()


LIVE = (SubsetJob.Status.QUEUED, SubsetJob.Status.RUNNING, SubsetJob.Status.DONE)
"""A job in one of these states is returned for an identical request of its owner instead of a new one."""


def submit_job(
    f: DatasetFile, query: Query, estimate: Plan, user=None, *, client: str | None = None, owner_key: str = ""
) -> tuple[SubsetJob, bool]:
    """Queue a job for ``query`` (or return the owner's live job for the same request).

    Parameters
    ----------
    f, query, estimate
        The grid, the parsed request and its :func:`plan`.
    user : User or AnonymousUser, optional
        A signed-in user owns the job.
    client : str, optional
        The requesting address (recorded; the anonymous quota of live jobs counts by it).
    owner_key : str
        For an anonymous job: the sha256 of its owner's key (:mod:`portal.subsets.ownership`).

    Returns
    -------
    (SubsetJob, bool)
        The job and whether it was created now.

    Raises
    ------
    portal.limits.QuotaExceeded
        The owner already has as many queued or running jobs as allowed (nothing is created).
    """
    owner = user if getattr(user, "is_authenticated", False) else None
    key = request_key(f, query, f"user:{owner.pk}" if owner else f"anonymous:{owner_key}")
    live = SubsetJob.objects.filter(
        request_key=key, user=owner, owner_key="" if owner else owner_key, status__in=LIVE
    ).first()
    if live is not None:
        return live, False
    limits.check_jobs(user, client)
    with transaction.atomic():
        job = SubsetJob.objects.create(
            user=owner,
            owner_key="" if owner else owner_key,
            client=client,
            dataset_id=f.version.dataset_id,
            version=f.version,
            file_name=f.name,
            kind=query.kind,
            params=dict(query.params),
            request_key=key,
            estimated_bytes=estimate.estimated_bytes,
        )
        _enqueue(job)
    return job, True


def _enqueue(job: SubsetJob) -> None:
    """Hand attempt ``job.attempt`` to the broker once the transaction that queued it commits
    (task ``subsets.run_job``, by name: :func:`portal.queue.enqueue_on_commit`).

    Raises
    ------
    QueueUnavailable
        (after the commit) The broker cannot be reached (after a short, bounded retry): the job
        is marked failed with the reason, so nothing stays "queued" for ever; it can be retried.
    """

    def unavailable(exc: Exception) -> None:
        message = "the job queue is unavailable at the moment: retry the job in a minute"
        SubsetJob.objects.filter(id=job.id, attempt=job.attempt, status=SubsetJob.Status.QUEUED).update(
            status=SubsetJob.Status.FAILED, error=message, finished_at=timezone.now()
        )
        job.refresh_from_db()
        raise QueueUnavailable(message, job) from exc

    queue.enqueue_on_commit("subsets.run_job", (str(job.id), job.attempt), on_unavailable=unavailable)


def retry_job(job: SubsetJob) -> SubsetJob:
    """Queue a failed or cancelled job again (a new attempt; its old file, if any, is gone).

    Raises
    ------
    ValueError
        The job is neither failed nor cancelled.
    portal.limits.QuotaExceeded
        Its owner already has as many queued or running jobs as allowed.
    """

    with transaction.atomic():
        job = SubsetJob.objects.select_for_update().get(id=job.id)
        if job.status not in (SubsetJob.Status.FAILED, SubsetJob.Status.CANCELLED):
            raise ValueError(f"only a failed or cancelled job can be retried; this one is {job.status}")
        limits.check_jobs(job.user, job.client)
        job.status, job.attempt, job.progress, job.error = SubsetJob.Status.QUEUED, job.attempt + 1, 0.0, ""
        job.started_at = job.heartbeat_at = job.finished_at = None
        job.save()
        _enqueue(job)
    return job


def cancel_job(job: SubsetJob) -> SubsetJob:
    """Cancel a queued or running job.

    A queued job never runs (its task finds it cancelled); a running one stops at its worker's
    next heartbeat (``settings.SUBSET_JOB_HEARTBEAT_SECONDS``) and removes its partial file.

    Raises
    ------
    ValueError
        The job is neither queued nor running (done, failed, expired or cancelled already).
    """
    with transaction.atomic():
        job = SubsetJob.objects.select_for_update().get(id=job.id)
        if job.status not in (SubsetJob.Status.QUEUED, SubsetJob.Status.RUNNING):
            raise ValueError(f"only a queued or running job can be cancelled; this one is {job.status}")
        job.status, job.finished_at, job.error = SubsetJob.Status.CANCELLED, timezone.now(), "cancelled by its owner"
        job.save(update_fields=["status", "finished_at", "error"])
    return job


class JobCancelled(Exception):
    """Raised inside a running job's computation once its owner cancelled it."""


class _Progress(Callback):
    """dask callback counting finished tasks of the computations it watches; stops them once ``cancelled`` is set."""

    def __init__(self):
        super().__init__()
        self.done = self.total = 0
        self.fraction = 0.0
        self.cancelled = threading.Event()

    def _start_state(self, dsk, state):
        self.total += sum(len(state[k]) for k in ("ready", "waiting", "running")) or 1

    def _pretask(self, key, dsk, state):
        if self.cancelled.is_set():
            raise JobCancelled("cancelled by its owner")

    def _posttask(self, key, result, dsk, state, worker_id):
        self.done += 1
        self.fraction = min(0.99, self.done / max(self.total, 1))


def run_job(job_id: str, attempt: int) -> SubsetJob:
    """Carry out a job (the Celery task's body): write its file, record size, checksum, expiry.

    Progress (dask tasks done / total) and a heartbeat are written by a side thread every
    ``settings.SUBSET_JOB_HEARTBEAT_SECONDS``. The job is claimed by one conditional UPDATE
    (queued with this ``attempt`` → running); when no row changes (a duplicate delivery, run
    already, retried since, cancelled, expired) it is left alone. A failure, the task's soft
    time limit included, is recorded with its reason.
    """
    now = timezone.now()
    claimed = SubsetJob.objects.filter(id=job_id, attempt=attempt, status=SubsetJob.Status.QUEUED).update(
        status=SubsetJob.Status.RUNNING, started_at=now, heartbeat_at=now
    )
    job = SubsetJob.objects.get(id=job_id)
    if not claimed:  # run already (a duplicate delivery), retried since, cancelled or expired
        logger.info("job %s attempt %s: nothing to do (%s, attempt %s)", job_id, attempt, job.status, job.attempt)
        return job
    progress, stop = _Progress(), threading.Event()

    def heartbeat():
        try:
            while not stop.wait(settings.SUBSET_JOB_HEARTBEAT_SECONDS):
                alive = SubsetJob.objects.filter(id=job.id, attempt=attempt, status=SubsetJob.Status.RUNNING).update(
                    progress=progress.fraction, heartbeat_at=timezone.now()
                )
                if not alive and _cancelled(job.id, attempt):  # its owner cancelled it: stop the computation
                    progress.cancelled.set()
                    return
        finally:
            connection.close()

    beat = threading.Thread(target=heartbeat, name=f"job-{job.id}-heartbeat", daemon=True)
    beat.start()
    relative_folder = f"jobs/{job.id}"
    folder = storage.work_root() / relative_folder  # on local disk the data root's own job folder
    try:
        f = gridded_file(job.version, job.file_name)
        query = params_module.parse_api(job.kind, job.params)
        name, media_type = result_name(f, query)
        folder.mkdir(parents=True, exist_ok=True)
        with progress, dask.config.set(scheduler="threads"):
            answer(f, query, folder / name, chunked=True)
    except Exception as exc:  # the reason goes to the user; the worker goes on
        stop.set()
        beat.join()
        if isinstance(exc, JobCancelled) or _cancelled(job.id, attempt):
            logger.info("job %s attempt %s: cancelled", job.id, attempt)
            _remove_folder(folder)
            return SubsetJob.objects.get(id=job.id)
        logger.exception("job %s failed", job.id)
        SubsetJob.objects.filter(id=job.id, attempt=attempt).exclude(status=SubsetJob.Status.CANCELLED).update(
            status=SubsetJob.Status.FAILED, error=str(exc) or type(exc).__name__, finished_at=timezone.now()
        )
        return SubsetJob.objects.get(id=job.id)
    stop.set()
    beat.join()
    path = folder / name
    nbytes, checksum = path.stat().st_size, sha256(path)
    try:
        storage.put_file(path, f"{relative_folder}/{name}")  # local: in place already; S3: uploaded
    except Exception as exc:  # noqa: BLE001 - the store failed: the job fails with the reason
        logger.exception("job %s: the result could not be stored", job.id)
        _remove_folder(folder)
        SubsetJob.objects.filter(id=job.id, attempt=attempt).exclude(status=SubsetJob.Status.CANCELLED).update(
            status=SubsetJob.Status.FAILED,
            error=f"the result could not be stored: {exc}",
            finished_at=timezone.now(),
        )
        return SubsetJob.objects.get(id=job.id)
    if storage.is_remote():
        _remove_folder(folder)
    finished = timezone.now()
    done = (
        SubsetJob.objects.filter(id=job.id, attempt=attempt)
        .exclude(status=SubsetJob.Status.CANCELLED)
        .update(
            status=SubsetJob.Status.DONE,
            progress=1.0,
            finished_at=finished,
            heartbeat_at=finished,
            result_path=f"{relative_folder}/{name}",
            result_name=name,
            media_type=media_type,
            size=nbytes,
            sha256=checksum,
            expires_at=finished + timedelta(hours=settings.SUBSET_JOB_TTL_HOURS),
        )
    )
    if not done:  # cancelled after the last heartbeat: the file is not kept
        logger.info("job %s attempt %s: cancelled as it finished", job.id, attempt)
        _remove_folder(folder)
        storage.delete(relative_folder)
    return SubsetJob.objects.get(id=job.id)


def _cancelled(job_id, attempt: int) -> bool:
    return SubsetJob.objects.filter(id=job_id, attempt=attempt, status=SubsetJob.Status.CANCELLED).exists()


def _remove_folder(folder: Path) -> None:
    """Remove a job's folder and what a cancelled run left in it."""
    for path in folder.glob("*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        pass


def reap_stale_jobs() -> int:
    """Mark failed every running job whose worker has not written a heartbeat for
    ``settings.SUBSET_JOB_STALE_SECONDS`` (the worker was killed or lost). Returns how many."""
    limit = timezone.now() - timedelta(seconds=settings.SUBSET_JOB_STALE_SECONDS)
    return SubsetJob.objects.filter(status=SubsetJob.Status.RUNNING, heartbeat_at__lt=limit).update(
        status=SubsetJob.Status.FAILED,
        finished_at=timezone.now(),
        error=f"the worker stopped answering (no heartbeat for {settings.SUBSET_JOB_STALE_SECONDS:.0f} s): "
        "retry the job",
    )


def expire_jobs() -> int:
    """Mark expired the finished jobs past ``expires_at`` and delete their files. Returns how many.

    Each job is claimed by a conditional UPDATE (done → expired) before its file is deleted, so
    two passes at once delete each file once and count each job once.
    """
    n = 0
    for job in SubsetJob.objects.filter(status=SubsetJob.Status.DONE, expires_at__lt=timezone.now()):
        if not SubsetJob.objects.filter(id=job.id, status=SubsetJob.Status.DONE).update(
            status=SubsetJob.Status.EXPIRED
        ):
            continue  # another pass took it
        if job.result_path:
            storage.delete(job.result_path)
            if not storage.is_remote():  # an object store has no empty folders
                try:
                    Path(storage.url(job.result_path)).parent.rmdir()
                except OSError:
                    pass
        n += 1
    return n


def remove_orphans(max_age_seconds: float | None = None) -> int:
    """Delete temporary answer files (``WORK_ROOT/tmp`` on local disk, :func:`portal.storage.work_root`) older
    than ``max_age_seconds`` (default ``settings.SUBSET_TMP_MAX_AGE_SECONDS``): what a killed worker left.
    Returns how many.

    A direct answer's file is unlinked as soon as its response opens it, so a file this old
    belongs to no request.
    """
    limit = time.time() - (settings.SUBSET_TMP_MAX_AGE_SECONDS if max_age_seconds is None else max_age_seconds)
    n = 0
    for path in (storage.work_root() / "tmp").glob("*"):
        try:
            if path.is_file() and path.stat().st_mtime < limit:
                path.unlink()
                n += 1
        except FileNotFoundError:  # removed meanwhile
            continue
    return n


def housekeeping() -> dict[str, int]:
    """The periodic pass (Celery beat, ``manage.py subset_housekeeping``): stale jobs failed,
    expired job files deleted, orphaned temporary files removed."""
    return {"stale": reap_stale_jobs(), "expired": expire_jobs(), "orphans": remove_orphans()}


def job_file(job: SubsetJob) -> Path:
    """The finished job's result file as a local file (on S3: the read-through copy, see
    :func:`portal.storage.local_path`).

    Raises
    ------
    FileNotFoundError
        The file is gone.
    """
    return storage.local_path(job.result_path)


def download_script(job: SubsetJob, url: str, tool: str, *, profile_url: str = "") -> str:
    """A shell script that fetches the job's file with ``curl`` or ``wget`` and checks its sha256.

    A signed-in user's job is fetched with ``Authorization: Bearer $PORTAL_TOKEN`` (a personal
    API token read from the environment, created on the profile at ``profile_url``); an anonymous
    job's ``url`` carries its owner key (``?key=``) instead.

    Raises
    ------
    ValueError
        ``tool`` is neither ``curl`` nor ``wget``.
    """
    if tool not in ("curl", "wget"):
        raise ValueError(f"tool: expected curl or wget, got {tool!r}")
    header = "Authorization: Bearer $PORTAL_TOKEN"
    if job.user_id:
        auth = f'-H "{header}" ' if tool == "curl" else f'--header="{header}" '
        token = (
            "# this job is yours: the script sends a personal API token with the 'download' scope, read from\n"
            f"# the environment (create one on your profile{': ' + profile_url if profile_url else ''}):\n"
            "#   export PORTAL_TOKEN=hp_...\n"
            ': "${PORTAL_TOKEN:?set PORTAL_TOKEN to a personal API token of this portal}"\n'
        )
    else:
        auth, token = "", "# an anonymous job: the link carries its key (keep this script private)\n"
    fetch = (
        f"curl --fail --location --retry 3 {auth}-o '{job.result_name}' '{url}'"
        if tool == "curl"
        else f"wget --tries=3 {auth}-O '{job.result_name}' '{url}'"
    )
    return (
        "#!/bin/sh\n"
        f"# {job.kind} job {job.id} of dataset {job.dataset_id} v{job.version.number} ({job.size} bytes)\n"
        f"# the file expires at {job.expires_at:%Y-%m-%d %H:%M} UTC\n"
        "set -e\n"
        f"{token}"
        f"{fetch}\n"
        f"echo '{job.sha256}  {job.result_name}' | sha256sum -c -\n"
    )
