"""What the subset download form of the dataset page needs to know about the latest version's grid.

Only metadata is read (variable names and attributes, coordinate values); no data values. The
metadata of a published file never changes, so it is cached per (path, size, mtime).
"""
from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings
from django.urls import reverse

from portal.subsets import core, services

from .models import Dataset, DatasetFile, DatasetVersion

log = logging.getLogger(__name__)

# kind -> the formats its API action writes (the first is the form's default)
KIND_FORMATS = {kind: list(core.FORMATS if kind == "subset" else services.SERIES_FORMATS) for kind in services.KINDS}
FORMAT_LABELS = {"netcdf": "NetCDF", "geotiff": "GeoTIFF", "csv": "CSV", "zarr": "Zarr (zip)",
                 "coveragejson": "CoverageJSON"}


def subset_form_context(dataset: Dataset) -> dict | None:
    """The subset form's context for ``dataset``'s latest version, or None when it has no grid.

    Parameters
    ----------
    dataset : Dataset
        Its ``versions`` and their ``files`` are best prefetched (as ``queries.dataset_page`` does):
        then no query is made.

    Returns
    -------
    dict or None
        ``version`` (number), ``api`` (URL of the dataset in the API, ending in ``/``), ``login``
        (login-access dataset), ``kinds`` / ``formats`` (``{kind: [format, ...]}``, ``[(format,
        label)]``), and ``grids``: one entry per (time, lat, lon) NetCDF file of the version (the
        form offers a selector when there are several), each with ``file``, ``variables`` (list of
        ``{"name", "units", "long_name"}``), ``lon`` / ``lat`` (cell-edge extent, degrees),
        ``resolution`` ((dlon, dlat) degrees), ``shape`` ((n_lon, n_lat)), ``time`` ((first,
        last) ISO dates) and ``steps``. None when the dataset has no version or the latest
        version holds no readable grid.
    """
    versions = sorted(dataset.versions.all(), key=lambda v: -v.number)
    if not versions:
        return None
    version = versions[0]
    grids = [g for g in (_grid(f) for f in _netcdf_files(version)) if g is not None]
    if not grids:
        return None
    return {
        "version": version.number,
        "api": reverse("api:dataset-detail", args=[dataset.id]),
        "login": dataset.share_type == Dataset.ShareType.LOGIN,
        "grids": grids,
        "kinds": KIND_FORMATS,
        "formats": [(f, FORMAT_LABELS.get(f, f)) for f in core.FORMATS],
    }


def _netcdf_files(version: DatasetVersion) -> list[DatasetFile]:
    """The version's only NetCDF file, or all of them when there are several (each is checked)."""
    try:
        return [services.gridded_file(version, None)]
    except core.SubsetError:  # none, or several: try each
        names = [f.name for f in version.files.all() if f.name.endswith(".nc")]
    return [services.gridded_file(version, name) for name in names]


def _grid(f: DatasetFile) -> dict | None:
    path = Path(settings.DATA_ROOT) / f.path
    try:
        stat = os.stat(path)
    except OSError:
        log.warning("published file %s is missing: no subset form for it", path)
        return None
    try:
        meta = _metadata(str(path), stat.st_size, stat.st_mtime_ns, f)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("cannot read the metadata of %s (%s): no subset form for it", path, exc)
        return None
    return None if meta is None else dict(meta, file=f.name)


@functools.lru_cache(maxsize=64)
def _metadata(path: str, size: int, mtime_ns: int, f: DatasetFile) -> dict | None:
    """Metadata of a (time, lat, lon) grid, None for another NetCDF (the key is path, size, mtime)."""
    with services.open_cube(f) as ds:
        for name in ("time", "lat", "lon"):
            if name not in ds.coords or ds[name].dims != (name,) or ds.sizes[name] == 0:
                return None
        variables = [{"name": str(name), "units": str(v.attrs.get("units", "")),
                      "long_name": str(v.attrs.get("long_name", "") or v.attrs.get("standard_name", ""))}
                     for name, v in ds.data_vars.items() if "lat" in v.dims and "lon" in v.dims]
        if not variables:
            return None
        lon, lat = (np.asarray(ds[c].values, dtype=float) for c in ("lon", "lat"))
        times = ds["time"].values
        dlon, dlat = _spacing(lon), _spacing(lat)
        return {
            "variables": variables,
            "lon": (_round(lon.min() - dlon / 2), _round(lon.max() + dlon / 2)),
            "lat": (_round(max(lat.min() - dlat / 2, -90.0)), _round(min(lat.max() + dlat / 2, 90.0))),
            "resolution": (_round(dlon), _round(dlat)),
            "shape": (lon.size, lat.size),
            "time": (_date(times[0]), _date(times[-1])),
            "steps": int(times.size),
        }


def _spacing(values: np.ndarray) -> float:
    return float(np.median(np.abs(np.diff(values)))) if values.size > 1 else 0.0


def _round(value: float) -> float:
    return round(float(value), 6)


def _date(value) -> str:
    """ISO date (YYYY-MM-DD) of a time value: numpy datetime64 or cftime."""
    if hasattr(value, "isoformat") and not isinstance(value, pd.Timestamp | np.datetime64):
        return value.isoformat()[:10]
    return pd.Timestamp(value).date().isoformat()
