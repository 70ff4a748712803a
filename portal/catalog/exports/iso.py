"""ISO 19115 metadata of a dataset in the ISO 19139 XML encoding, written by pygeometa.

The record becomes a pygeometa MCF dict (:func:`mcf`), English first with the Chinese text as the
alternate language (``PT_FreeText``), rendered by pygeometa's ``iso19139`` output schema; what that
schema's template has no place for is added to the ``CI_Citation`` of the resource afterwards, in the
order ISO 19139 requires: the identifiers (record id, DOI, CSTR), the contributors as
``citedResponsibleParty`` (role ``author``, record order), the publisher, and the formatted citation as
``otherCitationDetails``.

References
----------
ISO 19115:2003 Geographic information - Metadata; ISO/TS 19139:2007 XML schema implementation.
pygeometa MCF, https://geopython.github.io/pygeometa/reference/mcf/
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from lxml import etree

from ..html import plain_text
from ..models import Dataset, DatasetVersion
from . import record
from .citation import formatted_citation
from .record import PORTAL_NAME, PUBLISHERS

NS = {
    "gmd": "http://www.isotc211.org/2005/gmd",
    "gco": "http://www.isotc211.org/2005/gco",
    "gml": "http://www.opengis.net/gml",
    "xlink": "http://www.w3.org/1999/xlink",
}
CODELISTS = "http://www.isotc211.org/2005/resources/Codelist/gmxCodelists.xml"
NO_LICENCE = "No licence stated by the source"


def _both(dataset: Dataset, field: str) -> dict | str:
    en, cn = record.pick(dataset, field, "en"), getattr(dataset, f"{field}_cn")
    return {"eng": en, "chi": cn} if cn and cn != en else en


def _both_text(dataset: Dataset, field: str) -> dict | str:
    en, cn = plain_text(record.pick(dataset, field, "en")), plain_text(getattr(dataset, f"{field}_cn"))
    return {"eng": en, "chi": cn} if cn and cn != en else en


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat()


def mcf(dataset: Dataset, version: DatasetVersion | None = None) -> dict:
    """The pygeometa MCF (metadata control file) dict of ``dataset`` or one of its versions.

    Returns
    -------
    dict
        Sections ``mcf``, ``metadata`` (identifier ``<id>`` or ``<id>-v<N>``, English with Chinese as
        the alternate language), ``spatial`` (grid), ``identification`` (bilingual title and abstract,
        dates, keywords, topic category ``inlandWaters``, licence or :data:`NO_LICENCE`, EPSG:4326
        box, acquisition period, ``edition`` ``v<N>`` for a version), ``contact`` (point of contact:
        the record's data service, else the portal; the metadata's publisher: the portal), ``distribution`` (each file's download URL and the landing page) and
        ``dataquality`` (the record's processing method as the lineage statement).
    """
    bilingual = bool(dataset.title_cn and dataset.title_en)
    period = record.period(dataset)
    published = record.issued(dataset, version)
    dates = {"creation": _iso(dataset.created), "publication": _iso(published), "revision": _iso(dataset.updated)}
    licence = dataset.license_url.strip()
    extent = dataset.extent
    spatial = (
        [{"bbox": list(extent), "crs": 4326, "description": dataset.acq_place_en or dataset.acq_place_cn or None}]
        if extent
        else []
    )
    temporal = (
        [
            {
                "begin": period.start.isoformat() if period.start else None,
                "end": period.end.isoformat() if period.end else None,
            }
        ]
        if (period.start or period.end)
        else []
    )
    portal = {
        "organization": PORTAL_NAME,
        "email": getattr(settings, "PORTAL_CONTACT_EMAIL", "") or None,
        "url": record.base_url() + "/",
    }
    # the record's data service answers for the record; the portal for what it generated and when none is named
    service = (
        {
            "organization": PUBLISHERS.get(dataset.source_portal, (dataset.source_portal or None,))[0],
            "individualname": dataset.service_contact,
            "phone": dataset.service_phone or None,
            "email": dataset.service_email or None,
            "url": dataset.source_url or record.base_url() + "/",
        }
        if version is None and dataset.service_contact
        else portal
    )
    distribution = {
        f"file-{i}": {
            "url": record.download_url(f),
            "type": "WWW:DOWNLOAD-1.0-http--download",
            "name": f.name,
            "description": f.description or f.media_type,
            "function": "download",
        }
        for i, f in enumerate(record.files(dataset, version), start=1)
    }
    distribution["landing-page"] = {
        "url": record.version_url(dataset, version),
        "type": "WWW:LINK-1.0-http--link",
        "name": "Landing page",
        "function": "information",
    }
    lineage = _both_text(dataset, "process_way") or _both_text(dataset, "source")
    return {
        "mcf": {"version": "1.0"},
        "metadata": {
            "identifier": dataset.id if version is None else f"{dataset.id}-v{version.number}",
            "language": "eng",
            "language_alternate": "chi" if bilingual else None,
            "charset": "utf8",
            "hierarchylevel": "dataset",
            "datestamp": _iso(dataset.updated or dataset.created) or dt.date.today().isoformat(),
            "dataseturi": record.version_url(dataset, version),
        },
        "spatial": {"datatype": "grid", "geomtype": "surface"},
        "identification": {
            "language": "eng",
            "charset": "utf8",
            "title": _both(dataset, "title"),
            "abstract": _both_text(dataset, "abstract") or record.pick(dataset, "title", "en"),
            "edition": f"v{version.number}" if version is not None else None,
            "dates": {k: v for k, v in dates.items() if v},
            "keywords": {
                "default": {
                    "keywords": record.keywords(dataset) or ["hydrology"],
                    "keywords_type": "theme",
                    "vocabulary": {"name": "TPDC keywords"},
                }
            },
            "topiccategory": ["inlandWaters"],
            "rights": licence or NO_LICENCE,
            "license": {"name": licence, "url": licence} if licence else {"name": NO_LICENCE},
            "accessconstraints": "license" if licence else "otherRestrictions",
            "url": record.version_url(dataset, version),
            "status": "completed",
            "maintenancefrequency": "asNeeded",
            "extents": {"spatial": spatial, "temporal": temporal},
        },
        "contact": {"pointOfContact": service, "publisher": portal},
        "distribution": distribution,
        "dataquality": {"scope": {"level": "dataset"}, "lineage": {"statement": lineage}} if lineage else None,
    }


def _el(tag: str, *children, text: str | None = None, **attrib) -> etree._Element:
    prefix, name = tag.split(":")
    el = etree.Element(f"{{{NS[prefix]}}}{name}", {k.replace("__", ":"): v for k, v in attrib.items()})
    if text is not None:
        el.text = text
    el.extend(children)
    return el


def _string(tag: str, value: str) -> etree._Element:
    return _el(tag, _el("gco:CharacterString", text=value))


def _party(role: str, *, person: str = "", organisation: str = "") -> etree._Element:
    parts = []
    if person:
        parts.append(_string("gmd:individualName", person))
    if organisation:
        parts.append(_string("gmd:organisationName", organisation))
    code = _el("gmd:CI_RoleCode", text=role, codeList=f"{CODELISTS}#CI_RoleCode", codeListValue=role)
    return _el("gmd:citedResponsibleParty", _el("gmd:CI_ResponsibleParty", *parts, _el("gmd:role", code)))


def iso19139_xml(dataset: Dataset, version: DatasetVersion | None = None) -> bytes:
    """ISO 19139 XML (``gmd:MD_Metadata``, UTF-8) of ``dataset`` or one of its versions.

    Returns
    -------
    bytes
        pygeometa's rendering of :func:`mcf`, with the resource's identifiers, authors, publisher and
        formatted citation added to its ``CI_Citation`` and the alternate-language locale given the id
        its ``PT_FreeText`` strings refer to (``#chi``).
    """
    from pygeometa.schemas.iso19139 import ISO19139OutputSchema  # 0.3 s to import: not in every worker

    xml = ISO19139OutputSchema().write(mcf(dataset, version))
    root = etree.fromstring(xml.encode("utf-8"), etree.XMLParser(remove_blank_text=True))
    for locale in root.iterfind("gmd:locale/gmd:PT_Locale", NS):
        locale.set("id", "chi")  # pygeometa names it "locale-fr" whatever the language
    citation = root.find("gmd:identificationInfo/gmd:MD_DataIdentification/gmd:citation/gmd:CI_Citation", NS)
    identifiers = [
        (dataset.id, "org.hydroportal"),
        (record.doi_url(dataset), "DOI"),
        (record.cstr_label(dataset), "CSTR"),
    ]
    for code, space in identifiers:
        if code:
            citation.append(
                _el(
                    "gmd:identifier",
                    _el("gmd:RS_Identifier", _string("gmd:code", code), _string("gmd:codeSpace", space)),
                )
            )
    for person in record.contributors(dataset):
        citation.append(_party("author", person=person.true_name, organisation=person.work_for))
    citation.append(_party("publisher", organisation=record.publisher(dataset, version, "en")))
    citation.append(_string("gmd:otherCitationDetails", formatted_citation(dataset, version, language="en")))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
