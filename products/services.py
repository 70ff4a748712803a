"""Running, validating and publishing products.

``request_run`` records a queued :class:`GenerationRun` and enqueues the Celery task after the
transaction commits; ``execute_run`` (called by the task and by ``manage.py generate``) claims
the run, gathers its inputs, calls the product's pure generator in a private work directory,
and ``publish``es the result: the directory is moved into place and the DatasetVersion,
DatasetFile and ValidationResult rows are written in one transaction. A failed run removes its
work directory and leaves the published versions untouched.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import shutil
import subprocess
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import netCDF4
import pandas as pd
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone
from kombu.exceptions import OperationalError

from ingestion.models import IngestRun, Station
from portal.catalog.metadata import acdd_attributes
from portal.catalog.models import Dataset, DatasetFile, DatasetVersion
from portal.files import media_type_for
from portal.subsets import store as cube_store

from .methods.cf import CONVENTIONS, bbox_attributes
from .methods.files import sha256
from .models import GenerationRun, ValidationResult
from .registry import PRODUCTS, product_for_dataset

logger = logging.getLogger(__name__)

class RunError(RuntimeError):
    """A run that cannot start or finish (unknown product, missing inputs)."""


@dataclass
class ProductOutput:
    """What a product pipeline hands to :func:`publish`.

    files : paths inside the work directory, with a description each.
    validation : dicts with keys variable, units, split, scope, label, n and the metrics of
        :func:`products.methods.metrics.summary`; ``site`` rows may name the station's ``network``
        (needed where a code exists in several networks, e.g. US-Ha1 in FLUXNET2015 and AmeriFlux).
    """

    files: dict[str, str] = field(default_factory=dict)
    validation: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    notes: str = ""


def code_version() -> str:
    """The git commit of the running code (with ``-dirty`` when the tree has changes), or ``unknown``."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=settings.BASE_DIR,
                                capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=settings.BASE_DIR,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def request_run(product: str, *, parameters: dict | None = None, user=None) -> GenerationRun:
    """Record a queued run of ``product`` and enqueue it on Celery once the transaction commits.

    Raises
    ------
    RunError
        Unknown or not yet implemented product, or its catalog record is not imported; or the
        broker cannot be reached (after a short, bounded retry): the run is then marked failed
        with the reason, so nothing stays "queued" for ever, and can be requested again.
    """
    run = create_run(product, parameters=parameters, user=user)
    transaction.on_commit(lambda: _enqueue_run(run))
    return run


def _enqueue_run(run: GenerationRun) -> None:

    from .tasks import generate_product

    try:
        generate_product.apply_async((run.id,), retry=True,
                                     retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5})
    except (OperationalError, OSError) as exc:
        logger.error("run %s: the broker is unavailable: %s", run.id, exc)
        message = "the task queue is unavailable at the moment: request the run again in a minute"
        GenerationRun.objects.filter(id=run.id, status=GenerationRun.Status.QUEUED).update(
            status=GenerationRun.Status.FAILED, error=message, finished_at=timezone.now())
        raise RunError(message) from exc


def create_run(product: str, *, parameters: dict | None = None, user=None) -> GenerationRun:
    """Record a queued run of ``product`` (not enqueued: :func:`execute_run` or :func:`request_run` carries it out).

    Raises
    ------
    RunError
        Unknown or not yet implemented product, or its catalog record is not imported.
    """
    spec = PRODUCTS.get(product)
    if spec is None or not spec.implemented:
        known = ", ".join(k for k, p in PRODUCTS.items() if p.implemented)
        raise RunError(f"product {product!r} has no generator yet: expected one of {known}")
    dataset = Dataset.objects.filter(id=spec.dataset_id).first()
    if dataset is None:
        raise RunError(f"the catalog record {spec.dataset_id} of {product} is not imported: run import_records first")
    return GenerationRun.objects.create(product=product, dataset=dataset, parameters=parameters or {},
                                        requested_by=user if user and user.is_authenticated else None)


def latest_version(product: str) -> DatasetVersion | None:
    """The latest published version of ``product``'s dataset, or None."""
    spec = PRODUCTS[product]
    return DatasetVersion.objects.filter(dataset_id=spec.dataset_id).order_by("-number").first()


def append_log(run_id: int, message: str) -> None:
    """Append a timestamped line to a run's log (visible in the admin while the run goes on)."""
    line = f"{timezone.now():%H:%M:%S} {message}\n"
    logger.info("run %s: %s", run_id, message)
    GenerationRun.objects.filter(id=run_id).update(log=Concat(F("log"), Value(line)))


