"""OGC API - Environmental Data Retrieval (EDR 1.1) over the subset core: collections and queries.

The protocol layer of ``/api/edr/``: which published grids are EDR collections and their
metadata documents. Queries (``position``, ``area``, ``cube``) go through the subset service's one
path (:func:`portal.subsets.services.handle` with ``front_door="edr"``; their parameters are parsed
by :func:`portal.subsets.params.parse_edr`). No HTTP here.

We implement EDR ourselves, as a thin layer over the subset core, because pygeoapi reads its
collections from a static YAML configuration loaded at start-up (ours change with every published
version) and xpublish-edr is a FastAPI/ASGI application that cannot be mounted in this WSGI
Django site.

Collections: one per dataset whose latest published version holds exactly one gridded NetCDF
(data variables on ``(time, lat, lon)``); the collection id is the dataset id
(``<dataset id>.<file stem>`` per grid when the version holds several). Any earlier published version
is the collection ``<that id>@v<number>`` (EDR has no version parameter): not listed at ``/collections``,
linked from the latest collection (``predecessor-version``) and linking to it (``latest-version``).

References
----------
* OGC API - Environmental Data Retrieval Standard 1.1, OGC 19-086r6,
  https://docs.ogc.org/is/19-086r6/19-086r6.html
* OGC API - Common - Part 1: Core, OGC 19-072, https://docs.ogc.org/is/19-072/19-072.html
* CoverageJSON, OGC Community Standard 21-069r2, https://docs.ogc.org/cs/21-069r2/21-069r2.html
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from portal.catalog.html import plain_text
from portal.catalog.models import Dataset, DatasetFile
from portal.subsets import params
from portal.subsets.grids import GridInfo, grid_info

log = logging.getLogger(__name__)

CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/landing-page",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
    "http://www.opengis.net/spec/ogcapi-edr-1/1.1/conf/core",
    "http://www.opengis.net/spec/ogcapi-edr-1/1.1/conf/collections",
    "http://www.opengis.net/spec/ogcapi-edr-1/1.1/conf/json",
    "http://www.opengis.net/spec/ogcapi-edr-1/1.1/conf/covjson",
    "http://www.opengis.net/spec/ogcapi-edr-1/1.1/conf/queries",
)
"""Conformance classes declared at ``/conformance`` (no HTML, GeoJSON or OpenAPI classes yet)."""

QUERY_TYPES = params.EDR_QUERY_TYPES
OUTPUT_FORMATS = params.EDR_FORMATS
CRS84 = params.CRS84
CRS84_URI = params.CRS84_URI
CRS84_WKT = (
    'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],'
    'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433],AXIS["Longitude",EAST],AXIS["Latitude",NORTH]]'
)
TRS_GREGORIAN = 'TIMECRS["DateTime",TDATUM["Gregorian Calendar"],CS[TemporalDateTime,1],AXIS["Time (T)",future]]'


# --------------------------------------------------------------------------- collections


def _latest_version(dataset: Dataset):
    versions = list(dataset.versions.all())  # prefetched by collections(); ordered by -number
    return max(versions, key=lambda v: v.number) if versions else None


VERSION_MARK = "@v"  # <collection id>@v<number>: a collection of an earlier version


class Collection(NamedTuple):
    """An EDR collection: ``id``, its ``dataset``, the grid ``file``, its ``info`` and the ``version``
    number when the collection is an earlier version's (None: the latest)."""

    id: str
    dataset: Dataset
    file: DatasetFile
    info: GridInfo
    version: int | None = None


def dataset_collections(dataset: Dataset, version: int | None = None) -> list[Collection]:
    """The collections of ``dataset``: one per gridded NetCDF of its latest version (or of ``version``).

    The id is the dataset id when the version holds one grid, ``<dataset id>.<file stem>`` for
    each grid when it holds several (e.g. the freeze/thaw proxy and twin grids); ``@v<version>``
    follows it when ``version`` is given.

    Parameters
    ----------
    dataset : Dataset
    version : int, optional
        A published version number; default the latest.

    Returns
    -------
    list of Collection
        Empty without that published version or without a gridded NetCDF.
    """
    if version is None:
        chosen = _latest_version(dataset)
    else:
        chosen = next((v for v in dataset.versions.all() if v.number == version), None)
    suffix = f"{VERSION_MARK}{version}" if version is not None else ""
    return [c._replace(id=c.id + suffix, version=version) for c in _grid_collections(dataset, chosen)]


def _grid_collections(dataset: Dataset, version) -> list[Collection]:
    if version is None:
        return []
    grids = [
        (f, info)
        for f in sorted(version.files.all(), key=lambda f: f.name)
        if f.name.endswith(".nc") and (info := grid_info(f)) is not None
    ]
    if len(grids) == 1:
        return [Collection(dataset.id, dataset, *grids[0])]
    return [Collection(f"{dataset.id}.{Path(f.name).stem}", dataset, f, info) for f, info in grids]


def collections() -> list[Collection]:
    """Every EDR collection, ordered by dataset id and file name."""
    datasets = (
        Dataset.objects.filter(versions__isnull=False)
        .distinct()
        .order_by("id")
        .prefetch_related("versions__files", "tags")
    )
    return [c for dataset in datasets for c in dataset_collections(dataset)]


