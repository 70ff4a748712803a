"""The STAC catalogue of the portal: datasets as Collections, published versions as Items, search.

The protocol layer of ``/api/stac/`` (no HTTP here: the views in :mod:`portal.stac.views` translate
requests into these calls). Objects are built with pystac and its extension classes, then
serialised; :mod:`portal.stac.validation` checks them against the vendored JSON schemas.

What is what
------------
Collection
    One per dataset (TPDC record): id = the dataset id, title and description in the active
    language, extent = the record's box and period joined with those of its items, licence,
    keywords, providers, the Scientific extension (DOI, citation) and ``portal:share_type``.
Item
    One per published version and grid: a version with at most one gridded NetCDF (variables on
    ``time, lat, lon``) is one Item ``<dataset id>-v<number>`` holding every file of the version;
    a version with several grids gets one Item per grid, ``<dataset id>-v<number>-<file stem>``,
    each with its grid and the version's other files. Geometry and period come from the grid
    (cell edges, first and last step), else from the NetCDF files' ACDD extent attributes, else
    from the record. Assets: every file (href: the access-checked download URL; File extension
    size and sha256 multihash; Datacube extension ``cube:dimensions`` / ``cube:variables`` with
    units for NetCDF files) and, for a grid with cube stores, its two Zarr stores (served read-only
    by :func:`store_file` through the same access policy). Links: the version's EDR collection
    (latest version only: EDR serves the latest), OPeNDAP for each grid, the Version extension's
    ``latest-version`` / ``predecessor-version`` / ``successor-version``, the licence and the DOI.
    Properties: the Version, Scientific and Processing extensions, ``portal:share_type`` (TPDC
    share type: ``open-access``, ``login-access`` or ``protected``), ``portal:licence_acceptance``,
    ``portal:model`` (product, parameters, code version, run, validation summary) and
    ``portal:inputs`` (the run's inputs with their sha256).

The model behind a version is described by the Processing extension and ``portal:model`` rather
than by the Machine Learning Model (MLM) extension: MLM requires an asset holding the model itself
(role ``mlm:model``), and versions publish the model's outputs, not the trained model.

Search filters versions in the database (collections, ids) and items in memory (bbox, intersects,
datetime; extents come from file headers cached per file version): the catalogue holds tens of
versions. A table of item extents would be the next step for thousands. Pages are ordered by
collection id, version number (newest first) and item id; the ``next`` token is the last item's
position (keyset paging: a version published meanwhile does not shift the pages).

References
----------
* STAC 1.1.0 (Item, Collection, Catalog), https://github.com/radiantearth/stac-spec/tree/v1.1.0
* STAC API 1.0.0 (Core, Collections, Features, Item Search),
  https://github.com/radiantearth/stac-api-spec/tree/v1.0.0
* Extensions: datacube v2.2.0, version v1.2.0, scientific v1.0.0, processing v1.1.0, file v2.1.0
  (https://stac-extensions.github.io/); ACDD 1.3 (file extents); Zarr v2; RFC 7946 (GeoJSON, the
  antimeridian).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import pystac
import xarray as xr
from django.contrib.gis.geos import GEOSException, GEOSGeometry, MultiPolygon, Polygon
from django.db.models import Q
from django.urls import reverse
from pystac.extensions.datacube import DatacubeExtension, Dimension, Variable
from pystac.extensions.file import FileExtension
from pystac.extensions.scientific import ScientificExtension
from pystac.extensions.version import VersionExtension

from portal import storage
from portal.catalog import access
from portal.catalog import vocabulary as vocab
from portal.catalog.html import plain_text
from portal.catalog.metadata import PORTAL_NAME
from portal.catalog.models import Dataset, DatasetFile, DatasetVersion, localized
from portal.edr.services import dataset_collections
from portal.files import media_type_for, per_file_version
from portal.subsets import store
from portal.subsets.grids import GridInfo, grid_info

from .params import BadParameter, Search, encode_token

log = logging.getLogger(__name__)

STAC_VERSION = "1.1.0"
CATALOG_ID = "hydroportal"
CONFORMANCE = (
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "https://api.stacspec.org/v1.0.0/item-search",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
)
"""Conformance classes declared at ``/`` and ``/conformance`` (no Filter, Sort, Fields or Query; no
OpenAPI document describes these endpoints, so no ``oas30`` class either)."""

PROCESSING_SCHEMA = "https://stac-extensions.github.io/processing/v1.1.0/schema.json"
GEOJSON = "application/geo+json"
JSON = "application/json"
ZARR_MEDIA_TYPE = "application/vnd+zarr"
"""The media type of a Zarr store in STAC (STAC best practices, "Working with media types")."""
_STORE_ROLES = {
    "map": "map-chunked (one chunk per time step): fast maps and boxes of a few days",
    "series": "time-chunked (the whole series of a few cells per chunk): fast point series",
}
_DOI = re.compile(r"(10\.[0-9a-zA-Z]{4,}/\S+)$")


class NotFound(LookupError):
    """An unknown collection, item or store file (a 404)."""


# --------------------------------------------------------------------------- URLs


@dataclass(frozen=True)
class Urls:
    """Absolute URLs of the portal, for one request.

    Parameters
    ----------
    absolute : callable
        Turns a path (``/api/stac/``) into an absolute URL (``request.build_absolute_uri``).
    """

    absolute: Callable[[str], str]

    def stac(self, name: str, *args: Any) -> str:
        return self.absolute(reverse(f"stac:{name}", args=args))

    def download(self, f: DatasetFile) -> str:
        return self.absolute(reverse("catalog:download", args=[f.version.dataset_id, f.version.number, f.name]))

    def opendap(self, f: DatasetFile) -> str:
        return self.absolute(
            reverse(
                "opendap:dap2", kwargs={"dataset_id": f.version.dataset_id, "number": f.version.number, "name": f.name}
            )
        )

    def edr(self, collection_id: str) -> str:
        return self.absolute(reverse("edr:collection", kwargs={"collection_id": collection_id}))

    def store(self, f: DatasetFile, layout: str) -> str:
        """The root of a Zarr store (its keys are below it: ``<root>/.zmetadata``)."""
        key = self.stac("store", f.version.dataset_id, f.version.number, f.name, layout, ".zmetadata")
        return key[: -len("/.zmetadata")]

    def page(self, dataset: Dataset) -> str:
        return self.absolute(reverse("catalog:dataset_detail", args=[dataset.id]))

    def record(self, dataset: Dataset) -> str:
        return self.absolute(reverse("api:dataset-detail", args=[dataset.id]))


# --------------------------------------------------------------------------- file headers


@dataclass(frozen=True)
class FileCube:
    """What an Item needs from a NetCDF file: its Datacube fields and its extent.

    Attributes
    ----------
    dimensions, variables : dict
        ``cube:dimensions`` and ``cube:variables`` (Datacube extension 2.2 JSON).
    bbox : tuple of 4 float or None
        ``(west, south, east, north)`` from the ACDD ``geospatial_*`` attributes, else None.
    interval : tuple or None
        ``(start, end)`` aware UTC datetimes from ``time_coverage_*`` or the time axis, else None.
    """

    dimensions: dict[str, dict]
    variables: dict[str, dict]
    bbox: tuple[float, float, float, float] | None
    interval: tuple[dt.datetime, dt.datetime] | None


def _utc(value: Any) -> dt.datetime | None:
    """An aware UTC datetime from numpy, pandas, cftime or ISO text; None if it is not a time."""
    try:
        if hasattr(value, "calendar") and hasattr(value, "strftime"):  # cftime
            value = value.strftime("%Y-%m-%dT%H:%M:%S")
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        return None
    if stamp is pd.NaT:
        return None
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime()


def _rfc3339(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def _iso_step(times: np.ndarray) -> str | None:
    """The regular step of a datetime64 axis as an ISO 8601 duration (P1D, PT3H, P1M), else None."""
    if times.size < 2 or not np.issubdtype(times.dtype, np.datetime64):
        return None
    index = pd.DatetimeIndex(times)
    if index.is_month_start.all() and len(set(np.diff(index.year * 12 + index.month))) == 1:
        months = int(np.diff(index.year * 12 + index.month)[0])
        return f"P{months}M" if months else None
    steps = np.unique(np.diff(times.astype("datetime64[s]")).astype("int64"))
    if steps.size != 1 or steps[0] <= 0:
        return None
    seconds = int(steps[0])
    for unit, size in (("D", 86400), ("H", 3600), ("M", 60)):
        if seconds % size == 0:
            return f"P{seconds // size}D" if unit == "D" else f"PT{seconds // size}{unit}"
    return f"PT{seconds}S"


def _number_step(values: np.ndarray) -> float | None:
    if values.size < 2:
        return None
    steps = np.diff(values.astype(float))
    step = float(np.median(steps))
    return round(step, 9) if step and np.allclose(steps, step, rtol=1e-6, atol=1e-9) else None


_IDENTIFIERS = ("timeseries_id", "profile_id", "trajectory_id")
MAX_DIMENSION_VALUES = 2000


def describe_dataset(ds: xr.Dataset) -> FileCube:
    """The Datacube fields and extent of an opened NetCDF (coordinates and attributes only).

    Parameters
    ----------
    ds : xarray.Dataset
        Opened with times decoded; only 1-D coordinates and identifier variables are read.

    Returns
    -------
    FileCube
        ``lon`` / ``lat`` dimensions are horizontal spatial (x, y; extent of the cell centres,
        EPSG:4326 by default), ``time`` is temporal (RFC 3339 extent, ISO 8601 step when regular),
        any other dimension is of its own name's type with the values of its CF identifier
        variable (``cf_role``, up to 2000) or the index extent. Variables: data variables
        (``data``) and the other coordinates (``auxiliary``) with their dimensions, ``units``
        and ``long_name``.
    """
    dimensions: dict[str, dict] = {}
    interval = None
    for name, size in ds.sizes.items():
        name = str(name)
        coord = ds.coords.get(name)
        values = np.asarray(coord.values) if coord is not None and coord.dims == (name,) else None
        if (
            name in ("lon", "lat", "longitude", "latitude")
            and values is not None
            and values.size
            and np.issubdtype(values.dtype, np.number)
        ):
            dim = {
                "type": "spatial",
                "axis": "x" if name.startswith("lon") else "y",
                "extent": [float(np.nanmin(values)), float(np.nanmax(values))],
                "description": "longitude, degrees east" if name.startswith("lon") else "latitude, degrees north",
            }
            step = _number_step(values)
            if step is not None:
                dim["step"] = step
        elif (
            values is not None
            and values.size
            and (np.issubdtype(values.dtype, np.datetime64) or hasattr(values.flat[0], "calendar"))
        ):
            times = [t for t in (_utc(v) for v in (values.flat[0], values.flat[-1])) if t is not None]
            if len(times) < 2:
                continue
            start, end = min(times), max(times)
            interval = (start, end)
            dim = {"type": "temporal", "extent": [_rfc3339(start), _rfc3339(end)], "step": _iso_step(values)}
        else:
            ident = next(
                (v for v in ds.variables.values() if v.dims == (name,) and v.attrs.get("cf_role") in _IDENTIFIERS), None
            )
            dim = {"type": name, "description": f"{size} {name} entries"}
            if ident is not None and size <= MAX_DIMENSION_VALUES:
                dim["values"] = [
                    str(v) if not isinstance(v, bytes) else v.decode(errors="replace")
                    for v in np.asarray(ident.values).tolist()
                ]
            else:
                dim["extent"] = [0, max(int(size) - 1, 0)]
        dimensions[name] = dim
    variables: dict[str, dict] = {}
    for name, var in ds.variables.items():
        name = str(name)
        if name in dimensions and var.dims == (name,):
            continue
        entry: dict[str, Any] = {
            "dimensions": [str(d) for d in var.dims],
            "type": "data" if name in ds.data_vars else "auxiliary",
        }
        units = var.attrs.get("units") or var.encoding.get("units")
        if units and not (np.issubdtype(var.dtype, np.datetime64)):
            entry["unit"] = str(units)
        label = var.attrs.get("long_name") or var.attrs.get("standard_name")
        if label:
            entry["description"] = str(label)
        variables[name] = entry
    attrs = ds.attrs
    bbox = None
    try:
        west, east = float(attrs["geospatial_lon_min"]), float(attrs["geospatial_lon_max"])
        south, north = float(attrs["geospatial_lat_min"]), float(attrs["geospatial_lat_max"])
        if all(np.isfinite([west, east, south, north])) and -90 <= south <= north <= 90:
            bbox = (max(west, -180.0), south, min(east, 180.0), north)
    except (KeyError, TypeError, ValueError):
        pass
    start, end = _utc(attrs.get("time_coverage_start")), _utc(attrs.get("time_coverage_end"))
    if start is not None and end is not None:
        interval = (min(start, end), max(start, end))
    return FileCube(dimensions, variables, bbox, interval)


_CUBES: dict[tuple[str, int, int], FileCube | None] = {}


def file_cube(f: DatasetFile) -> FileCube | None:
    """:func:`describe_dataset` of a published NetCDF, cached per file version; None if unreadable."""

    def describe(relative: str) -> FileCube:
        with storage.open_dataset(relative, decode_times=True) as ds:
            return describe_dataset(ds)

    return per_file_version(
        f.path,
        _CUBES,
        describe,
        (OSError, ValueError, RuntimeError, KeyError, TypeError),
        "describe",
    )


# --------------------------------------------------------------------------- items


Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class ItemRef:
    """One Item: its id, version, grid (None: the whole version) and extent.

    Attributes
    ----------
    id : str
    version : DatasetVersion
    grid : DatasetFile or None
        The grid this Item is about when the version holds several.
    files : tuple of DatasetFile
        The files among its assets.
    grids : dict
        File id -> GridInfo of the gridded NetCDF files among ``files``.
    bbox : tuple of 4 float
        ``(west, south, east, north)``; ``west > east`` across the antimeridian.
    interval : tuple
        ``(start, end)`` aware UTC datetimes, either possibly None.
    """

    id: str
    version: DatasetVersion
    grid: DatasetFile | None
    files: tuple[DatasetFile, ...]
    grids: dict[int, GridInfo] = field(hash=False, compare=False)
    bbox: Box = (-180.0, -90.0, 180.0, 90.0)
    interval: tuple[dt.datetime | None, dt.datetime | None] = (None, None)

    @property
    def suffix(self) -> str:
        """The part after ``v<number>`` (``""`` or ``-<file stem>``)."""
        return f"-{Path(self.grid.name).stem}" if self.grid is not None else ""

    @property
    def sort_key(self) -> tuple[str, int, str]:
        return (self.version.dataset_id, -self.version.number, self.id)


def _grids(version: DatasetVersion) -> list[tuple[DatasetFile, GridInfo]]:
    return [
        (f, info)
        for f in sorted(version.files.all(), key=lambda f: f.name)
        if f.name.endswith(".nc") and (info := grid_info(f)) is not None
    ]


def _union(boxes: Iterable[Box]) -> Box | None:
    boxes = list(boxes)
    if not boxes:
        return None
    south, north = min(b[1] for b in boxes), max(b[3] for b in boxes)
    if any(b[0] > b[2] for b in boxes):
        if len(boxes) == 1:
            return boxes[0]
        return (-180.0, south, 180.0, north)
    return (min(b[0] for b in boxes), south, max(b[2] for b in boxes), north)


def _span(intervals: Iterable[tuple[dt.datetime | None, dt.datetime | None]]):
    intervals = list(intervals)
    starts = [s for s, _ in intervals if s is not None]
    ends = [e for _, e in intervals if e is not None]
    return (min(starts) if starts else None, max(ends) if ends else None)


def _record_extent(dataset: Dataset) -> tuple[Box | None, tuple[dt.datetime | None, dt.datetime | None]]:
    box = tuple(float(v) for v in dataset.bbox.extent) if dataset.bbox is not None else None
    return box, (dataset.acq_start, dataset.acq_end)


def version_items(version: DatasetVersion) -> list[ItemRef]:
    """The Items of a published version (see the module docstring), in id order."""
    files = tuple(sorted(version.files.all(), key=lambda f: f.name))
    grids = _grids(version)
    record_box, record_period = _record_extent(version.dataset)
    if len(grids) > 1:
        others = tuple(f for f in files if f.id not in {g.id for g, _ in grids})
        refs = []
        for f, info in grids:
            interval = (_utc(info.interval[0]), _utc(info.interval[1]))
            refs.append(
                ItemRef(
                    f"{version.dataset_id}-v{version.number}-{Path(f.name).stem}",
                    version,
                    f,
                    (f, *others),
                    {f.id: info},
                    info.bbox,
                    interval,
                )
            )
        return refs
    if grids:
        f, info = grids[0]
        box, interval = info.bbox, (_utc(info.interval[0]), _utc(info.interval[1]))
    else:
        cubes = [c for c in (file_cube(f) for f in files if f.name.endswith(".nc")) if c is not None]
        box = _union(c.bbox for c in cubes if c.bbox is not None) or record_box or (-180.0, -90.0, 180.0, 90.0)
        found = [c.interval for c in cubes if c.interval is not None]
        interval = _span(found) if found else record_period
    return [
        ItemRef(
            f"{version.dataset_id}-v{version.number}",
            version,
            None,
            files,
            {f.id: info for f, info in grids},
            box,
            interval,
        )
    ]


def _geometry(box: Box) -> dict:
    """GeoJSON of a box; a box across the antimeridian is a MultiPolygon of its two sides (RFC 7946 3.1.9)."""
    west, south, east, north = box

    def ring(w: float, e: float) -> list[list[list[float]]]:
        return [[[w, south], [e, south], [e, north], [w, north], [w, south]]]

    if west > east:
        return {"type": "MultiPolygon", "coordinates": [ring(west, 180.0), ring(-180.0, east)]}
    return {"type": "Polygon", "coordinates": ring(west, east)}


def _doi(dataset: Dataset) -> str | None:
    match = _DOI.search((dataset.doi or "").strip())
    return match.group(1) if match else None


def _citation(dataset: Dataset) -> str | None:
    return plain_text(localized(dataset, "ref_way")) or None


def _licence(dataset: Dataset) -> str:
    found = vocab.spdx_licence(dataset.license_url)
    return found[0] if found else "other"


def _licence_link(dataset: Dataset) -> pystac.Link | None:
    url = (dataset.license_url or "").strip()
    if url.startswith(("http://", "https://")):
        return pystac.Link("license", url, title="Licence")
    return None


def _sort_versions(dataset: Dataset) -> list[DatasetVersion]:
    return sorted(dataset.versions.all(), key=lambda v: v.number)


def _counterpart(version: DatasetVersion, suffix: str) -> str:
    """The id of ``version``'s Item with the same grid suffix, else its first Item."""
    refs = version_items(version)
    return next((r.id for r in refs if r.suffix == suffix), refs[0].id)


