"""DataCite Metadata Schema 4.5 (XML) of a dataset record or of one of its published versions.

:func:`datacite_dict` maps the TPDC record onto DataCite's JSON form (the ``datacite`` package's
``datacite-v4.5.json`` schema); :func:`datacite_xml` serializes it with the package's 4.5 writer
(:mod:`datacite.schema45`) and adds the identifier when there is no DOI. The result validates
against DataCite's kernel-4.5 XSD (``tests/xsd/datacite-kernel-4.5``).

Mapping (DataCite property <- record):

* Identifier: the DOI when the record has one; else the record's page on this portal
  (``identifierType="URL"``). DataCite registers only DOIs, but its XSD accepts any
  ``identifierType`` for the mandatory identifier, so a record without a DOI is still a valid
  DataCite document (it just cannot be registered as is). The CSTR and (with a DOI) the page URL are
  alternate identifiers. A version's identifier is its section of the page (``#version-N``).
* Creators: the record's contributors (TPDC ``ds_contributors``) in order, with their affiliation;
  a record naming none has the standard value ``(:unav)``; a version naming none is credited to
  this portal, which generated its files.
* Titles: ``title_cn`` (``xml:lang="zh"``) and ``title_en`` (``en``); the one not in the record's
  language is a ``TranslatedTitle``.
* Publisher: the source portal for a record, this portal for a version it generated
  (:func:`.record.publisher`); publicationYear from :func:`.record.issued`.
* Subjects: the tags (Chinese, and English where the vocabulary names them) and the category.
* Contributors: metadata authors (``DataCurator``), managers (``DataManager``), the data service
  contact (``ContactPerson``) and this portal (``HostingInstitution``).
* Dates: Created, Updated, Issued (the record's times; a version's publication), Available (the end
  of a protection period), Collected (the acquisition period as an RKMS-ISO8601 interval).
* Descriptions: abstracts and processing methods in both languages (HTML stripped), the resolution
  and projection as TechnicalInfo, a version's notes.
* Rights: the licence URL with its SPDX identifier for Creative Commons licences, and the access
  right (``info:eu-repo/semantics/...``) from the share type.
* GeoLocations: the bounding box and the place name; Formats, Sizes, Version; RelatedIdentifiers:
  the source record (``IsIdenticalTo``), the published versions (``HasVersion``) or, for a version,
  the record (``IsVersionOf``), the previous version (``IsNewVersionOf``) and its files (``HasPart``).

Source standard: DataCite Metadata Schema 4.5 (https://schema.datacite.org/meta/kernel-4.5/).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from datacite import schema45
from lxml import etree

from ..html import plain_text
from ..models import Dataset, DatasetPerson, DatasetVersion
from ..vocabulary import category_en, keyword_en, spdx_licence
from . import record

SCHEMA_VERSION = "http://datacite.org/schema/kernel-4"
NS = "http://datacite.org/schema/kernel-4"
UNAVAILABLE = "(:unav)"
"""DataCite's standard value for information that is not available (Metadata Schema 4.5, appendix 3)."""

_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_DOI = re.compile(r"^10\.[0-9]{4,9}/\S+$")
_SPLIT = re.compile(r"[、,，;；/]+")


def access_right(dataset: Dataset) -> tuple[str, str]:
    """The COAR/OpenAIRE access right of the record's share type: (URI, label)."""
    share = (dataset.share_type or "").strip()
    if dataset.protected_to and share == Dataset.ShareType.PROTECTED:
        return "info:eu-repo/semantics/embargoedAccess", "Embargoed access"
    if share in (Dataset.ShareType.LOGIN, Dataset.ShareType.PROTECTED):
        return "info:eu-repo/semantics/restrictedAccess", "Restricted access"
    return "info:eu-repo/semantics/openAccess", "Open access"


def doi(dataset: Dataset) -> str:
    """The record's DOI without resolver prefix (``10.xxxx/...``), or empty when it has none that is valid."""
    url = record.doi_url(dataset)
    value = url.removeprefix("https://doi.org/") if url else ""
    return value if _DOI.match(value) else ""


def _lang(text: str) -> str:
    return "zh" if re.search(r"[\u3400-\u9fff]", text) else "en"