def execute_run(run_id: int) -> GenerationRun:
    """Claim a queued run and carry it out to ``succeeded`` or ``failed``.

    A run that is not ``queued`` (already claimed by another worker, or finished) is returned
    unchanged, so a task delivered twice does the work once.
    """
    claimed = GenerationRun.objects.filter(id=run_id, status=GenerationRun.Status.QUEUED).update(
        status=GenerationRun.Status.RUNNING, started_at=timezone.now(), code_version=code_version())
    run = GenerationRun.objects.get(id=run_id)
    if not claimed:
        return run
    workdir = Path(settings.DATA_ROOT) / "tmp" / f"{run.product}-run{run.id}-{uuid.uuid4().hex[:8]}"
    try:
        workdir.mkdir(parents=True)
        from .pipelines import PIPELINES

        pipeline = PIPELINES[run.product]
        output = pipeline(run, workdir)
        publish(run, workdir, output)
    except Exception as exc:  # noqa: BLE001 - every failure must end the run as failed
        shutil.rmtree(workdir, ignore_errors=True)
        append_log(run.id, f"failed: {exc}")
        GenerationRun.objects.filter(id=run.id).update(
            status=GenerationRun.Status.FAILED, finished_at=timezone.now(),
            error=f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}")
    run.refresh_from_db()
    return run


def publish(run: GenerationRun, workdir: Path, output: ProductOutput) -> DatasetVersion:
    """Move a run's work directory into place and record the new version, all or nothing.

    The version directory is ``DATA_ROOT/products/<product>/v<number>``; the rename happens
    inside the transaction, after every row is written, and is undone if the commit fails.
    First every NetCDF file gets the record's discovery metadata (:func:`stamp_netcdf`), then
    sizes and checksums are taken and the cube stores built, so all three describe the files as
    published. Should another version be published in between, the files are stamped again with
    the number they really get (inside the transaction).
    """
    for name in output.files:
        if not (workdir / name).is_file():
            raise RunError(f"the pipeline did not write {name}")
    expected = _next_number(run.dataset_id)
    files = _finish_files(run, workdir, output, expected)
    final = None
    try:
        with transaction.atomic():
            Dataset.objects.select_for_update().get(id=run.dataset_id)
            number = _next_number(run.dataset_id)
            if number != expected:  # another version was published meanwhile: the files name the wrong one
                files = _finish_files(run, workdir, output, number)
            relative = Path("products") / run.product / f"v{number}"
            run.refresh_from_db(fields=["inputs", "timings", "parameters", "code_version", "started_at"])
            version = DatasetVersion.objects.create(
                dataset=run.dataset, number=number, directory=str(relative), notes=output.notes,
                lineage={"run": run.id, "product": run.product, "code_version": run.code_version,
                         "parameters": run.parameters, "inputs": run.inputs, "timings": run.timings,
                         "summary": output.summary, "started_at": run.started_at.isoformat()})
            for name, description in output.files.items():
                DatasetFile.objects.create(version=version, name=name, path=str(relative / name),
                                           media_type=media_type_for(name), description=description, **files[name])
            ValidationResult.objects.bulk_create(
                ValidationResult(run=run, version=version, **row) for row in _with_stations(output.validation))
            # in the same transaction as "succeeded": a reader never sees the status without this line
            append_log(run.id, f"published {run.dataset_id} v{number} ({len(files)} files)")
            GenerationRun.objects.filter(id=run.id).update(
                status=GenerationRun.Status.SUCCEEDED, finished_at=timezone.now(), version=version,
                summary=output.summary)
            final = Path(settings.DATA_ROOT) / relative
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():  # left by a run whose commit failed: no row refers to it
                logger.warning("removing orphan directory %s", final)
                shutil.rmtree(final)
            os.replace(workdir, final)
    except Exception:
        if final is not None and final.exists() and not workdir.exists():
            os.replace(final, workdir)  # the commit failed after the move: put it back for cleanup
        raise
    return version


def _next_number(dataset_id: str) -> int:
    """The number the next version of ``dataset_id`` gets (latest + 1, from 1)."""
    latest = DatasetVersion.objects.filter(dataset_id=dataset_id).order_by("-number").values_list("number", flat=True)
    return (latest.first() or 0) + 1


def _finish_files(run: GenerationRun, workdir: Path, output: ProductOutput, number: int) -> dict:
    """Stamp the NetCDF files as version ``number``, then take sizes and checksums and build the cube stores.

    Returns
    -------
    dict
        File name -> ``size`` (bytes) and ``sha256`` of the files as published.
    """
    for name in output.files:
        if name.endswith(".nc"):
            stamp_netcdf(workdir / name, dataset=run.dataset, number=number, run_id=run.id)
    files = {name: {"size": (workdir / name).stat().st_size, "sha256": sha256(workdir / name)} for name in output.files}
    for name in output.files:  # the cube stores subsets read (map- and time-chunked Zarr), inside the version folder
        if name.endswith(".nc") and cube_store.holds_grid(workdir / name):
            started = time.perf_counter()
            cube_store.build_stores(workdir / name, source_sha256=files[name]["sha256"])
            append_log(run.id, f"cube stores of {name} built in {time.perf_counter() - started:.1f} s")
    return files


