"""Running, validating and publishing products.

``request_run`` records a queued :class:`GenerationRun` and enqueues the Celery task after the
transaction commits; ``execute_run`` (called by the task and by ``manage.py generate``) claims
the run, gathers its inputs, calls the product's pure generator in a private work directory,
and ``publish``es the result: the directory is moved into place and the DatasetVersion,
DatasetFile and ValidationResult rows are written in one transaction. A failed run removes its
work directory and leaves the published versions untouched.
"""
from __future__ import annotations

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

import pandas as pd
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone

from ingestion.models import IngestRun, Station
from portal.catalog.models import Dataset, DatasetFile, DatasetVersion

from .models import GenerationRun, ValidationResult
from .registry import PRODUCTS

logger = logging.getLogger(__name__)

CARDAMOM_NETWORK = "FLUXNET2015"
ERA5_POINTS = "xclim_era5_cities/daily_surface_cancities_1990-1993.nc"


class RunError(RuntimeError):
    """A run that cannot start or finish (unknown product, missing inputs)."""


@dataclass
class ProductOutput:
    """What a product pipeline hands to :func:`publish`.

    files : paths inside the work directory, with a description each.
    validation : dicts with keys variable, units, split, scope, label, n and the metrics of
        :func:`products.methods.metrics.summary`.
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


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def request_run(product: str, *, parameters: dict | None = None, user=None) -> GenerationRun:
    """Record a queued run of ``product`` and enqueue it on Celery once the transaction commits.

    Raises
    ------
    RunError
        Unknown or not yet implemented product, or its catalog record is not imported.
    """
    from .tasks import generate_product

    run = create_run(product, parameters=parameters, user=user)
    transaction.on_commit(lambda: generate_product.delay(run.id))
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
    """
    for name in output.files:
        if not (workdir / name).is_file():
            raise RunError(f"the pipeline did not write {name}")
    files = {name: {"size": (workdir / name).stat().st_size, "sha256": sha256(workdir / name)} for name in output.files}
    final = None
    try:
        with transaction.atomic():
            Dataset.objects.select_for_update().get(id=run.dataset_id)
            number = (run.dataset.versions.order_by("-number").values_list("number", flat=True).first() or 0) + 1
            relative = Path("products") / run.product / f"v{number}"
            run.refresh_from_db(fields=["inputs", "timings", "parameters", "code_version", "started_at"])
            version = DatasetVersion.objects.create(
                dataset=run.dataset, number=number, directory=str(relative), notes=output.notes,
                lineage={"run": run.id, "product": run.product, "code_version": run.code_version,
                         "parameters": run.parameters, "inputs": run.inputs, "timings": run.timings,
                         "summary": output.summary, "started_at": run.started_at.isoformat()})
            for name, description in output.files.items():
                DatasetFile.objects.create(version=version, name=name, path=str(relative / name),
                                           description=description, **files[name])
            stations = dict(Station.objects.filter(code__in={v["label"] for v in output.validation if v["scope"] == "site"})
                            .values_list("code", "id"))
            ValidationResult.objects.bulk_create(
                ValidationResult(run=run, version=version, station_id=stations.get(v["label"]) if v["scope"] == "site" else None,
                                 **v) for v in output.validation)
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
    append_log(run.id, f"published {run.dataset_id} v{number} ({len(files)} files)")
    return version


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


def json_safe(metrics: dict) -> dict:
    """Metric values as plain Python numbers, NaN as None (JSON and SQL NULL)."""
    out = {}
    for key, value in metrics.items():
        value = float(value) if value is not None else None
        out[key] = None if value is None or value != value else (int(value) if key == "n" else value)
    return out


def _record_inputs(run: GenerationRun, inputs: list[dict]) -> None:
    GenerationRun.objects.filter(id=run.id).update(inputs=inputs)


