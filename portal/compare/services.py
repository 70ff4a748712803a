"""Versions side by side: one service, :func:`compare_versions`, and the difference map's PNG.

What two published versions of a dataset differ in: the lineage (parameters, inputs with their
SHA-256 checksums, code version), the validation metrics per split and scope (pooled, per station,
per class; which stations got better or worse by r, KGE and ubRMSE; metrics that mean nothing for
a reference keep their reason) and, for grids, the area-weighted domain-mean difference series and
a small difference map, read from the map-chunked cube store (:mod:`portal.subsets.store`).

Access is the front door's business (the views call :func:`portal.catalog.access.check_download`
first): a comparison shows the data, so it follows the download rule.

Versions are immutable, so the grid part is cached (Django cache) per pair of file checksums,
variable and time step.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from django.core.cache import cache

from portal import storage
from portal.catalog.models import Dataset, DatasetFile, DatasetVersion
from portal.subsets import store
from products.lineage import json_safe, public_path
from products.models import ValidationResult

from . import diff

MAX_SERIES_VALUES = 2**26
"""At most this many cells x time steps are read per version for the domain-mean series: longer
series are read at evenly spaced steps (``series.stride_note`` says so)."""

MAX_MAP_CELLS = 16_384
"""The difference map in JSON has at most this many cells (block means of the full grid)."""

MAX_PNG_CELLS = 360 * 720
"""The difference map as PNG has at most this many cells (block means of the full grid)."""

CACHE_SECONDS = 7 * 24 * 3600
_ROW_FIELDS = ("variable", "units", "split", "scope", "label", "n", *diff.METRICS, "not_meaningful")


class CompareError(ValueError):
    """A malformed request (400): ``field`` names the parameter."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class VersionNotFound(LookupError):
    """No published version of that number (404)."""


def parse_number(name: str, value: str | None) -> int:
    """A version number from the query string.

    Raises
    ------
    CompareError
        Missing, not ASCII digits, or 0.
    """
    if value is None or value == "":
        raise CompareError(name, f"{name}: required, a published version number (e.g. {name}=1)")
    if not (value.isascii() and value.isdigit()) or int(value) < 1 or len(value) > 9:
        raise CompareError(name, f"{name}: expected a version number (a positive integer), got {value[:20]!r}")
    return int(value)


def _version(dataset: Dataset, number: int) -> DatasetVersion:
    version = dataset.versions.filter(number=number).prefetch_related("files").first()
    if version is None:
        raise VersionNotFound(f"{dataset.id} has no published version {number}")
    return version


def _latest_number(dataset: Dataset) -> int | None:
    return dataset.versions.order_by("-number").values_list("number", flat=True).first()


def previous_number(dataset: Dataset, number: int) -> int | None:
    """The number of the published version before ``number`` (None for the first)."""
    return dataset.versions.filter(number__lt=number).order_by("-number").values_list("number", flat=True).first()


def _about(version: DatasetVersion, latest: int | None) -> dict[str, Any]:
    lineage = version.lineage or {}
    return {
        "number": version.number,
        "published_at": version.published_at.isoformat() if version.published_at else None,
        "run": lineage.get("run"),
        "code_version": lineage.get("code_version", ""),
        "notes": version.notes,
        "superseded_by": latest if latest is not None and latest != version.number else None,
        "files": [{"name": f.name, "sha256": f.sha256, "size": f.size} for f in version.files.all()],
    }


def _public_inputs(inputs: list | None) -> list[dict]:
    out = []
    for item in inputs or []:
        item = dict(item)
        if isinstance(item.get("path"), str):
            item["path"] = public_path(item["path"])
        out.append(item)
    return out


def _rows(version: DatasetVersion) -> list[dict]:
    return list(ValidationResult.objects.filter(version=version).values(*_ROW_FIELDS))


# --------------------------------------------------------------------------- grids


def _open(f: DatasetFile) -> xr.Dataset | None:
    target = store.store_paths(f.path)["map"].as_posix()
    if storage.is_file(f"{target}/.zmetadata"):
        return storage.open_zarr(target)
    if storage.is_file(f.path):
        ds = storage.open_dataset(f.path, mask_and_scale=True)
        if store.is_gridded(ds):
            return ds
        ds.close()
    return None


def _gridded(ds: xr.Dataset) -> list[str]:
    return [n for n, v in ds.data_vars.items() if v.dims == ("time", "lat", "lon")]


def _file_pairs(va: DatasetVersion, vb: DatasetVersion) -> list[tuple[DatasetFile, DatasetFile]]:
    fb = {f.name: f for f in vb.files.all()}
    return [
        (f, fb[f.name]) for f in sorted(va.files.all(), key=lambda f: f.name) if f.name.endswith(".nc") and f.name in fb
    ]


