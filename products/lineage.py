"""What the product pipelines share: their inputs and lineage, stage timing, validation rows, JSON-safe values.

A pipeline (:mod:`products.pipelines`) reads its inputs from the database and ``SHARED_DATA_DIR``
(:func:`observations_frame`, :func:`stations_frame`), records them with their checksums on the run
(:func:`ingested_input`, :func:`file_input`, :func:`twin_input`, :func:`record_inputs`), times each
stage (:class:`Stages`), and hands a :class:`ProductOutput` of files, :class:`ValidationRow` rows and a
summary to :func:`products.services.publish`.

This module sits below the pipelines and above the records: it imports the models, never
:mod:`products.services` or the pipelines.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone

from ingestion.models import IngestRun, Observation, Station

from .methods.files import sha256
from .models import GenerationRun

logger = logging.getLogger(__name__)


class RunError(RuntimeError):
    """A run that cannot start or finish (unknown product, missing inputs)."""


# --- JSON-safe values -------------------------------------------------------------------------------


def json_safe(value: Any) -> Any:
    """``value`` in plain JSON types, for a run's summary, lineage and metrics.

    Parameters
    ----------
    value : object
        Any nesting of dicts, lists and tuples holding Python or NumPy numbers, NumPy arrays,
        strings, booleans, None, dates and times (Python, NumPy or pandas) or paths.

    Returns
    -------
    object
        The same structure with dict keys as ``str``, lists for tuples and arrays, Python ``int`` /
        ``float`` / ``bool`` for NumPy scalars, ``None`` for NaN, +inf and -inf (JSON has no such
        number), ISO 8601 text for dates and times (``NaT`` -> None), ``str`` for paths and any other
        object. Strings are never altered (a label holding "NaN" stays as it is).
    """
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value[()]) if value.ndim == 0 else [json_safe(v) for v in value]
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)  # .item() would give an int for nanoseconds
    elif isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)  # a str enum (DataKind) as its plain text
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is pd.NaT:
        return None
    if isinstance(value, dt.date | dt.time):  # pandas Timestamp is a datetime
        return value.isoformat()
    return str(value)


def metric_values(metrics: Mapping[str, Any]) -> dict[str, int | float | str | None]:
    """Scores as a :class:`~products.models.ValidationResult` row stores them.

    Parameters
    ----------
    metrics : mapping
        Score name -> number (Python or NumPy; e.g. :func:`products.methods.metrics.summary`).

    Returns
    -------
    dict
        ``n`` as ``int`` (the row's integer column), ``not_meaningful`` as ``str`` ('' when absent:
        why ``kge`` and ``beta`` are no numbers, :func:`products.methods.metrics.mean_ratio_reason`),
        every other score as ``float``; NaN (and None) as None (SQL ``NULL``). An infinite score stays
        (a float column holds it; the summary's :func:`json_safe` makes it None).
    """
    out: dict[str, int | float | str | None] = {"not_meaningful": str(metrics.get("not_meaningful") or "")}
    for key, value in metrics.items():
        if key == "not_meaningful":
            continue
        number = float(value) if value is not None else None
        out[key] = None if number is None or number != number else (int(number) if key == "n" else number)
    return out


# --- what a pipeline hands to publish ---------------------------------------------------------------


@dataclass(frozen=True)
class ValidationRow:
    """One stored comparison of a product with a reference (a :class:`~products.models.ValidationResult` row).

    Attributes
    ----------
    variable, units : str
        The product variable scored and its units.
    split : str
        Which samples: ``validation`` (held out), ``twin_cv``, ``water_balance``, ...
    scope : str
        ``pooled``, ``site`` (``label`` is a station code) or ``class`` (``label`` names a class).
    label : str
        Station code, class name or a label of the pooled set.
    metrics : dict
        ``n`` (int) and the scores of :func:`products.methods.metrics.summary` (floats, None for NaN),
        as :func:`metric_values` makes them (done here: any numbers may be given).
    network : str, optional
        The station's network, for ``site`` rows: links the row to the Station of that code in that
        network (a code may exist in several networks, e.g. US-Ha1 in FLUXNET2015 and AmeriFlux).
    """

    variable: str
    units: str
    split: str
    scope: str
    label: str
    metrics: Mapping[str, int | float | str | None]
    network: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", metric_values(self.metrics))

    def fields(self) -> dict[str, Any]:
        """The row's column values (no station: :func:`products.services.publish` resolves it)."""
        return {
            "variable": self.variable,
            "units": self.units,
            "split": self.split,
            "scope": self.scope,
            "label": self.label,
            **self.metrics,
        }


@dataclass
class ProductOutput:
    """What a product pipeline hands to :func:`products.services.publish`.

    Attributes
    ----------
    files : dict
        File name inside the work directory -> its description.
    validation : list of ValidationRow
        The rows stored with the version.
    summary : dict
        Headline figures of the run (stored on the run and in the version's lineage, through
        :func:`json_safe`).
    notes : str
        The version's notes.
    parameters : dict
        Every parameter the run used, defaults included (the pipeline's ``DEFAULTS`` updated with
        ``run.parameters``); stored in the version's lineage as ``parameters`` (what the caller asked
        for stays there as ``parameters_requested``).
    statistics_fitted_on : dict
        For every statistic, scaler, model or hyper-parameter fitted on data: where it was fitted
        (e.g. ``{"tws baseline, climatology, trend": "training years of each fold"}``); stored in the
        lineage beside the parameters.
    """

    files: dict[str, str] = field(default_factory=dict)
    validation: list[ValidationRow] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    notes: str = ""
    parameters: dict = field(default_factory=dict)
    statistics_fitted_on: dict = field(default_factory=dict)


def file_attributes(run: GenerationRun) -> dict[str, Any]:
    """The global attributes naming a run in every file it writes: ``id`` (the record), ``product_version_run``
    (the run's id) and ``code_version``."""
    return {"id": run.dataset_id, "product_version_run": run.id, "code_version": run.code_version or ""}


# --- inputs and lineage -----------------------------------------------------------------------------


def observations_frame(*, network: str, variables: list[str], stations: list[str] | None = None) -> pd.DataFrame:
    """Observations of a network as a long table.

    Parameters
    ----------
    network : str
        Station network (``Station.network``).
    variables : list of str
        Observation variables to read.
    stations : list of str, optional
        Station codes (default all of the network).

    Returns
    -------
    pandas.DataFrame
        Columns ``station`` (code), ``variable``, ``time`` (naive UTC datetime64[ns]), ``value``
        (float, in ``units``), ``units``, ``quality_flag``, ``is_validation``; empty when nothing matches.
    """
    sql = (
        "SELECT s.code, o.variable, o.time, o.value, o.units, o.quality_flag, o.is_validation "
        "FROM ingestion_observation o JOIN ingestion_station s ON s.id = o.station_id "
        "WHERE s.network = %s AND o.variable = ANY(%s)"
    )
    params: list = [network, variables]
    if stations:
        sql += " AND s.code = ANY(%s)"
        params.append(list(stations))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    frame = pd.DataFrame(
        rows, columns=["station", "variable", "time", "value", "units", "quality_flag", "is_validation"]
    )
    frame["time"] = pd.to_datetime(frame["time"], utc=True).dt.tz_localize(None)
    return frame


def stations_frame(*, network: str, stations: list[str] | None = None) -> pd.DataFrame:
    """Stations of a network as a PointData-style table.

    Returns
    -------
    pandas.DataFrame
        One row per station: ``code``, ``name``, ``lat``, ``lon`` (degrees, WGS 84), ``elevation``
        (m), ``land_cover``, ``network``, ``source``; ``stations`` (codes) narrows the network.
    """
    qs = Station.objects.filter(network=network)
    if stations:
        qs = qs.filter(code__in=stations)
    return pd.DataFrame(
        [
            {
                "code": s.code,
                "name": s.name,
                "lat": s.geom.y,
                "lon": s.geom.x,
                "elevation": s.elevation,
                "land_cover": s.land_cover,
                "network": s.network,
                "source": s.source,
            }
            for s in qs
        ]
    )


def source_frames(source: str, *, variable_prefix: str) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Every observation and station of one data source (e.g. ``ISMN``), over all its networks.

    Parameters
    ----------
    source : str
        ``Station.source``.
    variable_prefix : str
        Only the observation variables starting with it (e.g. ``sm_``).

    Returns
    -------
    observations : pandas.DataFrame
        As :func:`observations_frame`, all networks of the source.
    stations : pandas.DataFrame
        As :func:`stations_frame`, only stations of that source.
    networks : list of str
        The source's networks, sorted; empty when none is ingested (both frames are then empty).
    """
    networks = sorted(Station.objects.filter(source=source).values_list("network", flat=True).distinct())
    if not networks:
        return pd.DataFrame(), pd.DataFrame(), []
    variables = sorted(
        Observation.objects.filter(station__source=source, variable__startswith=variable_prefix)
        .values_list("variable", flat=True)
        .distinct()
    )
    obs = pd.concat([observations_frame(network=n, variables=variables) for n in networks], ignore_index=True)
    stations = pd.concat([stations_frame(network=n) for n in networks], ignore_index=True)
    return obs, stations[stations["source"] == source], networks


def ingested_input(role: str, kind: str) -> dict:
    """Lineage entry for every file of one reader kind that ingested successfully.

    Returns
    -------
    dict
        ``role``, ``kind``, ``path`` (the files' common folder, :func:`public_path`), ``files``
        (count) and ``sha256`` (digest of the files' checksums in path order), for :func:`record_inputs`.
    """
    runs = list(
        IngestRun.objects.filter(kind=kind, status=IngestRun.Status.SUCCEEDED)
        .order_by("source_path")
        .values_list("source_path", "checksum")
    )
    return {
        "role": role,
        "kind": kind,
        "path": public_path(os.path.commonpath([os.path.abspath(p) for p, _ in runs])) if runs else "",
        "files": len(runs),
        "sha256": hashlib.sha256("".join(c for _, c in runs).encode()).hexdigest(),
    }


def file_input(role: str, path: Path) -> dict:
    """Lineage entry for one input file: ``role``, ``path`` (:func:`public_path`), ``sha256`` and ``size`` (bytes)."""
    return {"role": role, "path": public_path(path), "sha256": sha256(path), "size": path.stat().st_size}


def twin_input(source: str, parameters: dict) -> dict:
    """Lineage entry for a synthetic twin made in memory: ``role``, ``path`` (the function or class that makes
    it, ``source``), an empty ``sha256`` (no file) and the ``parameters`` that fix it."""
    return {
        "role": "synthetic twin (generated in memory, no file)",
        "path": source,
        "sha256": "",
        "parameters": parameters,
    }


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


def append_log(run_id: int, message: str) -> None:
    """Append a timestamped line to a run's log (visible in the admin while the run goes on)."""
    line = f"{timezone.now():%H:%M:%S} {message}\n"
    logger.info("run %s: %s", run_id, message)
    GenerationRun.objects.filter(id=run_id).update(log=Concat(F("log"), Value(line)))


class Stages:
    """The stage timings and progress of a run: ``with stages("tower_model"): ...`` times one stage.

    Each stage that finishes stores its seconds (rounded to ms) under its name in
    ``GenerationRun.timings`` at once and logs "<name> done in <s> s"; a stage that raises records
    nothing. While the run goes on, ``GenerationRun.summary["progress"]`` says where it is (the
    admin's run page shows it; the pipeline's own summary replaces it when the run is published, a
    failed run keeps it, naming the stage that failed):

    ``stage`` (the current or last stage), ``state`` (``running`` or ``done``), ``number`` (1-based),
    ``of`` (the stages of the product's last succeeded run, None before the first), ``done`` (the
    finished stages), ``fraction`` (0-1, the share of the last succeeded run's time spent in the
    stages finished so far, None when unknown) and ``updated_at`` (ISO 8601, UTC).

    Every callable in :attr:`listeners` is called with that dict at each change (the ``generate``
    command draws its progress bar from it); a listener that raises is logged and ignored.

    Attributes
    ----------
    timings : dict
        Stage name -> seconds, in the order the stages finished.
    progress : dict
        The last progress stored.
    """

    listeners: list = []

    def __init__(self, run: GenerationRun) -> None:
        self.run_id = run.id
        self.timings: dict[str, float] = {}
        previous = (
            GenerationRun.objects.filter(product=run.product, status=GenerationRun.Status.SUCCEEDED)
            .exclude(id=run.id)
            .order_by("-finished_at")
            .values_list("timings", flat=True)
            .first()
        )
        self.previous: dict[str, float] = {
            k: float(v) for k, v in (previous or {}).items() if isinstance(v, int | float) and not isinstance(v, bool)
        }
        self.progress: dict = {}

    def _report(self, name: str, state: str) -> None:
        total = sum(self.previous.values())
        known = total > 0 and all(stage in self.previous for stage in self.timings)
        self.progress = {
            "stage": name,
            "state": state,
            "number": len(self.timings) + (1 if state == "running" else 0),
            "of": len(self.previous) or None,
            "done": list(self.timings),
            "fraction": round(min(sum(self.previous[s] for s in self.timings) / total, 1.0), 3) if known else None,
            "updated_at": timezone.now().isoformat(),
        }
        run = GenerationRun.objects.filter(id=self.run_id)
        summary = run.values_list("summary", flat=True).first() or {}
        run.update(summary={**summary, "progress": self.progress})
        for listener in list(self.listeners):
            try:
                listener(dict(self.progress))
            except Exception:  # a display must never fail a run
                logger.exception("progress listener %r failed", listener)

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        self._report(name, "running")
        yield
        self.timings[name] = round(time.perf_counter() - started, 3)
        GenerationRun.objects.filter(id=self.run_id).update(timings=self.timings)
        append_log(self.run_id, f"{name} done in {self.timings[name]:.1f} s")
        self._report(name, "done")