# Global attributes a product file describes itself with: the record's values never replace them
# (a synthetic twin keeps its own title; ``references`` are merged). Extents, ``featureType``,
# ``data_kind`` and every other attribute the record does not define are left alone too.
FILE_OWN_ATTRIBUTES = ("title", "summary", "source", "comment", "platform", "platform_vocabulary", "instrument",
                       "instrument_vocabulary")
SYNTHETIC_PLATFORM = "none: a SYNTHETIC twin (made-up inputs shaped like the real ones, no instrument's data)"
_PUBLISHER = "products.services.publish"


def stamp_netcdf(path: Path, *, dataset: Dataset, number: int, run_id: int | None = None) -> dict:
    """Write the record's ACDD 1.3 discovery metadata into a NetCDF file of a version, in place.

    Parameters
    ----------
    path : pathlib.Path
        A NetCDF-4 file in the run's work directory (not yet published).
    dataset : Dataset
        The record (:func:`portal.catalog.metadata.acdd_attributes`).
    number : int
        The version the file will belong to (``product_version = "v<number>"``).
    run_id : int, optional
        The generation run, named in the ``history`` line.

    Returns
    -------
    dict
        The attributes set. The record's attributes are added; the file's own ``title``,
        ``summary``, ``source`` and ``comment`` stay (:data:`FILE_OWN_ATTRIBUTES`), the record's
        links are added to the file's ``references``, ``date_created`` / ``date_issued`` /
        ``date_modified`` / ``date_metadata_modified`` become now (UTC) and a ``history`` line is
        appended (replacing the line of an earlier stamp). ``Conventions`` says ``CF-1.8, ACDD-1.3``.
        A file without latitude/longitude (series of river basins, which the source tables do not
        locate) takes the record's bounding box as its horizontal extent.
    """


    now = timezone.now().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    record = acdd_attributes(dataset)
    with netCDF4.Dataset(path, "a") as nc:
        present = {k: nc.getncattr(k) for k in nc.ncattrs()}
        attrs = {k: v for k, v in record.items() if not (k in FILE_OWN_ATTRIBUTES and present.get(k))}
        own = str(present.get("references", "")).strip()
        links = [r.strip() for r in record.get("references", "").split(", ") if r.strip() and r.strip() not in own]
        if own or links:
            attrs["references"] = "; ".join([own, *links] if own else links)
        lines = [h for h in str(present.get("history", "")).splitlines() if h.strip() and _PUBLISHER not in h]
        lines.append(f"{now} published as {dataset.id} v{number} by {_PUBLISHER}"
                     + (f" (run {run_id})" if run_id is not None else "") + ", with the catalog record's ACDD attributes")
        if str(present.get("data_kind", "")).lower().startswith("synthetic") and "platform" not in present:
            attrs.update(platform=SYNTHETIC_PLATFORM, instrument=SYNTHETIC_PLATFORM, platform_vocabulary="none",
                         instrument_vocabulary="none")
        spec = product_for_dataset(dataset.id)
        if spec is not None and spec.vertical is not None and "geospatial_vertical_min" not in present:
            low, high, positive = spec.vertical
            attrs.update(geospatial_vertical_min=low, geospatial_vertical_max=high, geospatial_vertical_units="m",
                         geospatial_vertical_positive=positive,
                         geospatial_vertical_resolution="point" if low == high else f"{high - low:g} m (one layer)")
        for axis in ("lat", "lon"):  # features (stations, basins, regions), not a grid
            if f"geospatial_{axis}_resolution" not in present and axis not in nc.dimensions:
                attrs[f"geospatial_{axis}_resolution"] = "point (features at their locations, no grid)"
        if "geospatial_lat_min" not in present and "lat" not in nc.variables and dataset.bbox is not None:
            attrs.update(bbox_attributes(dataset.bbox.extent))  # features without coordinates (river basins)
        attrs.update({"Conventions": CONVENTIONS, "product_version": f"v{number}", "date_created": now,
                      "date_issued": now, "date_modified": now, "date_metadata_modified": now,
                      "history": "\n".join(lines)})
        nc.setncatts(attrs)
    return attrs


def _with_stations(validation: list[dict]) -> list[dict]:
    """Validation dicts with ``station_id`` for ``site`` rows: the Station of that code in that ``network``.

    ``network`` is optional; without it a code that names stations of several networks links to none.
    """
    codes = {v["label"] for v in validation if v["scope"] == "site"}
    by_key, by_code = {}, {}
    for station_id, network, code in Station.objects.filter(code__in=codes).values_list("id", "network", "code"):
        by_key[network, code] = station_id
        by_code[code] = None if code in by_code else station_id
    rows = []
    for v in validation:
        row = {k: value for k, value in v.items() if k != "network"}
        if v["scope"] == "site":
            row["station_id"] = by_key.get((v["network"], v["label"])) if v.get("network") else by_code.get(v["label"])
        rows.append(row)
    return rows


