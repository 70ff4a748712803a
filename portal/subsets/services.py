"""Synchronous subsets of a published gridded file (issue 6, first step; no asynchronous jobs yet).

:func:`subset_file` opens one NetCDF file of a published version lazily, validates the request
(:class:`portal.subsets.core.SubsetRequest`), estimates the output size before reading anything,
refuses what is larger than ``settings.SUBSET_SYNC_MAX_BYTES`` with a message that says what to do
instead, and writes the answer in the requested format to a temporary file the caller streams and
deletes. Requests larger than the limit will become Celery jobs (not built yet).
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import xarray as xr
from django.conf import settings

from portal.catalog.models import DatasetFile, DatasetVersion

from . import core

# format -> (file suffix, media type)
OUTPUTS = {"netcdf": (".nc", "application/x-netcdf"), "geotiff": (".tif", "image/tiff"), "csv": (".csv", "text/csv"),
           "zarr": (".zarr.zip", "application/zip"), "coveragejson": (".covjson", "application/prs.coverage+json")}


class SubsetTooLarge(core.SubsetError):
    """The estimated output exceeds the synchronous limit."""


@dataclass
class SubsetResult:
    """A written subset: ``path`` (a temporary file the caller deletes), ``filename``, ``media_type``, ``size``."""

    path: Path
    filename: str
    media_type: str
    size: int


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


def open_cube(f: DatasetFile, request: core.SubsetRequest | None = None) -> xr.Dataset:
    """Open the published grid ``f`` lazily, from the store that serves ``request`` fastest.

    Every reader of published grids (subset downloads, series, jobs, OGC API-EDR, OPeNDAP) opens
    them here; nothing is loaded until values are indexed. Use as a context manager.

    Parameters
    ----------
    f : DatasetFile
        A CF grid NetCDF of a published version (dims time, lat, lon).
    request : portal.subsets.core.SubsetRequest, optional
        What will be read (chooses between the cube stores); None for metadata only.

    Returns
    -------
    xarray.Dataset
        CF-decoded (scale/offset/fill applied), lazily indexed.
    """
    return xr.open_dataset(Path(settings.DATA_ROOT) / f.path, mask_and_scale=True)


def subset_file(f: DatasetFile, request: core.SubsetRequest) -> SubsetResult:
    """Cut ``request`` out of the published file ``f`` and write it in ``request.format``.

    Parameters
    ----------
    f : DatasetFile
        A CF grid NetCDF of a published version (dims time, lat, lon).
    request : portal.subsets.core.SubsetRequest

    Returns
    -------
    SubsetResult

    Raises
    ------
    portal.subsets.core.SubsetError
        The file is not a (time, lat, lon) grid, or the request is empty, out of the extent or
        malformed (the message names the field).
    SubsetTooLarge
        The estimated output is above ``settings.SUBSET_SYNC_MAX_BYTES``.
    """
    dataset = f.version.dataset
    with open_cube(f, request) as ds:
        estimate = core.estimate_bytes(ds, request)
        limit = settings.SUBSET_SYNC_MAX_BYTES
        if estimate > limit:
            raise SubsetTooLarge("bbox", f"the subset would be about {estimate / 2**20:.0f} MiB, above the "
                                         f"{limit / 2**20:.0f} MiB limit of a direct download: use a smaller box or "
                                         "period, fewer variables, or a stride")
        selection = core.select(ds, request)
        suffix, media_type = OUTPUTS[request.format]
        (Path(settings.DATA_ROOT) / "tmp").mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=suffix, dir=Path(settings.DATA_ROOT) / "tmp")
        os.close(fd)
        out = Path(tmp)
        try:
            if request.format == "netcdf":
                core.to_netcdf(selection, out, citation=dataset.ref_way_en or dataset.ref_way_cn or dataset.title_en,
                               attrs={"title": dataset.title_en, "doi": dataset.doi, "source_file": f.name,
                                      "source_version": f.version.number})
            elif request.format == "geotiff":
                core.to_geotiff(selection, out)
            elif request.format == "csv":
                core.to_csv(selection, out, drop_empty=request.geometry is not None)
            elif request.format == "zarr":
                core.to_zarr_zip(selection, out, attrs={"title": dataset.title_en, "doi": dataset.doi})
            else:
                out.write_text(json.dumps(core.to_coveragejson(selection)))
        except BaseException:
            out.unlink(missing_ok=True)
            raise
    stem = f"{dataset.id}_v{f.version.number}_{Path(f.name).stem}_subset"
    return SubsetResult(out, stem + suffix, media_type, out.stat().st_size)
