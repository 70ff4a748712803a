"""A dataset as linked data: DCAT (JSON-LD) for catalogues, schema.org ``Dataset`` for search engines.

:func:`dcat` describes the record with the W3C DCAT 3 vocabulary (``dcat:Dataset`` with a
``dcat:Distribution`` per published file, checksums in SPDX terms, the box as a GeoSPARQL WKT literal);
:func:`schema_org` is what Google Dataset Search reads from the ``<script type="application/ld+json">``
block of the detail page (:func:`jsonld_script`). Both are plain JSON-LD (compact IRIs under an
explicit ``@context``); no RDF library is needed to write or read them.

References
----------
W3C Data Catalog Vocabulary (DCAT) Version 3, https://www.w3.org/TR/vocab-dcat-3/
schema.org Dataset, https://schema.org/Dataset; Google's dataset structured data guidelines,
https://developers.google.com/search/docs/appearance/structured-data/dataset
"""

from __future__ import annotations

import json

from django.utils.safestring import SafeString, mark_safe

from ..html import plain_text
from ..models import Dataset, DatasetVersion
from . import record
from .citation import formatted_citation
from .record import PORTAL_NAME

DCAT_CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "locn": "http://www.w3.org/ns/locn#",
    "spdx": "http://spdx.org/rdf/terms#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "gsp": "http://www.opengis.net/ont/geosparql#",
    "owl": "http://www.w3.org/2002/07/owl#",
}
"""Prefixes of the DCAT document."""
IANA_MEDIA_TYPES = "https://www.iana.org/assignments/media-types/"


def _lang_values(dataset: Dataset, field: str, *, html: bool = False) -> list[dict]:
    values = []
    for lang, suffix in (("en", "en"), ("zh", "cn")):
        value = getattr(dataset, f"{field}_{suffix}")
        value = plain_text(value) if html else (value or "").strip()
        if value:
            values.append({"@value": value, "@language": lang})
    return values


def _dataset_id(dataset: Dataset, version: DatasetVersion | None) -> str:
    return record.version_url(dataset, version)