# --- product pipelines: gather inputs from the database and files, call the pure generator ----


def observations_frame(*, network: str, variables: list[str], stations: list[str] | None = None) -> pd.DataFrame:
    """Observations of a network as a long DataFrame (station, variable, time, value, units, quality_flag, is_validation)."""
    sql = ("SELECT s.code, o.variable, o.time, o.value, o.units, o.quality_flag, o.is_validation "
           "FROM ingestion_observation o JOIN ingestion_station s ON s.id = o.station_id "
           "WHERE s.network = %s AND o.variable = ANY(%s)")
    params: list = [network, variables]
    if stations:
        sql += " AND s.code = ANY(%s)"
        params.append(list(stations))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    frame = pd.DataFrame(rows, columns=["station", "variable", "time", "value", "units", "quality_flag", "is_validation"])
    frame["time"] = pd.to_datetime(frame["time"], utc=True).dt.tz_localize(None)
    return frame


def stations_frame(*, network: str, stations: list[str] | None = None) -> pd.DataFrame:
    """Stations of a network as a PointData-style table (code, name, lat, lon, elevation, land_cover, network, source)."""
    qs = Station.objects.filter(network=network)
    if stations:
        qs = qs.filter(code__in=stations)
    return pd.DataFrame([
        {"code": s.code, "name": s.name, "lat": s.geom.y, "lon": s.geom.x, "elevation": s.elevation,
         "land_cover": s.land_cover, "network": s.network, "source": s.source} for s in qs])


def json_number(value) -> float | None:
    """A plain float for JSON, None for NaN or None."""
    if value is None:
        return None
    value = float(value)
    return None if value != value else value


def json_safe(metrics: dict) -> dict:
    """Metric values as plain Python numbers, NaN as None (JSON and SQL NULL)."""
    out = {}
    for key, value in metrics.items():
        value = float(value) if value is not None else None
        out[key] = None if value is None or value != value else (int(value) if key == "n" else value)
    return out


def ingested_input(role: str, kind: str) -> dict:
    """Lineage entry for every file of one reader kind that ingested successfully.

    Returns
    -------
    dict
        ``role``, ``kind``, ``path`` (the files' common folder), ``files`` (count) and ``sha256``
        (digest of the files' checksums in path order), for :func:`record_inputs`.
    """
    runs = list(IngestRun.objects.filter(kind=kind, status=IngestRun.Status.SUCCEEDED)
                .order_by("source_path").values_list("source_path", "checksum"))
    return {"role": role, "kind": kind,
            "path": public_path(os.path.commonpath([os.path.abspath(p) for p, _ in runs])) if runs else "",
            "files": len(runs), "sha256": hashlib.sha256("".join(c for _, c in runs).encode()).hexdigest()}


def file_input(role: str, path: Path) -> dict:
    """Lineage entry for one input file: ``role``, ``path`` (:func:`public_path`), ``sha256`` and ``size`` (bytes)."""
    return {"role": role, "path": public_path(path), "sha256": sha256(path), "size": path.stat().st_size}


def public_path(path: str | os.PathLike) -> str:
    """A path as lineage publishes it: relative to the shared data folder (``SHARED_DATA_DIR``) or the
    data root (``DATA_ROOT``), never the server's absolute path (the checksum identifies the file).

    A path under neither keeps only its last two parts; a relative path is returned as it is.
    """
    text = str(path)
    if not os.path.isabs(text):
        return text
    resolved = Path(os.path.abspath(text))
    for root in (settings.SHARED_DATA_DIR, settings.DATA_ROOT):
        root = Path(os.path.abspath(root))
        if resolved == root or root in resolved.parents:
            return str(resolved.relative_to(root)) or "."
    return str(Path(*resolved.parts[-2:])) if len(resolved.parts) > 2 else resolved.name


def record_inputs(run: GenerationRun, inputs: list[dict]) -> None:
    """Store a run's inputs (dicts with ``role``, ``path`` and ``sha256``, more keys as needed) for its lineage."""
    GenerationRun.objects.filter(id=run.id).update(inputs=inputs)


def timed(run: GenerationRun, timings: dict, stage: str, started: float) -> None:
    """Record the seconds since ``started`` (``time.perf_counter``) as stage ``stage`` of the run's timings."""
    timings[stage] = round(time.perf_counter() - started, 3)
    GenerationRun.objects.filter(id=run.id).update(timings=timings)
    append_log(run.id, f"{stage} done in {timings[stage]:.1f} s")