def _timed(run: GenerationRun, timings: dict, stage: str, started: float) -> None:
    timings[stage] = round(time.perf_counter() - started, 3)
    GenerationRun.objects.filter(id=run.id).update(timings=timings)
    append_log(run.id, f"{stage} done in {timings[stage]:.1f} s")


def et_fusion_pipeline(run: GenerationRun, workdir: Path) -> ProductOutput:
    """ET at flux towers (LightGBM, leave-site-out) and at ERA5 points; see products.generators.et_fusion."""
    import xarray as xr

    from .generators import et_fusion

    params = dict(run.parameters)
    sites = params.pop("sites", None)
    cv = {"n_splits": int(params.pop("n_splits", 10)), "seed": int(params.pop("seed", 42))}
    timings: dict = {}
    t = time.perf_counter()
    obs = observations_frame(network=CARDAMOM_NETWORK, variables=list(et_fusion.TOWER_VARIABLES), stations=sites)
    stations = stations_frame(network=CARDAMOM_NETWORK, stations=sites)
    if obs.empty:
        raise RunError(f"no {CARDAMOM_NETWORK} observations in the database: run 'manage.py ingest cardamom' first")
    era5_path = Path(settings.SHARED_DATA_DIR) / ERA5_POINTS
    if not era5_path.is_file():
        raise RunError(f"{era5_path}: ERA5 point forcing not found (SHARED_DATA_DIR={settings.SHARED_DATA_DIR})")
    tower_runs = list(IngestRun.objects.filter(kind="cardamom", status=IngestRun.Status.SUCCEEDED)
                      .order_by("source_path").values_list("source_path", "checksum"))
    _record_inputs(run, [
        {"role": "tower observations", "path": os.path.commonpath([os.path.abspath(p) for p, _ in tower_runs]) if tower_runs else "",
         "files": len(tower_runs), "sha256": hashlib.sha256("".join(c for _, c in tower_runs).encode()).hexdigest()},
        {"role": "ERA5 point forcing", "path": str(era5_path), "sha256": sha256(era5_path), "size": era5_path.stat().st_size},
    ])
    table = et_fusion.build_training_table(obs, stations)
    _timed(run, timings, "load_inputs", t)

    t = time.perf_counter()
    result = et_fusion.run(table, **cv, params=params or None)
    _timed(run, timings, "fit_and_cross_validate", t)

    t = time.perf_counter()
    with xr.open_dataset(era5_path) as era5:
        drivers = et_fusion.era5_monthly_drivers(era5)
    drivers["et_pred"] = et_fusion.predict(result.final_model, drivers)
    ds = et_fusion.to_cf_dataset(result, drivers, attrs={
        "id": run.dataset_id, "product_version_run": run.id, "code_version": run.code_version or ""})
    name = "et_fusion_timeseries.nc"
    et_fusion.write_netcdf(ds, workdir / name)
    _timed(run, timings, "predict_and_write", t)

    validation = [
        {"variable": "et", "units": "mm d-1", "split": split, "scope": scope, "label": label, **json_safe(metrics)}
        for split, scope, label, metrics in et_fusion.metric_rows(result)
    ]
    pooled = next(v for v in validation if v["split"] == "validation" and v["scope"] == "pooled")
    summary = {"towers": int(table["station"].nunique()), "validation_rows": int(pooled["n"]),
               "kge": pooled["kge"], "rmse": pooled["rmse"], "r": pooled["r"], "bias": pooled["bias"],
               "era5_points": int(drivers["station"].nunique())}
    return ProductOutput(
        files={name: "CF-1.8 timeSeries (DSG): monthly ET observed and predicted at FLUXNET2015 towers "
                     "(CARDAMOM-FluxVal) and predicted at five ERA5 points, 1990-1993"},
        validation=validation, summary=summary,
        notes="Monthly ET (mm d-1) at flux towers; validated on CARDAMOM-FluxVal held-out months with leave-site-out models.")


PIPELINES = {"et_fusion": et_fusion_pipeline}