def _asset_cube(cube_source: FileCube | None) -> dict[str, Any] | None:
    if cube_source is None or not cube_source.dimensions:
        return None
    return {
        "dimensions": {k: Dimension.from_dict(v) for k, v in cube_source.dimensions.items()},
        "variables": {k: Variable(v) for k, v in cube_source.variables.items()},
    }


def build_item(ref: ItemRef, urls: Urls) -> pystac.Item:
    """The pystac Item of ``ref`` (see the module docstring for what it holds).

    Parameters
    ----------
    ref : ItemRef
    urls : Urls

    Returns
    -------
    pystac.Item
        Links and asset hrefs are absolute; serialise with ``to_dict(transform_hrefs=False)``.
    """
    version, dataset = ref.version, ref.version.dataset
    start, end = ref.interval
    if start is not None and end is not None:
        when = None
    else:  # one end or none known: an instant (the known end, else the publication)
        when, start, end = start or end or version.published_at, None, None
    title = dataset.title or dataset.id
    properties: dict[str, Any] = {
        "title": f"{title} v{version.number}" + (f" ({ref.grid.name})" if ref.grid is not None else ""),
        "created": _rfc3339(version.published_at.astimezone(dt.UTC)),
        "license": _licence(dataset),
        "portal:share_type": access.share_type(dataset),
        "portal:licence_acceptance": bool(dataset.licence_acceptance),
    }
    if version.notes:
        properties["description"] = version.notes
    item = pystac.Item(
        id=ref.id,
        geometry=_geometry(ref.bbox),
        bbox=list(ref.bbox),
        datetime=when,
        properties=properties,
        start_datetime=start,
        end_datetime=end,
        collection=dataset.id,
    )
    _add_item_links(item, ref, urls)
    _add_assets(item, ref, urls)
    _add_version(item, ref, urls)
    _add_science(item, dataset)
    _add_processing(item, version)
    if ref.grids:  # the grid's cube, at the Item level too
        f = next(f for f in ref.files if f.id in ref.grids)
        cube = _asset_cube(file_cube(f))
        if cube is not None:
            DatacubeExtension.ext(item, add_if_missing=True).apply(**cube)
    return item


