"""What the subset download form of the dataset page needs to know about the latest version's grid.

Only metadata is read (variable names and attributes, coordinate values); no data values. The
metadata of a published file never changes, so it is cached per (path, size, mtime).
"""

from __future__ import annotations

from django.urls import reverse

from portal.subsets import core, services
from portal.subsets.grids import grid_info

from .models import Dataset, DatasetFile, DatasetVersion

# kind -> the formats its API action writes (the first is the form's default)
KIND_FORMATS = {kind: list(core.FORMATS if kind == "subset" else services.SERIES_FORMATS) for kind in services.KINDS}
FORMAT_LABELS = {
    "netcdf": "NetCDF",
    "geotiff": "GeoTIFF",
    "csv": "CSV",
    "zarr": "Zarr (zip)",
    "coveragejson": "CoverageJSON",
}


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
        version holds no readable grid. ``versions``: the latest number and those of the older
        versions the same form can cut (the same grid files, variables and grid; their period may
        differ: the subset API says so, naming ``time``), newest first.
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
        "versions": [version.number, *_same_form(versions[1:], grids)],
        "api": reverse("api:dataset-detail", args=[dataset.id]),
        "login": dataset.share_type == Dataset.ShareType.LOGIN,
        "grids": grids,
        "kinds": KIND_FORMATS,
        "formats": [(f, FORMAT_LABELS.get(f, f)) for f in core.FORMATS],
    }


def _same_form(older: list[DatasetVersion], grids: list[dict]) -> list[int]:
    """The numbers of the ``older`` versions whose grids match the latest's ``grids`` (files, variables, cells)."""
    shape = [(g["file"], [v["name"] for v in g["variables"]], g["shape"], g["resolution"]) for g in grids]
    same = []
    for version in older:
        try:
            theirs = [g for g in (_grid(f) for f in _netcdf_files(version)) if g is not None]
        except core.SubsetError:
            continue
        if [(g["file"], [v["name"] for v in g["variables"]], g["shape"], g["resolution"]) for g in theirs] == shape:
            same.append(version.number)
    return same


def _netcdf_files(version: DatasetVersion) -> list[DatasetFile]:
    """The version's only NetCDF file, or all of them when there are several (each is checked)."""
    try:
        return [services.gridded_file(version, None)]
    except core.SubsetError:  # none, or several: try each
        names = [f.name for f in version.files.all() if f.name.endswith(".nc")]
    return [services.gridded_file(version, name) for name in names]


def _grid(f: DatasetFile) -> dict | None:
    info = grid_info(f)
    if info is None:
        return None
    west, south, east, north = info.bbox
    return {
        "file": f.name,
        "variables": [
            {
                "name": name,
                "units": attrs.get("units", ""),
                "long_name": attrs.get("long_name", "") or attrs.get("standard_name", ""),
            }
            for name, _, attrs in info.parameters
        ],
        "lon": (west, east),
        "lat": (south, north),
        "resolution": info.resolution,
        "shape": info.shape,
        "time": (info.interval[0][:10], info.interval[1][:10]),
        "steps": info.steps,
    }