def dcat(dataset: Dataset, version: DatasetVersion | None = None) -> dict:
    """The record (or one of its versions) as a DCAT 3 ``dcat:Dataset`` in JSON-LD.

    Returns
    -------
    dict
        ``@context`` (:data:`DCAT_CONTEXT`), ``@id`` (the landing page; ``#version-N`` for a version),
        ``dct:title`` and ``dct:description`` in English and Chinese (language-tagged),
        ``dct:identifier`` (record id, DOI URL, CSTR), ``dcat:keyword``, ``dct:spatial``
        (``locn:geometry`` and ``dcat:bbox`` as WKT, EPSG:4326 lon/lat), ``dct:temporal``
        (``dcat:startDate``/``dcat:endDate``, ``xsd:date``), ``dct:license`` (absent when the record
        states none; ``dct:rights`` says so), ``dct:creator``, ``dct:publisher``, ``dct:issued``,
        ``dct:modified``, ``dcat:landingPage``, ``dct:bibliographicCitation``, ``dcat:version``
        (a version), ``dcat:hasVersion`` (the record: each published version's DCAT export) and
        ``dcat:distribution``: per file ``dcat:downloadURL``, ``dcat:mediaType`` (IANA),
        ``dcat:byteSize`` and ``spdx:checksum`` (SHA-256).
    """
    licence = dataset.license_url.strip()
    period = record.period(dataset)
    wkt = record.bbox_wkt(dataset)
    issued = record.issued(dataset, version)
    doc: dict = {
        "@context": DCAT_CONTEXT,
        "@id": _dataset_id(dataset, version),
        "@type": "dcat:Dataset",
        "dct:title": _lang_values(dataset, "title"),
        "dct:description": _lang_values(dataset, "abstract", html=True),
        "dct:identifier": [v for v in (dataset.id, record.doi_url(dataset), record.cstr_label(dataset)) if v],
        "dcat:keyword": record.keywords(dataset),
        "dcat:landingPage": {"@id": record.landing_url(dataset)},
        "dct:creator": [{"@type": "foaf:Person", "foaf:name": p.true_name} for p in record.contributors(dataset)],
        "dct:publisher": {"@type": "foaf:Organization", "foaf:name": record.publisher(dataset, version, "en")},
        "dct:bibliographicCitation": formatted_citation(dataset, version, language="en"),
    }
    if wkt:
        literal = {"@value": wkt, "@type": "gsp:wktLiteral"}
        doc["dct:spatial"] = {"@type": "dct:Location", "locn:geometry": literal, "dcat:bbox": literal}
    if period.start or period.end:
        doc["dct:temporal"] = {
            "@type": "dct:PeriodOfTime",
            **{
                key: {"@value": value.isoformat(), "@type": "xsd:date"}
                for key, value in (("dcat:startDate", period.start), ("dcat:endDate", period.end))
                if value
            },
        }
    if licence:
        doc["dct:license"] = {"@id": licence}
    else:
        doc["dct:rights"] = "No licence stated by the source"
    if issued:
        doc["dct:issued"] = {"@value": issued.isoformat(), "@type": "xsd:date"}
    if dataset.updated:
        doc["dct:modified"] = {"@value": dataset.updated.date().isoformat(), "@type": "xsd:date"}
    if version is not None:
        doc["dcat:version"] = str(version.number)
        doc["dct:isVersionOf"] = {"@id": record.landing_url(dataset)}
    elif not dataset._state.adding:
        doc["dcat:hasVersion"] = [{"@id": record.version_url(dataset, v)} for v in dataset.versions.order_by("number")]
    doc["dcat:distribution"] = [
        {
            "@type": "dcat:Distribution",
            "dct:title": f.name,
            "dct:description": f.description,
            "dcat:downloadURL": {"@id": record.download_url(f)},
            "dcat:accessURL": {"@id": record.version_url(dataset, f.version)},
            "dcat:mediaType": {"@id": IANA_MEDIA_TYPES + f.media_type},
            "dcat:byteSize": {"@value": str(f.size), "@type": "xsd:nonNegativeInteger"},
            "spdx:checksum": {
                "@type": "spdx:Checksum",
                "spdx:algorithm": {"@id": "spdx:checksumAlgorithm_sha256"},
                "spdx:checksumValue": {"@value": f.sha256, "@type": "xsd:hexBinary"},
            },
            **({"dct:license": {"@id": licence}} if licence else {}),
        }
        for f in record.files(dataset, version)
    ]
    return {k: v for k, v in doc.items() if v not in ("", [], None)}