def _add_item_links(item: pystac.Item, ref: ItemRef, urls: Urls) -> None:
    dataset_id = ref.version.dataset_id
    item.add_link(pystac.Link("self", urls.stac("item", dataset_id, ref.id), GEOJSON))
    item.add_link(pystac.Link("root", urls.stac("landing"), JSON, title="The STAC API"))
    item.add_link(pystac.Link("parent", urls.stac("collection", dataset_id), JSON))
    item.add_link(pystac.Link("collection", urls.stac("collection", dataset_id), JSON))
    item.add_link(pystac.Link("about", urls.page(ref.version.dataset), "text/html", title="The dataset's page"))
    if (licence := _licence_link(ref.version.dataset)) is not None:
        item.add_link(licence)
    if (doi := _doi(ref.version.dataset)) is not None:
        item.add_link(pystac.Link("cite-as", f"https://doi.org/{doi}", title="DOI of the dataset"))
    edr = _edr_ids(ref.version)
    for f in ref.files:
        if f.id in ref.grids:
            if f.id in edr:
                item.add_link(
                    pystac.Link(
                        "related",
                        urls.edr(edr[f.id]),
                        JSON,
                        title=f"OGC API-EDR collection of {f.name} (position, area and cube queries)",
                    )
                )
            item.add_link(
                pystac.Link(
                    "related",
                    urls.opendap(f),
                    "text/html",
                    title=f"OPeNDAP (DAP2) access to {f.name}: open it lazily with xarray.open_dataset(url)",
                )
            )