def _parse_time(value: str | None) -> pd.Timestamp | None:
    if value in (None, ""):
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        raise CompareError("time", f"time: expected an ISO 8601 date or date-time, got {str(value)[:30]!r}") from None
    if stamp is pd.NaT:
        raise CompareError("time", "time: expected an ISO 8601 date or date-time")
    return stamp.tz_convert(None) if stamp.tzinfo else stamp


def _selected_grid(
    va: DatasetVersion, vb: DatasetVersion, file: str | None, variable: str | None
) -> tuple[list[dict], tuple | None]:
    """The grids both versions hold (one entry per common NetCDF name) and the one chosen to difference.

    Returns ``(grids, chosen)`` where ``chosen`` is ``(fa, fb, ds_a, ds_b, variable, times)`` or None.
    """
    grids, chosen, opened = [], None, []
    names = []
    for fa, fb in _file_pairs(va, vb):
        ds_a, ds_b = _open(fa), _open(fb)
        opened += [d for d in (ds_a, ds_b) if d is not None]
        if ds_a is None or ds_b is None:
            continue
        names.append(fa.name)
        common = [v for v in _gridded(ds_a) if v in set(_gridded(ds_b))]
        reason = diff.same_grid(ds_a["lat"].values, ds_a["lon"].values, ds_b["lat"].values, ds_b["lon"].values)
        times = np.intersect1d(ds_a["time"].values, ds_b["time"].values)
        if not reason and times.size == 0:
            reason = "the versions share no time step"
        if not reason and not common:
            reason = "the versions share no gridded variable"
        entry = {
            "file": fa.name,
            "variables": common,
            "units": {v: ds_b[v].attrs.get("units", "") for v in common},
            "same_file": fa.sha256 == fb.sha256,
            "time_steps": {"a": int(ds_a.sizes["time"]), "b": int(ds_b.sizes["time"]), "common": int(times.size)},
            "comparable": not reason,
            "reason": reason,
        }
        grids.append(entry)
        if reason or chosen is not None or (file and fa.name != file):
            continue
        if variable and variable not in common:
            raise CompareError(
                "variable", f"variable: expected one of {common} (gridded in both versions of {fa.name})"
            )
        chosen = (fa, fb, ds_a, ds_b, variable or common[0], times)
    if file and file not in names:
        raise CompareError("file", f"file: expected one of {names} (NetCDF grids in both versions)")
    for ds in opened:  # every store opened but the chosen pair's (closed by the caller)
        if chosen is None or (ds is not chosen[2] and ds is not chosen[3]):
            ds.close()
    return grids, chosen