def _people(dataset: Dataset, role: str) -> list:
    """The record's people in one role, in record order (prefetched roles are used when present)."""
    if dataset._state.adding:
        return []
    roles = [r for r in dataset.roles.all() if r.role == role]
    return [r.person for r in sorted(roles, key=lambda r: (r.order, r.id))]


def _person(person, contributor_type: str | None = None) -> dict:
    entry: dict[str, Any] = {"name": person.true_name.strip(), "nameType": "Personal"}
    if person.work_for.strip():
        entry["affiliation"] = [{"name": person.work_for.strip()}]
    if contributor_type:
        entry["contributorType"] = contributor_type
    return entry


def _organization(name: str, contributor_type: str | None = None) -> dict:
    entry = {"name": name, "nameType": "Organizational"}
    if contributor_type:
        entry["contributorType"] = contributor_type
    return entry


def _titles(dataset: Dataset) -> list[dict]:
    first_en = (dataset.lang or "").startswith("en") or not dataset.title_cn
    pairs = (
        [("en", dataset.title_en), ("zh", dataset.title_cn)]
        if first_en
        else [("zh", dataset.title_cn), ("en", dataset.title_en)]
    )
    titles = []
    for lang, title in pairs:
        if title.strip():
            entry = {"title": title.strip(), "lang": lang}
            if titles:
                entry["titleType"] = "TranslatedTitle"
            titles.append(entry)
    return titles


def _subjects(dataset: Dataset) -> list[dict]:
    out: dict[tuple[str, str, str], dict] = {}

    def add(name: str, scheme: str = ""):
        name = name.strip()
        if name:
            entry = {"subject": name, "lang": _lang(name)}
            if scheme:
                entry["subjectScheme"] = scheme
            out.setdefault((name, entry["lang"], scheme), entry)

    tags = [] if dataset._state.adding else sorted(dataset.tags.all(), key=lambda t: (t.kind, t.name))
    for tag in tags:
        add(tag.name)
        add(keyword_en(tag.name))
    if dataset.category:
        add(dataset.category, "TPDC category")
        add(category_en(dataset.category), "TPDC category")
    return list(out.values())


def _date(value) -> str:
    return value.astimezone(dt.UTC).date().isoformat()


def _dates(dataset: Dataset, version: DatasetVersion | None) -> list[dict]:
    dates = []
    if version is not None:
        if version.published_at:
            dates.append({"date": _date(version.published_at), "dateType": "Issued"})
    else:
        for value, kind in (
            (dataset.created, "Created"),
            (dataset.updated, "Updated"),
            (dataset.publish_time, "Issued"),
        ):
            if value:
                dates.append({"date": _date(value), "dateType": kind})
    if dataset.protected_to:
        dates.append(
            {
                "date": _date(dataset.protected_to),
                "dateType": "Available",
                "dateInformation": "end of the protection period",
            }
        )
    period = record.period(dataset)
    if period.start and period.end:
        dates.append({"date": f"{period.start.isoformat()}/{period.end.isoformat()}", "dateType": "Collected"})
    elif period.start or period.end:
        dates.append(
            {
                "date": (period.start or period.end).isoformat(),
                "dateType": "Collected",
                "dateInformation": "start of acquisition" if period.start else "end of acquisition",
            }
        )
    return dates


def _descriptions(dataset: Dataset, version: DatasetVersion | None) -> list[dict]:
    out = []
    for field, kind in (("abstract", "Abstract"), ("process_way", "Methods")):
        for lang, suffix in (("en", "_en"), ("zh", "_cn")):
            value = plain_text(getattr(dataset, field + suffix))
            if value:
                out.append({"description": value, "descriptionType": kind, "lang": lang})
    technical = "; ".join(
        f"{label}: {value.strip()}"
        for label, value in (
            ("Spatial resolution", dataset.space_res_en),
            ("Temporal resolution", dataset.time_res_en),
            ("Projection", dataset.projection_en),
        )
        if value.strip() and _lang(value) == "en"
    )
    if technical:
        out.append({"description": technical, "descriptionType": "TechnicalInfo", "lang": "en"})
    if version is not None and version.notes.strip():
        out.append({"description": version.notes.strip(), "descriptionType": "Other", "lang": "en"})
    return out