def _edr_ids(version: DatasetVersion) -> dict[int, str]:
    """File id -> EDR collection id of the version's grids (the latest version only: EDR serves it)."""
    latest = max(_sort_versions(version.dataset), key=lambda v: v.number)
    if latest.id != version.id:
        return {}
    return {c.file.id: c.id for c in dataset_collections(version.dataset)}


def _add_assets(item: pystac.Item, ref: ItemRef, urls: Urls) -> None:
    for f in ref.files:
        media_type = media_type_for(f.name, default=f.media_type)
        asset = pystac.Asset(
            urls.download(f), title=f.name, description=f.description or None, media_type=media_type, roles=["data"]
        )
        item.add_asset(f.name, asset)
        files = FileExtension.ext(asset, add_if_missing=True)
        files.size = int(f.size)
        if re.fullmatch(r"[0-9a-f]{64}", f.sha256 or "") and f.sha256 != "0" * 64:
            files.checksum = "1220" + f.sha256  # multihash: sha2-256 (0x12), 32 bytes (0x20)
        if not f.name.endswith(".nc"):
            continue
        cube = _asset_cube(file_cube(f))
        if cube is not None:
            DatacubeExtension.ext(asset, add_if_missing=True).apply(**cube)
        if f.id not in ref.grids:
            continue
        paths = store.store_paths(f.path)
        for layout, path in paths.items():
            if not storage.is_file(f"{path.as_posix()}/.zmetadata"):
                continue
            zarr = pystac.Asset(
                urls.store(f, layout),
                title=f"{Path(f.name).stem} {layout}.zarr",
                description=f"Zarr v2 store (consolidated metadata) of {f.name}, {_STORE_ROLES[layout]}; read-only",
                media_type=ZARR_MEDIA_TYPE,
                roles=["data"],
            )
            item.add_asset(f"{Path(f.name).stem}-{layout}.zarr", zarr)
            if cube is not None:
                DatacubeExtension.ext(zarr, add_if_missing=True).apply(**cube)
    _add_thumbnail(item, ref, urls)


