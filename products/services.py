"""Running and publishing products: create, request, execute, publish.

``request_run`` records a queued :class:`GenerationRun` and enqueues the Celery task
``products.generate`` by name after the transaction commits (:func:`portal.queue.enqueue_on_commit`:
this module never imports the tasks, which import it); ``execute_run`` (called by the task and by
``manage.py generate``) claims the run with a conditional UPDATE, runs the product's pipeline
(:data:`products.pipelines.PIPELINES`) in a private work directory, and ``publish``es the result:
the directory is moved into place and the DatasetVersion, DatasetFile and ValidationResult rows are
written in one transaction. A failed run removes its work directory and leaves the published
versions untouched.

What the pipelines share (inputs, lineage, stage timing, validation rows) is in
:mod:`products.lineage`, below the pipelines; this module sits above them.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import subprocess
import time
import traceback
import uuid
from collections.abc import Iterable
from pathlib import Path

import netCDF4
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ingestion.models import Station
from portal import storage
from portal.catalog.metadata import acdd_attributes
from portal.catalog.models import Dataset, DatasetFile, DatasetVersion
from portal.files import media_type_for
from portal.queue import enqueue_on_commit
from portal.subsets import store as cube_store

from .data_kind import DataKind
from .lineage import (
    ProductOutput,
    RunError,
    ValidationRow,
    append_log,
    json_safe,
)
from .methods.cf import CONVENTIONS, bbox_attributes
from .methods.files import sha256
from .models import GenerationRun, ValidationResult
from .pipelines import PIPELINES
from .registry import PRODUCTS, product_for_dataset

logger = logging.getLogger(__name__)

# The Celery task that carries out a run (products/tasks.py registers it under this name).
GENERATE_TASK = "products.generate"
QUEUE_UNAVAILABLE = "the task queue is unavailable at the moment: request the run again in a minute"


def code_version() -> str:
    """The git commit of the running code (with ``-dirty`` when the tree has changes), or ``unknown``."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
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

    def unavailable(exc: Exception) -> None:
        GenerationRun.objects.filter(id=run.id, status=GenerationRun.Status.QUEUED).update(
            status=GenerationRun.Status.FAILED, error=QUEUE_UNAVAILABLE, finished_at=timezone.now()
        )
        raise RunError(QUEUE_UNAVAILABLE) from exc

    enqueue_on_commit(GENERATE_TASK, (run.id,), on_unavailable=unavailable)
    return run


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
    return GenerationRun.objects.create(
        product=product,
        dataset=dataset,
        parameters=parameters or {},
        requested_by=user if user and user.is_authenticated else None,
    )


def latest_version(product: str) -> DatasetVersion | None:
    """The latest published version of ``product``'s dataset, or None."""
    spec = PRODUCTS[product]
    return DatasetVersion.objects.filter(dataset_id=spec.dataset_id).order_by("-number").first()


def execute_run(run_id: int) -> GenerationRun:
    """Claim a queued run and carry it out to ``succeeded`` or ``failed``.

    A run that is not ``queued`` (already claimed by another worker, or finished) is returned
    unchanged, so a task delivered twice does the work once: the claim is one conditional
    ``UPDATE ... WHERE status = 'queued'``, and its row count says whether this call won it.
    """
    claimed = GenerationRun.objects.filter(id=run_id, status=GenerationRun.Status.QUEUED).update(
        status=GenerationRun.Status.RUNNING, started_at=timezone.now(), code_version=code_version()
    )
    run = GenerationRun.objects.get(id=run_id)
    if not claimed:
        return run
    workdir = storage.work_root() / "tmp" / f"{run.product}-run{run.id}-{uuid.uuid4().hex[:8]}"
    try:
        workdir.mkdir(parents=True)
        pipeline = PIPELINES[run.product]
        output = pipeline(run, workdir)
        publish(run, workdir, output)
    except Exception as exc:  # noqa: BLE001 - every failure must end the run as failed
        shutil.rmtree(workdir, ignore_errors=True)
        append_log(run.id, f"failed: {exc}")
        GenerationRun.objects.filter(id=run.id).update(
            status=GenerationRun.Status.FAILED,
            finished_at=timezone.now(),
            error=f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}",
        )
    run.refresh_from_db()
    return run