def get_collection(collection_id: str) -> Collection | None:
    """The collection ``collection_id`` (a dataset id, or ``<dataset id>.<file stem>``, either followed by
    ``@v<number>`` for an earlier version), or None."""
    base, version = collection_id, None
    if VERSION_MARK in collection_id:
        base, _, number = collection_id.rpartition(VERSION_MARK)
        if not number.isdigit():
            return None
        version = int(number)
    candidates = [base] + ([base.rsplit(".", 1)[0]] if "." in base else [])
    for dataset_id in candidates:
        dataset = Dataset.objects.filter(id=dataset_id).prefetch_related("versions__files", "tags").first()
        if dataset is not None:
            match = [c for c in dataset_collections(dataset, version) if c.id == collection_id]
            if match:
                return match[0]
    return None


def version_links(collection: Collection) -> list[tuple[str, str, str]]:
    """``(rel, collection id, title)`` of the collections of the same grid in other versions.

    An earlier version's collection links to the latest (``latest-version``); every collection links to
    the one of the version before it (``predecessor-version``) where that version holds the same grid.
    """
    base = collection.id.rpartition(VERSION_MARK)[0] if collection.version is not None else collection.id
    numbers = sorted((v.number for v in collection.dataset.versions.all()), reverse=True)
    current = collection.version if collection.version is not None else (numbers[0] if numbers else None)
    links = []
    if collection.version is not None and numbers and collection.version != numbers[0]:
        links.append(("latest-version", base, "The latest version of this collection"))
    earlier = [n for n in numbers if current is not None and n < current]
    if earlier and any(
        c.id == f"{base}{VERSION_MARK}{earlier[0]}" for c in dataset_collections(collection.dataset, earlier[0])
    ):
        links.append(("predecessor-version", f"{base}{VERSION_MARK}{earlier[0]}", f"Version {earlier[0]}"))
    return links


def _parameter(name: str, kind: str, attrs: Mapping[str, str]) -> dict[str, Any]:
    label = attrs.get("long_name") or attrs.get("standard_name") or name
    observed: dict[str, Any] = {"label": label}
    if "standard_name" in attrs:
        observed["id"] = f"http://vocab.nerc.ac.uk/standard_name/{attrs['standard_name']}/"
    parameter: dict[str, Any] = {
        "type": "Parameter",
        "id": name,
        "label": label,
        "description": label,
        "data-type": "integer" if kind in "iub" else "float",
        "observedProperty": observed,
    }
    if "units" in attrs:
        parameter["unit"] = {"label": attrs["units"], "symbol": attrs["units"]}
    return parameter


def _query_link(href: str, query_type: str) -> dict[str, Any]:
    titles = {
        "position": "Position query: the time series of the cell nearest to coords=POINT(lon lat)",
        "area": "Area query: the cells whose centres fall inside coords=POLYGON((...))",
        "cube": "Cube query: the cells whose centres fall inside bbox=minx,miny,maxx,maxy",
    }
    return {
        "link": {
            "href": f"{href}/{query_type}",
            "rel": "data",
            "type": "application/prs.coverage+json",
            "title": titles[query_type],
            "variables": {
                "title": titles[query_type],
                "query_type": query_type,
                "output_formats": list(OUTPUT_FORMATS),
                "default_output_format": next(iter(OUTPUT_FORMATS)),
                "crs_details": [{"crs": CRS84, "wkt": CRS84_WKT}],
            },
        }
    }


def collection_document(collection: Collection, href: str, links: list[dict] | None = None) -> dict[str, Any]:
    """The EDR collection metadata (``/collections/{collectionId}``).

    Parameters
    ----------
    collection : Collection
    href : str
        Absolute URL of the collection, without a trailing slash; query links are ``href/<type>``.
    links : list of dict, optional
        More links (self, the dataset record, ...), placed first.

    Returns
    -------
    dict
        JSON-serialisable: ``id``, ``title``, ``description``, ``keywords``, ``links``,
        ``extent`` (spatial bbox from the grid's cell edges, temporal interval and values from its
        time axis), ``data_queries``, ``crs``, ``output_formats``, ``parameter_names``.
    """
    dataset, info = collection.dataset, collection.info
    title = dataset.title_en or dataset.title_cn or dataset.id
    if collection.id != dataset.id:
        title = f"{title} ({collection.file.name})"
    description = plain_text(dataset.abstract_en or dataset.abstract_cn)
    trs = (
        TRS_GREGORIAN
        if info.calendar in ("standard", "gregorian", "proleptic_gregorian")
        else (f'TIMECRS["DateTime",TDATUM["{info.calendar} calendar"],CS[TemporalDateTime,1],AXIS["Time (T)",future]]')
    )
    query_links = [
        {
            "href": f"{href}/{q}",
            "rel": "data",
            "type": "application/prs.coverage+json",
            "title": f"{q.capitalize()} query",
        }
        for q in QUERY_TYPES
    ]
    return {
        "id": collection.id,
        "title": title,
        "description": description,
        "keywords": sorted({t.name for t in dataset.tags.all()}),
        "links": [*(links or []), *query_links],
        "extent": {
            "spatial": {"bbox": [list(info.bbox)], "crs": CRS84_WKT, "name": "WGS 84 (CRS84)"},
            "temporal": {
                "interval": [list(info.interval)],
                "values": list(info.time_values),
                "trs": trs,
                "name": info.calendar,
            },
        },
        "data_queries": {q: _query_link(href, q) for q in QUERY_TYPES},
        "crs": [CRS84],
        "output_formats": list(OUTPUT_FORMATS),
        "parameter_names": {name: _parameter(name, kind, attrs) for name, kind, attrs in info.parameters},
    }


# --------------------------------------------------------------------------- query parameters