def _add_thumbnail(item: pystac.Item, ref: ItemRef, urls: Urls) -> None:
    """A "thumbnail" asset (the map previews' quicklook PNG, rendered on first request and cached) for an
    Item about a grid: the last time step of its first variable (``portal.maps``)."""
    grids = [f for f in ref.files if f.id in ref.grids]
    if not grids:
        return
    path = reverse("maps:quicklook", args=[ref.version.dataset_id, ref.version.number])
    if ref.grid is not None or len(grids) > 1:
        path += "?" + urlencode({"file": grids[0].name})
    item.add_asset(
        "thumbnail",
        pystac.Asset(
            urls.absolute(path),
            title="Quicklook",
            description=f"The last time step of the first variable of {grids[0].name} (PNG)",
            media_type=pystac.MediaType.PNG,
            roles=["thumbnail"],
        ),
    )


def _add_version(item: pystac.Item, ref: ItemRef, urls: Urls) -> None:
    versions = _sort_versions(ref.version.dataset)
    VersionExtension.ext(item, add_if_missing=True).apply(version=str(ref.version.number), deprecated=False)
    dataset_id = ref.version.dataset_id
    numbers = [v.number for v in versions]
    position = numbers.index(ref.version.number)
    neighbours = [("latest-version", versions[-1])]
    if position > 0:
        neighbours.append(("predecessor-version", versions[position - 1]))
    if position < len(versions) - 1:
        neighbours.append(("successor-version", versions[position + 1]))
    for rel, other in neighbours:
        item_id = _counterpart(other, ref.suffix) if other.id != ref.version.id else ref.id
        item.add_link(pystac.Link(rel, urls.stac("item", dataset_id, item_id), GEOJSON, title=f"v{other.number}"))