def publish(run: GenerationRun, workdir: Path, output: ProductOutput) -> DatasetVersion:
    """Move a run's work directory into place and record the new version, all or nothing.

    The version directory is ``DATA_ROOT/products/<product>/v<number>``; the files are placed there
    (:func:`portal.storage.put_tree`: a rename on local disk, an upload to S3) inside the transaction,
    after every row is written, and removed again if the commit fails.
    First every NetCDF file gets the record's discovery metadata (:func:`stamp_netcdf`), then
    sizes and checksums are taken and the cube stores built, so all three describe the files as
    published. Should another version be published in between, the files are stamped again with
    the number they really get (inside the transaction). The summary is stored through
    :func:`products.lineage.json_safe`.

    Raises
    ------
    RunError
        A file ``output`` names is not in ``workdir``.
    """
    for name in output.files:
        if not (workdir / name).is_file():
            raise RunError(f"the pipeline did not write {name}")
    expected = _next_number(run.dataset_id)
    files = _finish_files(run, workdir, output, expected)
    summary = json_safe(output.summary)
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
                dataset=run.dataset,
                number=number,
                directory=str(relative),
                notes=output.notes,
                lineage={
                    "run": run.id,
                    "product": run.product,
                    "code_version": run.code_version,
                    "parameters": json_safe({**run.parameters, **output.parameters}),
                    "parameters_requested": run.parameters,
                    "statistics_fitted_on": json_safe(output.statistics_fitted_on),
                    "inputs": run.inputs,
                    "timings": run.timings,
                    "summary": summary,
                    "started_at": run.started_at.isoformat(),
                },
            )
            for name, description in output.files.items():
                DatasetFile.objects.create(
                    version=version,
                    name=name,
                    path=str(relative / name),
                    media_type=media_type_for(name),
                    description=description,
                    **files[name],
                )
            ValidationResult.objects.bulk_create(
                ValidationResult(run=run, version=version, **row) for row in _with_stations(output.validation)
            )
            # in the same transaction as "succeeded": a reader never sees the status without this line
            append_log(run.id, f"published {run.dataset_id} v{number} ({len(files)} files)")
            GenerationRun.objects.filter(id=run.id).update(
                status=GenerationRun.Status.SUCCEEDED, finished_at=timezone.now(), version=version, summary=summary
            )
            final = relative
            storage.put_tree(workdir, relative)  # local: renamed into place; S3: uploaded (see portal.storage)
    except Exception:
        if final is not None and not workdir.exists():
            storage.delete(final)  # the commit failed after the files were placed: no row refers to them
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
FILE_OWN_ATTRIBUTES = (
    "title",
    "summary",
    "source",
    "comment",
    "platform",
    "platform_vocabulary",
    "instrument",
    "instrument_vocabulary",
)
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
        lines.append(
            f"{now} published as {dataset.id} v{number} by {_PUBLISHER}"
            + (f" (run {run_id})" if run_id is not None else "")
            + ", with the catalog record's ACDD attributes"
        )
        if present.get("data_kind") == DataKind.SYNTHETIC and "platform" not in present:
            attrs.update(
                platform=SYNTHETIC_PLATFORM,
                instrument=SYNTHETIC_PLATFORM,
                platform_vocabulary="none",
                instrument_vocabulary="none",
            )
        spec = product_for_dataset(dataset.id)
        if spec is not None and spec.vertical is not None and "geospatial_vertical_min" not in present:
            low, high, positive = spec.vertical
            attrs.update(
                geospatial_vertical_min=low,
                geospatial_vertical_max=high,
                geospatial_vertical_units="m",
                geospatial_vertical_positive=positive,
                geospatial_vertical_resolution="point" if low == high else f"{high - low:g} m (one layer)",
            )
        for axis in ("lat", "lon"):  # features (stations, basins, regions), not a grid
            if f"geospatial_{axis}_resolution" not in present and axis not in nc.dimensions:
                attrs[f"geospatial_{axis}_resolution"] = "point (features at their locations, no grid)"
        if "geospatial_lat_min" not in present and "lat" not in nc.variables and dataset.bbox is not None:
            attrs.update(bbox_attributes(dataset.bbox.extent))  # features without coordinates (river basins)
        attrs.update(
            {
                "Conventions": CONVENTIONS,
                "product_version": f"v{number}",
                "date_created": now,
                "date_issued": now,
                "date_modified": now,
                "date_metadata_modified": now,
                "history": "\n".join(lines),
            }
        )
        nc.setncatts(attrs)
    return attrs


def _with_stations(validation: Iterable[ValidationRow]) -> list[dict]:
    """The column values of each row (:meth:`ValidationRow.fields`) with ``station_id`` for ``site`` rows: the
    Station of that code in that ``network``.

    ``network`` is optional; without it a code that names stations of several networks links to none.
    """
    validation = list(validation)
    codes = {v.label for v in validation if v.scope == "site"}
    by_key, by_code = {}, {}
    for station_id, network, code in Station.objects.filter(code__in=codes).values_list("id", "network", "code"):
        by_key[network, code] = station_id
        by_code[code] = None if code in by_code else station_id
    rows = []
    for v in validation:
        row = v.fields()
        if v.scope == "site":
            row["station_id"] = by_key.get((v.network, v.label)) if v.network else by_code.get(v.label)
        rows.append(row)
    return rows