def schema_org(dataset: Dataset, version: DatasetVersion | None = None, *, language: str = "en") -> dict:
    """The record (or a version) as a schema.org ``Dataset`` (JSON-LD), as Google Dataset Search reads it.

    Parameters
    ----------
    language : str
        The language of ``name`` and ``description`` (the page's); the other language's title is the
        ``alternateName``.

    Returns
    -------
    dict
        ``name``, ``alternateName``, ``description`` (plain text; the title when the record has no
        abstract), ``url``, ``sameAs`` (the source page), ``identifier`` (DOI and CSTR as
        ``PropertyValue``, then the record id), ``keywords``, ``license`` (absent when none is stated),
        ``creator`` (``Person`` per contributor; the publisher when the record names nobody),
        ``publisher``, ``spatialCoverage`` (``Place`` with a ``GeoShape`` box ``"S W N E"``),
        ``temporalCoverage`` (ISO 8601 interval), ``distribution`` (``DataDownload`` per file with
        ``encodingFormat``, ``contentUrl``, ``contentSize``, ``sha256``), ``isAccessibleForFree``,
        ``version``, ``datePublished``, ``dateModified``, ``inLanguage``, ``creditText`` (the formatted
        citation), ``citation`` (the record's citation texts and related papers, when it has them) and
        ``includedInDataCatalog``.
    """
    zh = language.startswith("zh")
    name = record.pick(dataset, "title", "zh" if zh else "en")
    other = record.pick(dataset, "title", "en" if zh else "zh")
    description = plain_text(record.pick(dataset, "abstract", "zh" if zh else "en"), 5000) or name
    publisher = {
        "@type": "Organization",
        "name": record.publisher(dataset, version, "en"),
        "url": (dataset.source_url if version is None and dataset.source_url else record.base_url() + "/"),
    }
    identifiers = []
    if record.doi_url(dataset):
        identifiers.append(
            {
                "@type": "PropertyValue",
                "propertyID": "DOI",
                "value": dataset.doi.strip(),
                "url": record.doi_url(dataset),
            }
        )
    if record.cstr_label(dataset):
        identifiers.append(
            {"@type": "PropertyValue", "propertyID": "CSTR", "value": record.cstr_label(dataset).removeprefix("CSTR:")}
        )
    identifiers.append(dataset.id)
    creators = [
        {
            "@type": "Person",
            "name": p.true_name,
            **({"affiliation": {"@type": "Organization", "name": p.work_for}} if p.work_for else {}),
        }
        for p in record.contributors(dataset)
    ]
    period = record.period(dataset)
    issued = record.issued(dataset, version)
    citations = [
        plain_text(v) for v in (dataset.ref_way_en, dataset.ref_way_cn, dataset.paper_ref_way) if plain_text(v)
    ]
    doc = {
        "@context": "https://schema.org/",
        "@type": "Dataset",
        "@id": _dataset_id(dataset, version),
        "name": name,
        "alternateName": other if other != name else "",
        "description": description,
        "url": record.version_url(dataset, version),
        "sameAs": dataset.source_url,
        "identifier": identifiers,
        "keywords": record.keywords(dataset),
        "license": dataset.license_url.strip(),
        "creator": creators or [publisher],
        "publisher": publisher,
        "isAccessibleForFree": True,
        "version": str(version.number) if version is not None else "",
        "datePublished": issued.isoformat() if issued else "",
        "dateModified": dataset.updated.date().isoformat() if dataset.updated else "",
        "inLanguage": [lang for lang, title in (("en", dataset.title_en), ("zh", dataset.title_cn)) if title],
        "temporalCoverage": period.iso_interval(),
        "creditText": formatted_citation(dataset, version, language=language),
        "citation": citations,
        "includedInDataCatalog": {"@type": "DataCatalog", "name": PORTAL_NAME, "url": record.base_url() + "/"},
    }
    if dataset.extent:
        w, s, e, n = (f"{v:g}" for v in dataset.extent)
        place = dataset.acq_place_en or dataset.acq_place_cn
        doc["spatialCoverage"] = {
            "@type": "Place",
            **({"name": place} if place else {}),
            "geo": {"@type": "GeoShape", "box": f"{s} {w} {n} {e}"},
        }
    doc["distribution"] = [
        {
            "@type": "DataDownload",
            "name": f.name,
            "encodingFormat": f.media_type,
            "contentUrl": record.download_url(f),
            "contentSize": f"{f.size} B",
            "sha256": f.sha256,
        }
        for f in record.files(dataset, version)
    ]
    return {k: v for k, v in doc.items() if v not in ("", [], None)}


def to_bytes(doc: dict) -> bytes:
    """JSON-LD text (UTF-8, non-ASCII kept, indented)."""
    return json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8")


def dcat_jsonld(dataset: Dataset, version: DatasetVersion | None = None) -> bytes:
    """:func:`dcat` as JSON-LD bytes."""
    return to_bytes(dcat(dataset, version))


def schemaorg_jsonld(dataset: Dataset, version: DatasetVersion | None = None) -> bytes:
    """:func:`schema_org` (English) as JSON-LD bytes."""
    return to_bytes(schema_org(dataset, version))


_SCRIPT_ESCAPES = {ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"}


def jsonld_script(doc: dict) -> SafeString:
    """``<script type="application/ld+json">`` holding ``doc``; ``<``, ``>`` and ``&`` escaped as JSON
    unicode escapes (as Django's ``json_script``), so no text of the record can close the block. A
    data block, not a script: the page's Content-Security-Policy does not apply to it."""
    text = json.dumps(doc, ensure_ascii=False).translate(_SCRIPT_ESCAPES)
    return mark_safe(f'<script type="application/ld+json">{text}</script>')  # noqa: S308 - escaped above