def _add_science(obj: pystac.Item | pystac.Collection, dataset: Dataset) -> None:
    doi, citation = _doi(dataset), _citation(dataset)
    if doi or citation:
        ScientificExtension.ext(obj, add_if_missing=True).apply(doi=doi, citation=citation)


def _add_processing(item: pystac.Item, version: DatasetVersion) -> None:
    lineage = version.lineage or {}
    product = lineage.get("product")
    if not product:
        return
    inputs = [i for i in lineage.get("inputs") or [] if isinstance(i, dict)]
    described = "; ".join(
        f"{i.get('role', 'input')}"
        + (f" ({i['path']}, sha256 {i['sha256']})" if i.get("path") and i.get("sha256") else "")
        for i in inputs
    )
    item.stac_extensions.append(PROCESSING_SCHEMA)
    item.properties["processing:lineage"] = (
        f"Generated by the portal's '{product}' pipeline (run {lineage.get('run')}, code "
        f"{lineage.get('code_version') or 'unknown'}) from: {described or 'no recorded inputs'}"
    )
    item.properties["processing:software"] = {
        f"{PORTAL_NAME} products.{product}": lineage.get("code_version") or "unknown"
    }
    item.properties["portal:model"] = {
        "product": product,
        "run": lineage.get("run"),
        "code_version": lineage.get("code_version"),
        "parameters": lineage.get("parameters") or {},
        "validation": lineage.get("summary") or {},
        "started_at": lineage.get("started_at"),
    }
    item.properties["portal:inputs"] = inputs


# --------------------------------------------------------------------------- collections


def _dataset_queryset():
    return Dataset.objects.prefetch_related("versions__files", "versions__dataset", "tags")


def get_dataset(collection_id: str) -> Dataset:
    """The dataset of a collection id. Raises :class:`NotFound`."""
    dataset = _dataset_queryset().filter(id=collection_id).first()
    if dataset is None:
        raise NotFound(f"no collection {collection_id!r}")
    return dataset


def build_collection(dataset: Dataset, urls: Urls) -> pystac.Collection:
    """The pystac Collection of a dataset (see the module docstring).

    Returns
    -------
    pystac.Collection
        Extent: the record's box and period joined with those of every Item.
    """
    refs = [r for v in _sort_versions(dataset) for r in version_items(v)]
    record_box, record_period = _record_extent(dataset)
    box = _union([*([record_box] if record_box else []), *(r.bbox for r in refs)]) or (-180.0, -90.0, 180.0, 90.0)
    start, end = _span([record_period, *(r.interval for r in refs)])
    description = plain_text(dataset.abstract) or dataset.title or dataset.id
    providers = [
        pystac.Provider(
            PORTAL_NAME, roles=[pystac.ProviderRole.HOST, pystac.ProviderRole.PROCESSOR], url=urls.absolute("/")
        )
    ]
    organisations = dict.fromkeys(
        r.person.work_for
        for r in dataset.roles.select_related("person")
        if r.role == "contributor" and r.person.work_for
    )
    providers += [pystac.Provider(name, roles=[pystac.ProviderRole.PRODUCER]) for name in organisations]
    collection = pystac.Collection(
        id=dataset.id,
        description=description,
        title=dataset.title or dataset.id,
        extent=pystac.Extent(pystac.SpatialExtent([list(box)]), pystac.TemporalExtent([[start, end]])),
        license=_licence(dataset),
        keywords=sorted({t.name for t in dataset.tags.all()}) or None,
        providers=providers,
        extra_fields={
            "portal:share_type": access.share_type(dataset),
            "portal:licence_acceptance": bool(dataset.licence_acceptance),
        },
    )
    collection.links = []  # no root/self links of pystac's own: ours are absolute
    collection.add_link(pystac.Link("self", urls.stac("collection", dataset.id), JSON))
    collection.add_link(pystac.Link("root", urls.stac("landing"), JSON, title="The STAC API"))
    collection.add_link(pystac.Link("parent", urls.stac("landing"), JSON))
    collection.add_link(pystac.Link("items", urls.stac("items", dataset.id), GEOJSON, title="The versions"))
    collection.add_link(pystac.Link("about", urls.page(dataset), "text/html", title="The dataset's page"))
    collection.add_link(pystac.Link("describedby", urls.record(dataset), JSON, title="The dataset's record"))
    if (licence := _licence_link(dataset)) is not None:
        collection.add_link(licence)
    if (doi := _doi(dataset)) is not None:
        collection.add_link(pystac.Link("cite-as", f"https://doi.org/{doi}", title="DOI of the dataset"))
    _add_science(collection, dataset)
    return collection