def _grid_difference(
    chosen: tuple, when: pd.Timestamp | None, max_map_cells: int, *, with_series: bool = True
) -> tuple[dict, np.ndarray]:
    fa, fb, ds_a, ds_b, name, times = chosen
    lat, lon = ds_a["lat"].values, ds_a["lon"].values
    cells = lat.size * lon.size
    ia = pd.Index(ds_a["time"].values)
    ib = pd.Index(ds_b["time"].values)
    # the domain-mean series, at evenly spaced common steps when the cube is large
    steps = diff.time_steps(times.size, cells, MAX_SERIES_VALUES) if with_series else np.zeros(0, dtype=int)
    block = max(1, 2**22 // max(cells, 1))
    means, rmss, counts = [], [], []
    for start in range(0, steps.size, block):
        t = times[steps[start : start + block]]
        a = ds_a[name].isel(time=ia.get_indexer(t)).values
        b = ds_b[name].isel(time=ib.get_indexer(t)).values
        m, r, c = diff.domain_mean_difference(a, b, lat)
        means.append(m), rmss.append(r), counts.append(c)
    # the map: one common step (the one asked for, nearest; default the last)
    k = times.size - 1 if when is None else int(np.argmin(np.abs(times - np.datetime64(when))))
    t = times[k]
    a = ds_a[name].isel(time=int(ia.get_loc(t))).values.astype("float64")
    b = ds_b[name].isel(time=int(ib.get_loc(t))).values.astype("float64")
    full = b - a
    factor = diff.coarsen_factor(lat.size, lon.size, max_map_cells)
    field = diff.block_mean(full, factor)
    finite = full[np.isfinite(full)]
    answer = {
        "file": fa.name,
        "variable": name,
        "units": ds_b[name].attrs.get("units", ""),
        "series": {
            "time": [pd.Timestamp(x).isoformat() for x in times[steps]],
            "mean_difference": np.concatenate(means).tolist() if means else [],
            "rms_difference": np.concatenate(rmss).tolist() if rmss else [],
            "cells": np.concatenate(counts).tolist() if counts else [],
            "steps_read": int(steps.size),
            "steps_common": int(times.size),
            "weights": "cos(latitude), cells valid in both versions",
        },
        "map": {
            "time": pd.Timestamp(t).isoformat(),
            "block": factor,
            "lat": diff.block_centres(lat, factor).tolist(),
            "lon": diff.block_centres(lon, factor).tolist(),
            "limit": diff.symmetric_limit(full),
            "cells_changed": int(np.count_nonzero(finite)),
            "cells_valid": int(finite.size),
            "max_abs_difference": float(np.abs(finite).max()) if finite.size else None,
        },
    }
    return answer, field


def _grid_part(chosen: tuple, when: pd.Timestamp | None) -> dict:
    fa, fb, _, _, name, _ = chosen
    key = f"compare:v1:{fa.sha256}:{fb.sha256}:{name}:{when.isoformat() if when is not None else ''}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    answer, field = _grid_difference(chosen, when, MAX_MAP_CELLS)
    answer["map"]["values"] = [[None if not math.isfinite(x) else float(f"{x:.6g}") for x in row] for row in field]
    answer = json_safe(answer)
    cache.set(key, answer, CACHE_SECONDS)
    return answer


# --------------------------------------------------------------------------- the services


def compare_versions(
    dataset: Dataset,
    a: int,
    b: int,
    *,
    file: str | None = None,
    variable: str | None = None,
    time: str | None = None,
) -> dict[str, Any]:
    """What differs between versions ``a`` and ``b`` of ``dataset`` (deltas are ``b - a``).

    Parameters
    ----------
    dataset : Dataset
    a, b : int
        Published version numbers (``a`` the reference; any order, equal allowed).
    file, variable : str, optional
        The grid (a NetCDF name held by both) and its variable to difference; default the first
        comparable grid and its first variable gridded in both.
    time : str, optional
        ISO date of the map's time step (the nearest common step is used); default the last common one.

    Returns
    -------
    dict
        JSON-ready: ``dataset``, ``a`` and ``b`` (number, published_at, run, code_version, notes,
        superseded_by, files with sha256), ``latest``, ``code_version`` (``{"a", "b", "changed"}``),
        ``parameters`` (:func:`portal.compare.diff.parameters_diff`), ``inputs``
        (:func:`portal.compare.diff.inputs_diff`, paths relative to the data folders),
        ``validation`` (:func:`portal.compare.diff.metric_deltas`), ``validation_counts``
        (:func:`portal.compare.diff.verdict_counts`), ``grids`` (the NetCDF grids of both versions,
        whether comparable and why not) and ``grid`` (for the chosen one: ``series`` of the
        cos(latitude)-weighted domain mean and RMS of ``b - a`` and ``map`` of ``b - a`` at one
        step, block means of at most :data:`MAX_MAP_CELLS` cells; None without a comparable grid).

    Raises
    ------
    VersionNotFound
        ``a`` or ``b`` is not a published version of ``dataset``.
    CompareError
        ``file``, ``variable`` or ``time`` malformed or not held by both versions.
    """
    va, vb = _version(dataset, a), _version(dataset, b)
    when = _parse_time(time)
    latest = _latest_number(dataset)
    la, lb = va.lineage or {}, vb.lineage or {}
    deltas = diff.metric_deltas(_rows(va), _rows(vb))
    grids, chosen = _selected_grid(va, vb, file, variable)
    try:
        grid = _grid_part(chosen, when) if chosen is not None else None
    finally:
        if chosen is not None:
            chosen[2].close(), chosen[3].close()
    return json_safe(
        {
            "dataset": dataset.id,
            "a": _about(va, latest),
            "b": _about(vb, latest),
            "latest": latest,
            "code_version": {
                "a": la.get("code_version", ""),
                "b": lb.get("code_version", ""),
                "changed": la.get("code_version", "") != lb.get("code_version", ""),
            },
            "parameters": diff.parameters_diff(la.get("parameters"), lb.get("parameters")),
            "inputs": diff.inputs_diff(_public_inputs(la.get("inputs")), _public_inputs(lb.get("inputs"))),
            "validation": deltas,
            "validation_counts": diff.verdict_counts(deltas),
            "grids": grids,
            "grid": grid,
            "compared_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
    )


def difference_png(
    dataset: Dataset, a: int, b: int, *, file: str | None = None, variable: str | None = None, time: str | None = None
) -> bytes:
    """The difference map ``b - a`` of :func:`compare_versions` as a PNG (north up, blue < 0 < red,
    transparent where either version has no value; at most :data:`MAX_PNG_CELLS` cells, block means).

    Raises
    ------
    VersionNotFound, CompareError
        As :func:`compare_versions`; ``CompareError("file")`` too when no grid is comparable.
    """
    va, vb = _version(dataset, a), _version(dataset, b)
    when = _parse_time(time)
    _, chosen = _selected_grid(va, vb, file, variable)
    if chosen is None:
        raise CompareError("file", "file: the two versions hold no grid that can be differenced")
    try:
        answer, field = _grid_difference(chosen, when, MAX_PNG_CELLS, with_series=False)
    finally:
        chosen[2].close(), chosen[3].close()
    scale = max(1, 720 // max(field.shape[1], 1))
    return diff.difference_png(field, answer["map"]["limit"], scale=min(scale, 8))