def _rights(dataset: Dataset) -> list[dict]:
    rights = []
    url = (dataset.license_url or "").strip()
    if url:
        entry: dict[str, str] = {"rightsUri": url}
        spdx = spdx_licence(url)
        if spdx:
            entry.update(
                rights=spdx[1],
                rightsIdentifier=spdx[0],
                rightsIdentifierScheme="SPDX",
                schemeUri="https://spdx.org/licenses/",
                lang="en",
            )
        else:
            entry["rights"] = url
        rights.append(entry)
    uri, label = access_right(dataset)
    rights.append({"rights": label, "rightsUri": uri, "lang": "en"})
    return rights


def _geolocations(dataset: Dataset) -> list[dict]:
    place = (dataset.acq_place_en or dataset.acq_place_cn).strip()
    location: dict[str, Any] = {}
    if place:
        location["geoLocationPlace"] = place
    if dataset.extent:
        west, south, east, north = (float(v) for v in dataset.extent)
        location["geoLocationBox"] = {
            "westBoundLongitude": west,
            "eastBoundLongitude": east,
            "southBoundLatitude": south,
            "northBoundLatitude": north,
        }
    return [location] if location else []


def _primary(dataset: Dataset) -> tuple[str, str]:
    """The record's identifier: ("DOI", doi) or ("URL", its page)."""
    value = doi(dataset)
    return ("DOI", value) if value else ("URL", record.landing_url(dataset))


def _versions(dataset: Dataset) -> list[DatasetVersion]:
    return [] if dataset._state.adding else sorted(dataset.versions.all(), key=lambda v: v.number)


def datacite_dict(dataset: Dataset, version: DatasetVersion | None = None) -> dict[str, Any]:
    """The record (or one published version) as DataCite 4.5 JSON (the ``datacite`` package's form).

    Parameters
    ----------
    dataset : Dataset
        A saved record (people, tags and versions are read from the database; prefetch ``tags``,
        ``roles__person`` and ``versions__files`` to read many records with few queries).
    version : DatasetVersion, optional
        One of the record's published versions: describe it instead of the record.

    Returns
    -------
    dict
        Valid against ``datacite-v4.5.json`` (:func:`datacite.schema45.validate`). Besides the
        schema's keys, ``identifier`` holds ``{"identifier": ..., "identifierType": "DOI"|"URL"}``
        (the XML's mandatory identifier; ``doi`` is set only for a DOI).

    Raises
    ------
    ValueError
        When ``version`` belongs to another dataset.
    """
    if version is not None and version.dataset_id != dataset.id:
        raise ValueError(f"version {version.number} belongs to {version.dataset_id!r}, not {dataset.id!r}")
    kind, value = _primary(dataset)
    page = record.landing_url(dataset)
    if version is not None:
        identifier = {"identifier": record.version_url(dataset, version), "identifierType": "URL"}
    else:
        identifier = {"identifier": value, "identifierType": kind}

    creators = [_person(p) for p in _people(dataset, DatasetPerson.Role.CONTRIBUTOR) if p.true_name.strip()]
    if not creators:
        creators = (
            [_organization(record.publisher(dataset, version))] if version is not None else [{"name": UNAVAILABLE}]
        )
    contributors = [_person(p, "DataCurator") for p in _people(dataset, DatasetPerson.Role.AUTHOR)]
    contributors += [_person(p, "DataManager") for p in _people(dataset, DatasetPerson.Role.MANAGER)]
    if dataset.service_contact.strip():
        contributors.append(
            {"name": dataset.service_contact.strip(), "nameType": "Personal", "contributorType": "ContactPerson"}
        )
    contributors.append(_organization(record.PORTAL_NAME, "HostingInstitution"))

    issued = record.issued(dataset, version)
    year = (
        issued.year
        if issued
        else (dataset.updated or dataset.created).year
        if (dataset.updated or dataset.created)
        else None
    )
    alternates = []
    cstr = record.cstr_label(dataset).removeprefix("CSTR:")
    if cstr:
        alternates.append({"alternateIdentifier": cstr, "alternateIdentifierType": "CSTR"})
    if version is None and kind == "DOI":
        alternates.append({"alternateIdentifier": page, "alternateIdentifierType": "URL"})

    related: list[dict] = []
    versions = _versions(dataset)
    if version is None:
        if dataset.source_url.strip():
            related.append(
                {
                    "relatedIdentifier": dataset.source_url.strip(),
                    "relatedIdentifierType": "URL",
                    "relationType": "IsIdenticalTo",
                }
            )
        related += [
            {
                "relatedIdentifier": record.version_url(dataset, v),
                "relatedIdentifierType": "URL",
                "relationType": "HasVersion",
            }
            for v in versions
        ]
        files_ = []
    else:
        related.append({"relatedIdentifier": value, "relatedIdentifierType": kind, "relationType": "IsVersionOf"})
        previous = [v for v in versions if v.number < version.number]
        if previous:
            related.append(
                {
                    "relatedIdentifier": record.version_url(dataset, previous[-1]),
                    "relatedIdentifierType": "URL",
                    "relationType": "IsNewVersionOf",
                }
            )
        files_ = sorted(version.files.all(), key=lambda f: f.name)
        related += [
            {"relatedIdentifier": record.download_url(f), "relatedIdentifierType": "URL", "relationType": "HasPart"}
            for f in files_
        ]

    if version is None:
        formats = [f.strip() for f in _SPLIT.split(dataset.format_en or dataset.format_cn) if f.strip()]
        sizes = [f"{dataset.total_size} bytes"] if dataset.total_size else []
        if dataset.files_count:
            sizes.append(f"{dataset.files_count} files")
        version_text = str(dataset.tpdc_version) if dataset.tpdc_version else ""
    else:
        formats = list(dict.fromkeys(f.media_type for f in files_ if f.media_type))
        sizes = [f"{sum(f.size for f in files_)} bytes", f"{len(files_)} files"] if files_ else []
        version_text = str(version.number)

    data: dict[str, Any] = {
        "identifier": identifier,
        "types": {
            "resourceTypeGeneral": "Dataset",
            "resourceType": "Dataset version" if version is not None else "Dataset",
        },
        "creators": creators,
        "titles": _titles(dataset) or [{"title": dataset.id}],
        "publisher": {"name": record.publisher(dataset, version), "lang": "en"},
        "publicationYear": f"{year:04d}" if year else f"{dt.datetime.now(dt.UTC).year:04d}",
        "subjects": _subjects(dataset),
        "contributors": contributors,
        "dates": _dates(dataset, version),
        "language": (dataset.lang or "").strip(),
        "alternateIdentifiers": alternates,
        "relatedIdentifiers": related,
        "sizes": sizes,
        "formats": formats,
        "version": version_text,
        "rightsList": _rights(dataset),
        "descriptions": _descriptions(dataset, version),
        "geoLocations": _geolocations(dataset),
        "schemaVersion": SCHEMA_VERSION,
    }
    if kind == "DOI" and version is None:
        data["doi"] = value
    if version is None:
        data["url"] = page
    return _clean({k: v for k, v in data.items() if v not in ("", [], None)})