def collection_dict(dataset: Dataset, urls: Urls) -> dict[str, Any]:
    """:func:`build_collection` as JSON."""
    return build_collection(dataset, urls).to_dict(include_self_link=True, transform_hrefs=False)


def collections(urls: Urls) -> list[dict[str, Any]]:
    """Every dataset as a Collection, by id."""
    return [collection_dict(d, urls) for d in _dataset_queryset().order_by("id")]


def landing_page(urls: Urls) -> dict[str, Any]:
    """The landing page: a Catalog with ``conformsTo`` and links to the collections and the search."""
    catalog = pystac.Catalog(
        id=CATALOG_ID,
        title=f"{PORTAL_NAME}: STAC API",
        description="Datasets (Collections) and their published versions (Items) of the portal, "
        "with links to the files, Zarr stores, OGC API-EDR and OPeNDAP.",
    )
    catalog.links = []
    catalog.add_link(pystac.Link("self", urls.stac("landing"), JSON))
    catalog.add_link(pystac.Link("root", urls.stac("landing"), JSON))
    catalog.add_link(pystac.Link("conformance", urls.stac("conformance"), JSON, title="Conformance classes"))
    catalog.add_link(pystac.Link("data", urls.stac("collections"), JSON, title="Collections"))
    for method in ("GET", "POST"):
        catalog.add_link(
            pystac.Link("search", urls.stac("search"), GEOJSON, title="Item Search", extra_fields={"method": method})
        )
    for dataset_id in Dataset.objects.order_by("id").values_list("id", flat=True):
        catalog.add_link(pystac.Link("child", urls.stac("collection", dataset_id), JSON))
    data = catalog.to_dict(include_self_link=True, transform_hrefs=False)
    data["conformsTo"] = list(CONFORMANCE)
    return data


# --------------------------------------------------------------------------- search


def _lon_ranges(west: float, east: float) -> list[tuple[float, float]]:
    return [(west, 180.0), (-180.0, east)] if west > east else [(west, east)]


def boxes_intersect(a: Box, b: Box) -> bool:
    """Whether two boxes share a point; either may cross the antimeridian (``west > east``)."""
    if a[1] > b[3] or b[1] > a[3]:
        return False
    return any(
        lo1 <= hi2 and lo2 <= hi1 for lo1, hi1 in _lon_ranges(a[0], a[2]) for lo2, hi2 in _lon_ranges(b[0], b[2])
    )


def intervals_intersect(
    item: tuple[dt.datetime | None, dt.datetime | None], query: tuple[dt.datetime | None, dt.datetime | None]
) -> bool:
    """Whether an Item's period meets a query's (None: open end; an Item without a period matches any)."""
    start, end = item
    q_start, q_end = query
    if start is None and end is None:
        return True
    return (q_end is None or start is None or start <= q_end) and (q_start is None or end is None or end >= q_start)


def _shape(geometry: dict) -> GEOSGeometry:
    try:
        shape = GEOSGeometry(json.dumps(geometry), srid=4326)
    except (GEOSException, ValueError, TypeError) as exc:
        raise BadParameter("intersects", f"not a valid GeoJSON geometry: {exc}") from None
    if shape.empty:
        raise BadParameter("intersects", "the geometry is empty")
    return shape


def _box_shape(box: Box) -> GEOSGeometry:
    west, south, east, north = box
    if west > east:
        return MultiPolygon(
            Polygon.from_bbox((west, south, 180.0, north)), Polygon.from_bbox((-180.0, south, east, north)), srid=4326
        )
    return Polygon.from_bbox(box)


def _candidate_versions(search: Search, collection_id: str | None) -> Iterator[DatasetVersion]:
    versions = DatasetVersion.objects.select_related("dataset").prefetch_related("files", "dataset__versions__files")
    if collection_id is not None:
        if search.collections is not None and collection_id not in search.collections:
            return iter(())
        versions = versions.filter(dataset_id=collection_id)
    elif search.collections is not None:
        versions = versions.filter(dataset_id__in=search.collections)
    if search.ids is not None:  # an item id is '<dataset id>-v<number>[-<stem>]'
        pairs = {(m.string[: m.start()], int(m.group(1))) for i in search.ids for m in re.finditer(r"-v(\d{1,9})", i)}
        if not pairs:
            return iter(())
        query = Q()
        for dataset_id, number in pairs:
            query |= Q(dataset_id=dataset_id, number=number)
        versions = versions.filter(query)
    return iter(versions.order_by("dataset_id", "-number"))


