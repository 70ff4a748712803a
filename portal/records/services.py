"""OGC API - Records over the catalogue search: query parameters in, GeoJSON records out.

The protocol layer of ``/api/records/`` (no HTTP here: :mod:`portal.records.views` hands in the
query parameters and a function that makes absolute URLs). One catalogue, the collection
``datasets`` (``itemType: record``), holds one record per dataset. A query of its items is read
into one :class:`portal.catalog.search.SearchParams` (the search service's own parser reads what
maps one to one: ``q``, ``bbox``, ``datetime`` as ``time``, ``sortby`` as ``sort`` and the facet
queryables) and answered by one :func:`portal.catalog.search.search` call; records are the
datasets' metadata in the Records GeoJSON encoding.

Query parameters of ``/collections/datasets/items``
---------------------------------------------------
``q``
    Words, separated by spaces or commas; a record matches when it holds every word (the site's
    search: both languages, abbreviations, typo correction). Comma-separated terms are not
    alternatives here (the standard's logical OR): the search service has no OR of words.
``bbox``
    ``min_lon,min_lat,max_lon,max_lat`` in CRS84 (a 6-number box drops its heights);
    ``min_lon > max_lon`` crosses the antimeridian. Records whose box intersects it.
``datetime``
    An RFC 3339 instant or interval (``start/end``, ``../end``, ``start/..``; a date covers its
    day). Records whose acquisition period overlaps it.
``limit``, ``offset``
    The page: ``limit`` 1 to ``settings.API_MAX_PAGE_SIZE`` (default 10), ``offset`` 0 to
    ``settings.API_MAX_OFFSET``; the ``next`` and ``prev`` links carry the offset.
``sortby``
    ``title`` (ascending), ``updated`` (oldest first) or ``-updated`` (newest first). Without it:
    relevance when there are words, newest first otherwise.
``type``
    Record types; ``dataset`` is the only one (any other list matches nothing).
``ids``, ``externalIds``
    Record ids, or DOIs and CSTRs (``doi:10.x/y``, ``cstr:11738.11...``, a ``https://doi.org/``
    URL, or the bare identifier): the records named, a small lookup. They cannot be combined
    with ``q``, ``bbox``, ``datetime`` or the queryables (a 400 says so): the search service
    takes no list of ids.
Queryables
    ``category``, ``keyword``, ``variable``, ``spatial_resolution``, ``temporal_resolution``,
    ``share_type``, ``format``, ``published`` (the search's facets; a repeated parameter lists
    alternatives). ``/collections/datasets/queryables`` describes them (JSON Schema).
``f``
    ``json`` (the only encoding).

An empty value counts as absent (Records ``/req/record-core-query-parameters/empty-value``); an
unknown parameter is a 400 naming it.

References
----------
* OGC API - Records - Part 1: Core, 1.0 draft (OGC 20-004), https://docs.ogc.org/DRAFTS/20-004.html
* OGC API - Features - Part 1: Core 1.0 (OGC 17-069r4); Part 3: Filtering (OGC 19-079r2), queryables
* RFC 7946 (GeoJSON), RFC 3339 (date and time), SPDX licence list, CF Standard Name Table v93
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.gis.db.models import Extent
from django.db.models import Max, Min, Q, prefetch_related_objects
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils.translation import get_language

from portal.catalog import search
from portal.catalog import vocabulary as vocab
from portal.catalog.exports import FORMATS as EXPORT_FORMATS
from portal.catalog.html import plain_text
from portal.catalog.metadata import PORTAL_NAME
from portal.catalog.models import Dataset, DatasetPerson
from portal.subsets import core as subset_core
from portal.subsets.params import check_names
from products.registry import PRODUCTS, product_for_dataset

JSON = "application/json"
GEOJSON = "application/geo+json"
SCHEMA_JSON = "application/schema+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
HTML = "text/html"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
COLLECTION_ID = "datasets"
"""The one catalogue: every dataset record."""

_RECORDS = "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf"
RECORD_CORE = f"{_RECORDS}/record-core"
CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/landing-page",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    f"{_RECORDS}/core",
    RECORD_CORE,
    f"{_RECORDS}/record-collection",
    f"{_RECORDS}/record-core-query-parameters",
    f"{_RECORDS}/records-api",
    f"{_RECORDS}/sorting",
    f"{_RECORDS}/json",
    f"{_RECORDS}/oas30",
)
"""Conformance classes declared at ``/conformance``: no HTML, no CQL2 filter, no transactions."""

REL_CONFORMANCE = "http://www.opengis.net/def/rel/ogc/1.0/conformance"
REL_DATA = "http://www.opengis.net/def/rel/ogc/1.0/data"
REL_QUERYABLES = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
REL_SORTABLES = "http://www.opengis.net/def/rel/ogc/1.0/sortables"

FORMAT_VALUES = ("json", "geojson", JSON, GEOJSON)
"""Accepted values of ``f`` (any case); empty or absent is JSON too."""
ITEM_PARAMETERS = (
    "q",
    "bbox",
    "datetime",
    "limit",
    "offset",
    "sortby",
    "type",
    "ids",
    "externalIds",
    "f",
    *search.FACETS,
)
"""The query parameters of ``/collections/datasets/items``."""
_RENAMED = {"datetime": "time", "sortby": "sort"}
"""Records names -> the search parser's names (read by :func:`portal.catalog.search.parse`)."""
_HINTS = {
    "time": "datetime",
    "sort": "sortby",
    "sort_by": "sortby",
    "page": "offset",
    "start": "offset",
    "startindex": "offset",
    "maxrecords": "limit",
    "size": "limit",
    "format": "f",
    "id": "ids",
    "doi": "externalIds",
    "cstr": "externalIds",
    "externalid": "externalIds",
    "filter": None,
    "filter-lang": None,
    "intersects": None,
    "bbox-crs": None,
}
"""Names a client may send for what this API calls otherwise (None: not offered here)."""
SORTS = {"title": "title", "+title": "title", "updated": "date", "+updated": "date", "-updated": "-date"}
"""``sortby`` -> the search service's sort."""
DEFAULT_LIMIT = 10
MAX_IDS = 100
"""At most this many ``ids`` or ``externalIds`` in one query."""