def _clean(value):
    """Drop characters XML 1.0 cannot hold (control characters) from every string."""
    if isinstance(value, str):
        return _XML_ILLEGAL.sub("", value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def datacite_element(data: dict[str, Any]) -> etree._Element:
    """The DataCite XML tree (``{http://datacite.org/schema/kernel-4}resource``) of :func:`datacite_dict`'s dict."""
    body = {k: v for k, v in data.items() if k != "identifier"}
    root = etree.fromstring(schema45.tostring(body).encode("utf-8"))  # parsed: every element in the kernel namespace
    ident = data["identifier"]
    if ident["identifierType"] != "DOI":
        element = etree.Element(f"{{{NS}}}identifier", identifierType=ident["identifierType"])
        element.text = ident["identifier"]
        root.insert(0, element)
    else:  # the writer appends the DOI last; DataCite's order puts it first (xs:all accepts either)
        element = root.find(f"{{{NS}}}identifier")
        root.remove(element)
        root.insert(0, element)
    return root


def datacite_xml(dataset: Dataset, version: DatasetVersion | None = None) -> bytes:
    """DataCite 4.5 XML of the record, or of one of its published versions.

    Parameters
    ----------
    dataset : Dataset
        A saved record.
    version : DatasetVersion, optional
        One of its published versions.

    Returns
    -------
    bytes
        A UTF-8 XML document whose root is ``resource`` in ``http://datacite.org/schema/kernel-4``
        (``xsi:schemaLocation`` the kernel-4.5 XSD), valid against that XSD.

    Raises
    ------
    ValueError
        When ``version`` belongs to another dataset.
    """
    root = datacite_element(datacite_dict(dataset, version))
    etree.indent(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