def search(
    search: Search,
    urls: Urls,
    *,
    collection_id: str | None = None,
    datetime_text: str | None = None,
    method: str = "GET",
    endpoint: str = "search",
) -> dict[str, Any]:
    """One page of Items matching ``search``, as a GeoJSON FeatureCollection with paging links.

    Parameters
    ----------
    search : Search
        Parsed by :func:`portal.stac.params.parse_search`.
    urls : Urls
    collection_id : str, optional
        ``/collections/{id}/items``: only this collection (it must exist: :class:`NotFound`).
    datetime_text : str, optional
        The ``datetime`` as given, repeated in the ``next`` link.
    method : {"GET", "POST"}
        How the search came: the ``next`` link repeats it (a POST link carries the body).
    endpoint : {"search", "items"}

    Returns
    -------
    dict
        ``type``, ``features`` (Items), ``numberReturned``, ``links`` (self, root, and ``next``
        with a ``token`` when more Items follow).

    Raises
    ------
    NotFound
        ``collection_id`` names no dataset.
    BadParameter
        ``intersects`` is not a valid geometry.
    """
    if collection_id is not None and not Dataset.objects.filter(id=collection_id).exists():
        raise NotFound(f"no collection {collection_id!r}")
    shape = _shape(search.intersects) if search.intersects is not None else None
    wanted = set(search.ids) if search.ids is not None else None
    page: list[ItemRef] = []
    more = False
    for version in _candidate_versions(search, collection_id):
        for ref in version_items(version):
            if wanted is not None and ref.id not in wanted:
                continue
            if search.token is not None:
                after = (search.token[0], -search.token[1], search.token[2])
                if ref.sort_key <= after:
                    continue
            if search.bbox is not None and not boxes_intersect(ref.bbox, search.bbox):
                continue
            if shape is not None and not _box_shape(ref.bbox).intersects(shape):
                continue
            if search.interval is not None and not intervals_intersect(ref.interval, search.interval):
                continue
            if len(page) == search.limit:
                more = True
                break
            page.append(ref)
        if more:
            break
    args = (collection_id,) if endpoint == "items" else ()
    here = urls.stac(endpoint, *args)
    body = search.query(datetime_text)
    if collection_id is not None:
        body.pop("collections", None)
    links = [{"rel": "root", "href": urls.stac("landing"), "type": JSON}]
    if method == "GET":
        links.append({"rel": "self", "href": _with_query(here, body), "type": GEOJSON})
    else:
        links.append({"rel": "self", "href": here, "type": GEOJSON, "method": "POST", "body": body})
    if collection_id is not None:
        links.append({"rel": "collection", "href": urls.stac("collection", collection_id), "type": JSON})
    if more:
        last = page[-1]
        token = encode_token(last.version.dataset_id, last.version.number, last.id)
        if method == "GET":
            links.append({"rel": "next", "href": _with_query(here, {**body, "token": token}), "type": GEOJSON})
        else:
            links.append(
                {"rel": "next", "href": here, "type": GEOJSON, "method": "POST", "body": {**body, "token": token}}
            )
    return {
        "type": "FeatureCollection",
        "features": [build_item(ref, urls).to_dict(include_self_link=True, transform_hrefs=False) for ref in page],
        "numberReturned": len(page),
        "links": links,
    }


def _with_query(href: str, params: dict[str, Any]) -> str:
    flat = {}
    for key, value in params.items():
        if key == "intersects":
            flat[key] = json.dumps(value, separators=(",", ":"))
        elif isinstance(value, list):
            flat[key] = ",".join(str(v) for v in value)
        else:
            flat[key] = value
    return f"{href}?{urlencode(flat)}" if flat else href


def get_item(collection_id: str, item_id: str, urls: Urls) -> dict[str, Any]:
    """One Item as JSON.

    Raises
    ------
    NotFound
        No such collection, or no such Item in it.
    """
    dataset = get_dataset(collection_id)
    for version in _sort_versions(dataset):
        if not item_id.startswith(f"{dataset.id}-v{version.number}"):
            continue
        for ref in version_items(version):
            if ref.id == item_id:
                return build_item(ref, urls).to_dict(include_self_link=True, transform_hrefs=False)
    raise NotFound(f"no item {item_id!r} in collection {collection_id!r}")


# --------------------------------------------------------------------------- Zarr stores


def store_file(dataset_id: str, number: int, name: str, layout: str, key: str) -> tuple[DatasetFile, str]:
    """A file of a published grid's Zarr store (``.zmetadata``, ``.zattrs``, a chunk ...).

    Parameters
    ----------
    dataset_id, number, name
        The version and its gridded NetCDF file.
    layout : {"map", "series"}
    key : str
        The path inside the store (``sm/0.0.0``); no ``..``, no empty segment.

    Returns
    -------
    (DatasetFile, str)
        The NetCDF the store copies (for the access policy and the download log) and the file's path
        relative to the data root (:mod:`portal.storage`).

    Raises
    ------
    NotFound
        Unknown version, file, layout or key (or a key leaving the store).
    """
    if layout not in store.LAYOUTS:
        raise NotFound(f"no store layout {layout!r}: expected one of {', '.join(store.LAYOUTS)}")
    parts = key.split("/")
    if not key or any(p in ("", ".", "..") or "\\" in p for p in parts):
        raise NotFound(f"no key {key!r} in the store")
    f = (
        DatasetFile.objects.select_related("version__dataset")
        .filter(version__dataset_id=dataset_id, version__number=number, name=name)
        .first()
    )
    if f is None or not name.endswith(".nc"):
        raise NotFound(f"no grid {name!r} in {dataset_id} v{number}")
    relative = store.store_paths(f.path)[layout].joinpath(*parts).as_posix()  # parts: no "..", "." or ""
    if not storage.is_file(relative):
        raise NotFound(f"no key {key!r} in the {layout} store of {name}")
    return f, relative