EXPORT_TITLES = {
    "datacite": "DataCite 4 XML",
    "iso19139": "ISO 19139 XML",
    "dcat": "DCAT (JSON-LD)",
    "schemaorg": "schema.org Dataset (JSON-LD)",
    "csl": "Citation (CSL JSON)",
    "ris": "Citation (RIS)",
    "bibtex": "Citation (BibTeX)",
}
"""Titles of the metadata exports' links (``/datasets/<id>/metadata/<fmt>``; formats and media types:
:data:`portal.catalog.exports.FORMATS`)."""

CF_SCHEME = "https://cfconventions.org/Data/cf-standard-names/93/build/cf-standard-name-table.html"
CF_CONCEPT = "https://vocab.nerc.ac.uk/standard_name/{}/"
"""A CF standard name's concept in the NERC Vocabulary Server (collection P07, the CF table)."""
PORTAL_VARIABLES = frozenset({"surface_freeze_thaw_state"})
"""Variables named by the portal: the CF table has no standard name for them (portal.catalog.vocabulary)."""
KEYWORD_SCHEME = "https://data.tpdc.ac.cn"
"""Keywords are TPDC tags (topic, place, subject and class tags of the National Tibetan Plateau Data Center)."""
TIME_STEPS = {"hourly": "PT1H", "daily": "P1D", "8-day": "P8D", "monthly": "P1M", "yearly": "P1Y"}
"""Normalized temporal resolutions -> ISO 8601 durations (a record's ``time.resolution``)."""
MEDIA_TYPES = {
    "NetCDF": "application/x-netcdf",
    "GeoTIFF": "image/tiff; application=geotiff",
    "HDF5": "application/x-hdf5",
    "HDF": "application/x-hdf",
    "CSV": "text/csv",
    "XLSX": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "XLS": "application/vnd.ms-excel",
    "text": "text/plain",
    "Shapefile": "application/vnd.shp",
    "GRIB": "application/x-grib",
    "Zarr": "application/vnd+zarr",
}
ROLES = {
    DatasetPerson.Role.CONTRIBUTOR: "author",
    DatasetPerson.Role.AUTHOR: "metadataAuthor",
    DatasetPerson.Role.MANAGER: "custodian",
}
"""TPDC roles -> contact roles (ISO 19115 role codes where one fits; the record's metadata author has none)."""
LANGUAGES = {"en": "English", "zh": "中文"}

CATALOGUE = {
    "en": (
        "Dataset records",
        "Every dataset of the portal (TPDC record schema): evapotranspiration, soil moisture, "
        "freeze/thaw and terrestrial water storage products, with their people, extents, "
        "identifiers and links to the data services.",
    ),
    "zh": (
        "数据集元数据",
        "本平台全部数据集的元数据（TPDC 元数据规范）：蒸散发、土壤水分、冻融与陆地水储量产品，"
        "含人员、时空范围、标识符及数据服务链接。",
    ),
}


class RecordsError(Exception):
    """A request this API answers with an error document ``{"code", "description"}``.

    Parameters
    ----------
    status : int
        400 (a parameter; ``parameter`` names it) or 404 (an unknown collection or record).
    description : str
        What is wrong and what was expected.
    parameter : str, optional
        The query parameter at fault, as the client wrote it.
    """

    CODES = {400: "InvalidParameterValue", 404: "NotFound"}

    def __init__(self, status: int, description: str, parameter: str | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameter = parameter

    def as_dict(self) -> dict[str, str]:
        body = {"code": self.CODES.get(self.status, "Error"), "description": self.description}
        if self.parameter:
            body["parameter"] = self.parameter
        return body


def _bad(parameter: str, message: str) -> RecordsError:
    return RecordsError(400, f"{parameter}: {message}", parameter)


# --------------------------------------------------------------------------- reading a query


@dataclass(frozen=True)
class ItemsQuery:
    """A query of the catalogue's items.

    Attributes
    ----------
    search : SearchParams
        Words, facets, box, period and sort, for :func:`portal.catalog.search.search`.
    ids : tuple of str, optional
        Record ids that ``ids`` and ``externalIds`` name (looked up; None when neither was sent).
    offset, limit : int
        The page.
    matches_type : bool
        False when ``type`` lists no type of this catalogue (the answer is empty).
    """

    search: search.SearchParams
    ids: tuple[str, ...] | None
    offset: int
    limit: int
    matches_type: bool = True


def _values(params: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """Parameters with their non-empty values (an empty value counts as absent)."""
    out = {}
    for name, values in params.items():
        kept = [str(v) for v in values if str(v).strip()]
        if kept:
            out[str(name)] = kept
    return out


def check_parameters(params: Mapping[str, Iterable[str]], allowed: tuple[str, ...]) -> None:
    """Refuse a parameter not in ``allowed`` (a 400 naming it and what it may have meant), and an ``f``
    other than JSON.

    Raises
    ------
    RecordsError
        400, ``parameter`` = the name as sent.
    """
    for name in params:
        if name in allowed:
            continue
        key = str(name).lower()
        if key in _HINTS and _HINTS[key] in allowed:
            raise _bad(
                name[:60],
                f"unknown parameter {name[:60]!r}: did you mean {_HINTS[key]!r}? accepted: {', '.join(allowed)}",
            )
        if key in _HINTS:
            raise _bad(
                name[:60], f"unknown parameter {name[:60]!r}: not offered by this API; accepted: {', '.join(allowed)}"
            )
        try:
            check_names({name: ""}, allowed, "records")
        except subset_core.SubsetError as exc:
            raise _bad(exc.field, exc.message) from None
    f = [str(v) for v in params.get("f", ()) if str(v)]
    if len(f) > 1:
        raise _bad("f", f"expected one value, got {len(f)}")
    if f and f[0].lower() not in FORMAT_VALUES:
        raise _bad(
            "f",
            f"{f[0][:40]!r} is not available: these documents are JSON (f=json); a record's web page "
            "is its link with rel 'alternate' and type text/html",
        )


def _one(values: dict[str, list[str]], name: str) -> str | None:
    vs = values.get(name)
    if not vs:
        return None
    if len(vs) > 1:
        raise _bad(name, f"expected one value, got {len(vs)}")
    return vs[0].strip()


def _count(values: dict[str, list[str]], name: str, lowest: int, highest: int, default: int) -> int:
    raw = _one(values, name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12 or not lowest <= int(raw) <= highest:
        raise _bad(name, f"expected a whole number from {lowest} to {highest} in ASCII digits, got {raw[:40]!r}")
    return int(raw)


def _list(values: dict[str, list[str]], name: str) -> list[str]:
    """A comma-separated list (repeated parameters add to it), without empty items."""
    items = [item.strip() for v in values.get(name, ()) for item in v.split(",") if item.strip()]
    if len(items) > MAX_IDS:
        raise _bad(name, f"at most {MAX_IDS} values, got {len(items)}")
    return list(dict.fromkeys(items))


_DOI_PREFIX = re.compile(r"^(?:doi:|https?://(?:dx\.)?doi\.org/)", re.I)
_CSTR_PREFIX = re.compile(r"^(?:cstr:|https?://(?:www\.)?cstr\.cn/)", re.I)


def external_ids(values: list[str]) -> tuple[str, ...]:
    """The ids of the records whose DOI or CSTR is among ``values`` (``doi:``/``cstr:`` schemes, their
    resolver URLs, or bare identifiers matching either), in catalogue order."""
    condition = Q(pk__in=[])
    for value in values:
        if _DOI_PREFIX.match(value):
            condition |= Q(doi_lower=_DOI_PREFIX.sub("", value).lower())
        elif _CSTR_PREFIX.match(value):
            condition |= Q(cstr=_CSTR_PREFIX.sub("", value))
        else:
            condition |= Q(doi_lower=value.lower()) | Q(cstr=value)
    found = (
        Dataset.objects.annotate(doi_lower=Lower("doi"))
        .exclude(doi="", cstr="")
        .filter(condition)
        .order_by("id")
        .values_list("id", flat=True)
    )
    return tuple(found)


def parse_items(params: Mapping[str, Iterable[str]]) -> ItemsQuery:
    """Read the query parameters of ``/collections/datasets/items`` (each name -> its values).

    Parameters
    ----------
    params : mapping of str to list of str
        As ``QueryDict.lists()`` gives them.

    Returns
    -------
    ItemsQuery

    Raises
    ------
    RecordsError
        400 naming the parameter: unknown, malformed (``bbox``, ``datetime``, ``limit``, ``offset``),
        an unsupported ``sortby``, ``ids``/``externalIds`` with search criteria, a repeated
        single-valued parameter.
    """
    check_parameters(params, ITEM_PARAMETERS)  # every name, even with an empty value
    values = _values(params)
    limit = _count(values, "limit", 1, settings.API_MAX_PAGE_SIZE, DEFAULT_LIMIT)
    offset = _count(values, "offset", 0, settings.API_MAX_OFFSET, 0)
    for_search: dict[str, list[str]] = {}
    for name in ("q", "bbox", "datetime", *search.FACETS):
        if name in values:
            for_search[_RENAMED.get(name, name)] = values[name]
    sortby = _one(values, "sortby")
    if sortby is not None:
        if "," in sortby:
            raise _bad("sortby", f"one sort key only, got {sortby[:60]!r}")
        key = sortby.replace(" ", "+")  # an unencoded '+' in a query string reads as a space
        if key not in SORTS:
            raise _bad("sortby", f"expected title, updated or -updated (see the sortables), got {sortby[:40]!r}")
        for_search["sort"] = [SORTS[key]]
    try:
        parsed = search.parse(for_search, heights="drop")  # minx,miny,minz,maxx,maxy,maxz: heights do not matter
    except search.SearchError as exc:
        name = {v: k for k, v in _RENAMED.items()}.get(exc.field, exc.field)
        raise _bad(name, exc.message) from None
    types = [t.lower() for t in _list(values, "type")]
    ids = None
    if "ids" in values or "externalIds" in values:
        criteria = [name for name in ("q", "bbox", "datetime", *search.FACETS) if name in values]
        if criteria:
            which = "ids" if "ids" in values else "externalIds"
            raise _bad(
                which,
                f"names records by identifier and cannot be combined with {', '.join(criteria)} "
                "here; send the identifiers alone (with limit, offset, sortby, type)",
            )
        chosen: set[str] | None = None
        if "ids" in values:
            asked = _list(values, "ids")
            chosen = set(Dataset.objects.filter(id__in=asked).values_list("id", flat=True))
        if "externalIds" in values:
            found = set(external_ids(_list(values, "externalIds")))
            chosen = found if chosen is None else chosen & found
        ids = tuple(sorted(chosen or ()))
    return ItemsQuery(search=parsed, ids=ids, offset=offset, limit=limit, matches_type=not types or "dataset" in types)


# --------------------------------------------------------------------------- answering a query


@dataclass
class Page:
    """One page of records and how many match in all."""

    records: list[Dataset]
    total: int


def _sort_key(sort: str) -> Callable[[Dataset], tuple]:
    """The order of :func:`portal.catalog.search.search` for records without words (its ``_order``)."""
    zh = (get_language() or "en").startswith("zh")

    def title(d: Dataset) -> str:
        return (d.title_cn or d.title_en) if zh else (d.title_en or d.title_cn)

    def date(d: Dataset) -> dt.datetime:
        return d.updated or d.publish_time or d.created or dt.datetime.min.replace(tzinfo=dt.UTC)

    if sort == "title":
        return lambda d: (title(d), d.id)
    if sort == "date":
        return lambda d: (date(d), title(d), d.id)
    return lambda d: (-date(d).timestamp(), title(d), d.id)  # "-date", and "relevance" without words


def find(query: ItemsQuery) -> Page:
    """The page of records a query asks for: one :func:`portal.catalog.search.search` call, or (``ids``,
    ``externalIds``) the records named, ordered as the search orders them (newest first by default)."""
    if not query.matches_type:
        return Page([], 0)
    if query.ids is not None:
        records = list(Dataset.objects.filter(id__in=query.ids).prefetch_related("tags"))
        records.sort(key=_sort_key(query.search.sort))
        return Page(records[query.offset : query.offset + query.limit], len(records))
    result = search.search(query.search, offset=query.offset, limit=query.limit, facets=False)
    return Page(result.datasets, result.total)


# --------------------------------------------------------------------------- documents


AbsoluteUrl = Callable[[str], str]
"""Makes an absolute URL of a path (the view's ``request.build_absolute_uri``)."""


def _url(absolute: AbsoluteUrl, name: str, *args: str) -> str:
    return absolute(reverse(f"records:{name}", args=args))


def _link(href: str, rel: str, media_type: str, title: str | None = None) -> dict[str, str]:
    link = {"href": href, "rel": rel, "type": media_type}
    if title:
        link["title"] = title
    return link


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _zh() -> bool:
    return (get_language() or "en").startswith("zh")


def _interval(start: dt.datetime | None, end: dt.datetime | None) -> list[str] | None:
    """A record's period as dates when both bounds are midnights (TPDC records give days), else UTC timestamps;
    an open end is ``".."``."""
    if start is None and end is None:
        return None
    bounds = [b.astimezone(dt.UTC) if b else None for b in (start, end)]
    as_dates = all(b is None or b.time() == dt.time(0) for b in bounds)
    return [(b.date().isoformat() if as_dates else _iso(b)) if b else ".." for b in bounds]


def _geometry(dataset: Dataset) -> tuple[dict | None, list[float] | None]:
    if not dataset.bbox:
        return None, None
    west, south, east, north = (round(v, 6) for v in dataset.bbox.extent)
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}, [west, south, east, north]


def spdx(url: str) -> str | None:
    """The SPDX identifier of a Creative Commons licence URL (``CC-BY-4.0``, ``CC0-1.0``), else None."""
    found = vocab.spdx_licence(url)
    return found[0] if found else None


def _rights(dataset: Dataset) -> str:
    share = (dataset.share_type or "").strip()
    if share == Dataset.ShareType.PROTECTED:
        until = f" until {dataset.protected_to.date().isoformat()}" if dataset.protected_to else ""
        text = f"Protected{until}: files are downloaded after an approved application."
    elif share == Dataset.ShareType.LOGIN:
        text = "Login access: files are downloaded by signed-in, verified users."
    else:
        text = "Open access."
    if dataset.licence_acceptance:
        text += " Users accept the licence before their first download."
    if not (dataset.license_url or "").strip():
        text += " The record states no licence; see its source."
    return text


def _keywords(dataset: Dataset) -> tuple[list[str], list[dict]]:
    names = list(dict.fromkeys(t.name for t in dataset.tags.all()))
    english = {t.name: t.name_en or vocab.keyword_en(t.name) for t in dataset.tags.all()}
    keywords = list(dict.fromkeys([*(english[n] for n in names), *names]))
    concepts = [{"id": n, "title": english[n] if not _zh() else n} for n in names]
    return keywords, concepts


def _themes(dataset: Dataset, keyword_concepts: list[dict], absolute: AbsoluteUrl) -> list[dict]:
    themes = []
    if keyword_concepts:
        page = absolute(reverse("catalog:dataset_list"))
        for concept in keyword_concepts:
            concept["url"] = f"{page}?{urlencode({'keyword': concept['id']})}"
        themes.append({"scheme": KEYWORD_SCHEME, "concepts": keyword_concepts})
    product = product_for_dataset(dataset.id)
    variables = list(product.variables) if product else []
    cf = [v for v in variables if v not in PORTAL_VARIABLES]
    own = [v for v in variables if v in PORTAL_VARIABLES]
    if cf:
        themes.append(
            {
                "scheme": CF_SCHEME,
                "concepts": [
                    {
                        "id": v,
                        "title": vocab.VARIABLES_CN.get(v, v) if _zh() else v.replace("_", " "),
                        "url": CF_CONCEPT.format(v),
                    }
                    for v in cf
                ],
            }
        )
    if own:
        queryables = _url(absolute, "queryables", COLLECTION_ID)
        themes.append(
            {
                "scheme": f"{queryables}#variable",
                "concepts": [
                    {
                        "id": v,
                        "title": vocab.VARIABLES_CN.get(v, v) if _zh() else v.replace("_", " "),
                        "description": "The portal's name: the CF Standard Name Table has none for this quantity.",
                    }
                    for v in own
                ],
            }
        )
    return themes


def _contacts(dataset: Dataset) -> list[dict]:
    """The record's people (names, organizations and roles, as its web page shows them; no personal
    e-mail addresses), the data service and the publisher."""
    contacts = []
    people = sorted(dataset.roles.all(), key=lambda r: (list(ROLES).index(r.role) if r.role in ROLES else 9, r.order))
    merged: dict[int, dict] = {}
    for role in people:
        entry = merged.get(role.person_id)
        if entry is None:
            entry = {"name": role.person.true_name, "roles": []}
            if role.person.work_for:
                entry["organization"] = role.person.work_for
            merged[role.person_id] = entry
            contacts.append(entry)
        entry["roles"].append(ROLES.get(role.role, role.role))
    if dataset.service_contact or dataset.service_email:
        service: dict[str, Any] = {"name": dataset.service_contact or "Data service", "roles": ["pointOfContact"]}
        if dataset.service_email:
            service["emails"] = [{"value": dataset.service_email}]
        if dataset.service_phone:
            service["phones"] = [{"value": dataset.service_phone}]
        contacts.append(service)
    publisher: dict[str, Any] = {"organization": dataset.source_portal or PORTAL_NAME, "roles": ["publisher"]}
    if dataset.source_url:
        publisher["links"] = [_link(dataset.source_url, "about", HTML, "The record at its source")]
    contacts.append(publisher)
    return contacts


def _formats(dataset: Dataset) -> list[dict]:
    names = vocab.formats(dataset.format_en, dataset.format_cn)
    return [{"name": n, **({"mediaType": MEDIA_TYPES[n]} if n in MEDIA_TYPES else {})} for n in names]


def _external_ids(dataset: Dataset) -> list[dict]:
    out = []
    if dataset.doi.strip():
        out.append({"scheme": "https://doi.org", "value": dataset.doi.strip()})
    if dataset.cstr.strip():
        out.append({"scheme": "https://cstr.cn", "value": dataset.cstr.strip()})
    return out


def _languages(dataset: Dataset) -> tuple[dict, list[dict]]:
    have = [code for code, present in (("en", dataset.title_en), ("zh", dataset.title_cn)) if present]
    main = (
        "zh"
        if (dataset.lang or "").startswith("zh")
        else "en"
        if (dataset.lang or "").startswith("en")
        else (have[0] if have else "en")
    )
    return {"code": main, "name": LANGUAGES[main]}, [{"code": c, "name": LANGUAGES[c]} for c in have or [main]]


def record_links(dataset: Dataset, absolute: AbsoluteUrl) -> list[dict]:
    """The record's links: itself, its collection, its web page, its API record, its metadata exports,
    its STAC collection, its licence, DOI and source."""
    page = absolute(reverse("catalog:dataset_detail", args=[dataset.id]))
    links = [
        _link(_url(absolute, "item", COLLECTION_ID, dataset.id), "self", GEOJSON, "This record"),
        _link(_url(absolute, "collection", COLLECTION_ID), "collection", JSON, "The catalogue"),
        _link(_url(absolute, "landing"), "root", JSON, "The Records API"),
        _link(page, "alternate", HTML, "The dataset's page"),
        _link(
            absolute(reverse("api:dataset-detail", args=[dataset.id])),
            "describedby",
            JSON,
            "The dataset in the portal's API (versions, files, validation)",
        ),
    ]
    links += [
        _link(
            absolute(reverse("catalog:metadata", args=[dataset.id, fmt])),
            "describedby",
            media_type,
            EXPORT_TITLES.get(fmt, fmt),
        )
        for fmt, (_, media_type, _) in EXPORT_FORMATS.items()
    ]
    links.append(_link(absolute(reverse("stac:collection", args=[dataset.id])), "describedby", JSON, "STAC Collection"))
    if (dataset.license_url or "").startswith(("http://", "https://")):
        links.append(_link(dataset.license_url, "license", HTML, spdx(dataset.license_url) or "Licence"))
    if dataset.doi.strip():
        links.append(_link(f"https://doi.org/{dataset.doi.strip()}", "cite-as", HTML, "DOI"))
    if dataset.source_url:
        links.append(_link(dataset.source_url, "via", HTML, f"The record at {dataset.source_portal or 'its source'}"))
    return links


def record(dataset: Dataset, absolute: AbsoluteUrl) -> dict[str, Any]:
    """A dataset as an OGC API - Records record (GeoJSON Feature).

    Parameters
    ----------
    dataset : Dataset
        With ``tags`` and ``roles__person`` prefetched for pages of records.
    absolute : callable
        Path -> absolute URL.

    Returns
    -------
    dict
        ``id``, ``type: Feature``, ``conformsTo`` (record-core), ``geometry`` (the record's box as a
        polygon in CRS84, lon/lat degrees; None without one) and ``bbox``, ``time`` (``interval``
        [start, end], dates or UTC timestamps; ``resolution`` as an ISO 8601 duration when the
        record names one time step), ``properties`` (``type: dataset``, ``title`` in the active
        language and ``title_zh``, plain-text ``description`` and ``description_zh``, ``keywords``
        in English and Chinese, ``themes`` (TPDC keywords, CF standard names), ``language`` and
        ``languages``, ``formats``, ``contacts``, ``license`` (SPDX id, ``other``, or absent when
        the record states none), ``rights``, ``created``, ``updated``, ``externalIds`` (DOI,
        CSTR)) and ``links`` (:func:`record_links`).
    """
    geometry, box = _geometry(dataset)
    keywords, keyword_concepts = _keywords(dataset)
    language, languages = _languages(dataset)
    interval = _interval(dataset.acq_start, dataset.acq_end)
    time: dict[str, Any] | None = None
    if interval:
        time = {"interval": interval}
        steps = vocab.time_resolutions(dataset.time_res_en, dataset.time_res_cn)
        if len(steps) == 1 and steps[0] in TIME_STEPS:
            time["resolution"] = TIME_STEPS[steps[0]]
    properties: dict[str, Any] = {
        "type": "dataset",
        "title": dataset.title,
        "title_zh": dataset.title_cn or None,
        "description": plain_text(dataset.abstract) or None,
        "description_zh": plain_text(dataset.abstract_cn) or None,
        "keywords": keywords,
        "themes": _themes(dataset, keyword_concepts, absolute),
        "language": language,
        "languages": languages,
        "formats": _formats(dataset),
        "contacts": _contacts(dataset),
        "license": spdx(dataset.license_url) or ("other" if (dataset.license_url or "").strip() else None),
        "rights": _rights(dataset),
        "created": _iso(dataset.created or dataset.publish_time),
        "updated": _iso(dataset.updated),
        "externalIds": _external_ids(dataset),
    }
    doc: dict[str, Any] = {
        "id": dataset.id,
        "type": "Feature",
        "conformsTo": [RECORD_CORE],
        "time": time,
        "geometry": geometry,
    }
    if box:
        doc["bbox"] = box
    doc["properties"] = {k: v for k, v in properties.items() if v not in (None, [], "")}
    doc["links"] = record_links(dataset, absolute)
    return doc


def get_record(collection_id: str, record_id: str, absolute: AbsoluteUrl) -> dict[str, Any]:
    """One record of the catalogue.

    Raises
    ------
    RecordsError
        404 for another collection or an unknown record.
    """
    check_collection(collection_id, absolute)
    dataset = Dataset.objects.filter(id=record_id).prefetch_related("tags", "roles__person").first()
    if dataset is None:
        raise RecordsError(
            404,
            f"recordId: no record {record_id[:100]!r} in {COLLECTION_ID!r}; search "
            f"{_url(absolute, 'items', COLLECTION_ID)}",
        )
    return record(dataset, absolute)


def check_collection(collection_id: str, absolute: AbsoluteUrl) -> None:
    """Raise a 404 :class:`RecordsError` unless ``collection_id`` is the catalogue's."""
    if collection_id != COLLECTION_ID:
        raise RecordsError(
            404,
            f"catalogId: no catalogue {collection_id[:100]!r}; the one catalogue is "
            f"{COLLECTION_ID!r} ({_url(absolute, 'collections')})",
        )


def _page_url(base: str, params: Mapping[str, Iterable[str]], offset: int) -> str:
    items = [(k, v) for k, vs in params.items() if k != "offset" for v in vs]
    if offset:
        items.append(("offset", str(offset)))
    return f"{base}?{urlencode(items)}" if items else base


def items(collection_id: str, params: Mapping[str, Iterable[str]], absolute: AbsoluteUrl) -> dict[str, Any]:
    """The items of the catalogue that a query asks for (:func:`parse_items`), as a GeoJSON FeatureCollection.

    Returns
    -------
    dict
        ``type: FeatureCollection``, ``features`` (records, :func:`record`), ``numberMatched``,
        ``numberReturned``, ``timeStamp`` (UTC) and ``links``: ``self``, ``next``/``prev`` (the same
        query at the next/previous offset) when there are such pages, ``collection``.

    Raises
    ------
    RecordsError
        404 for another collection; 400 for a bad parameter (:func:`parse_items`).
    """
    check_collection(collection_id, absolute)
    params = {str(k): [str(v) for v in vs] for k, vs in params.items()}
    query = parse_items(params)
    page = find(query)
    prefetch_related_objects(page.records, "roles__person")
    base = _url(absolute, "items", COLLECTION_ID)
    kept = _values(params)
    links = [_link(_page_url(base, kept, query.offset), "self", GEOJSON, "This page")]
    if query.offset + len(page.records) < page.total and page.records:
        links.append(_link(_page_url(base, kept, query.offset + query.limit), "next", GEOJSON, "Next page"))
    if query.offset > 0:
        links.append(_link(_page_url(base, kept, max(0, query.offset - query.limit)), "prev", GEOJSON, "Previous page"))
    links.append(_link(_url(absolute, "collection", COLLECTION_ID), "collection", JSON, "The catalogue"))
    return {
        "type": "FeatureCollection",
        "features": [record(d, absolute) for d in page.records],
        "numberMatched": page.total,
        "numberReturned": len(page.records),
        "timeStamp": _iso(dt.datetime.now(dt.UTC).replace(microsecond=0)),
        "links": links,
    }


def _extent() -> dict[str, Any]:
    """The catalogue's extent: the box around every record's box, the span of their periods."""
    agg = Dataset.objects.aggregate(box=Extent("bbox"), start=Min("acq_start"), end=Max("acq_end"))
    extent: dict[str, Any] = {}
    if agg["box"]:
        extent["spatial"] = {"bbox": [[round(v, 6) for v in agg["box"]]], "crs": CRS84}
    if agg["start"] or agg["end"]:
        extent["temporal"] = {
            "interval": [[_iso(agg["start"]), _iso(agg["end"])]],
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
        }
    return extent


def catalogue(absolute: AbsoluteUrl) -> dict[str, Any]:
    """The catalogue's collection document (``itemType: record``)."""
    title, description = CATALOGUE["zh" if _zh() else "en"]
    items_url = _url(absolute, "items", COLLECTION_ID)
    return {
        "id": COLLECTION_ID,
        "type": "Collection",
        "itemType": "record",
        "title": title,
        "description": description,
        "keywords": [
            "hydrology",
            "evapotranspiration",
            "soil moisture",
            "freeze/thaw",
            "terrestrial water storage",
            "水文",
            "蒸散发",
            "土壤水分",
            "冻融",
            "陆地储水",
        ],
        "language": {"code": "zh" if _zh() else "en"},
        "languages": [{"code": c, "name": n} for c, n in LANGUAGES.items()],
        "extent": _extent(),
        "crs": [CRS84],
        "links": [
            _link(_url(absolute, "collection", COLLECTION_ID), "self", JSON, "This catalogue"),
            _link(_url(absolute, "landing"), "root", JSON, "The Records API"),
            _link(items_url, "items", GEOJSON, "The records"),
            _link(
                _url(absolute, "queryables", COLLECTION_ID),
                REL_QUERYABLES,
                SCHEMA_JSON,
                "What the records can be filtered by",
            ),
            _link(
                _url(absolute, "sortables", COLLECTION_ID),
                REL_SORTABLES,
                SCHEMA_JSON,
                "What the records can be sorted by",
            ),
            _link(absolute(reverse("catalog:dataset_list")), "alternate", HTML, "The catalogue's web page"),
        ],
    }


def landing(absolute: AbsoluteUrl) -> dict[str, Any]:
    """The landing page: title, description and links (self, the API definition, conformance, data)."""
    return {
        "title": f"{PORTAL_NAME}: OGC API - Records",
        "description": "A searchable catalogue of the portal's dataset records: words in English or Chinese, a box "
        "(antimeridian included), a period, and the catalogue's facets.",
        "links": [
            _link(_url(absolute, "landing"), "self", JSON, "This document"),
            _link(_url(absolute, "openapi"), "service-desc", OPENAPI, "The API definition (OpenAPI 3.0)"),
            _link(_url(absolute, "conformance"), "conformance", JSON, "Conformance classes"),
            _link(_url(absolute, "conformance"), REL_CONFORMANCE, JSON, "Conformance classes"),
            _link(_url(absolute, "collections"), "data", JSON, "The catalogues"),
            _link(_url(absolute, "collections"), REL_DATA, JSON, "The catalogues"),
            _link(absolute(reverse("catalog:dataset_list")), "alternate", HTML, "The catalogue's web page"),
        ],
    }


def collections(absolute: AbsoluteUrl) -> dict[str, Any]:
    """``/collections``: the one catalogue."""
    return {
        "links": [
            _link(_url(absolute, "collections"), "self", JSON, "This document"),
            _link(_url(absolute, "landing"), "root", JSON, "The Records API"),
        ],
        "collections": [catalogue(absolute)],
    }


_QUERYABLES = {
    "category": ("Category", "The TPDC category in Chinese (水文, 冰冻圈, ...)", None),
    "keyword": ("Keyword", "A TPDC keyword, in Chinese (蒸散发, 土壤水分, 冻融, 青藏高原, ...)", None),
    "variable": (
        "Variable",
        "A CF standard name of a published variable (surface_freeze_thaw_state is the portal's own)",
        None,
    ),
    "spatial_resolution": ("Spatial resolution", "As normalized by the catalogue: 0.1°, 1 km, 36 km, ...", None),
    "temporal_resolution": ("Temporal resolution", "Time step", list(vocab.TIME_RESOLUTIONS)),
    "share_type": ("Access", "TPDC share type", [s.value for s in Dataset.ShareType]),
    "format": ("Format", "File format, as normalized by the catalogue", None),
    "published": ("Published version", "Whether the portal has published a version", ["yes", "no"]),
}


def queryables(collection_id: str, absolute: AbsoluteUrl) -> dict[str, Any]:
    """The catalogue's queryables (JSON Schema 2020-12): the search facets, each a query parameter of the
    items (equality; a repeated parameter lists alternatives)."""
    check_collection(collection_id, absolute)
    variables = sorted({v for p in PRODUCTS.values() for v in p.variables})
    properties = {}
    for name, (title, description, enum) in _QUERYABLES.items():
        schema: dict[str, Any] = {"title": title, "description": description, "type": "string"}
        if name == "variable":
            schema["enum"] = variables
        elif enum:
            schema["enum"] = enum
        properties[name] = schema
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": _url(absolute, "queryables", collection_id),
        "type": "object",
        "title": CATALOGUE["zh" if _zh() else "en"][0],
        "properties": properties,
        "additionalProperties": False,
    }


def sortables(collection_id: str, absolute: AbsoluteUrl) -> dict[str, Any]:
    """The catalogue's sortables (``sortby``): ``title`` (ascending only) and ``updated`` (either way)."""
    check_collection(collection_id, absolute)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": _url(absolute, "sortables", collection_id),
        "type": "object",
        "title": CATALOGUE["zh" if _zh() else "en"][0],
        "properties": {
            "title": {
                "title": "Title",
                "description": "In the active language; ascending only (sortby=title)",
                "type": "string",
            },
            "updated": {
                "title": "Updated",
                "description": "The record's last update, else its publication (sortby=updated or -updated)",
                "type": "string",
                "format": "date-time",
            },
        },
    }
