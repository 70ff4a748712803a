"""Metadata exports over HTTP on a real server (gunicorn, ``portal_url``), for the five real records.

``/datasets/<id>/metadata/<format>[?version=N]``: each document is read back with a reader of its own
kind and checked against the record in the database. ISO 19139: no installed package ships the ISO
19139 XML schemas (pygeometa and OWSLib do not), so the document is parsed with lxml and the elements
ISO 19115 makes mandatory for a dataset (contact, date stamp, citation title and date, abstract,
language, topic category) and the ones the portal fills (bilingual title, box, authors) are checked.
JSON-LD is checked as JSON (no RDF library is installed): the context, every compact IRI's prefix,
and the required properties.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
import requests
from lxml import etree

from portal.catalog.exports import FORMATS, citation, record
from portal.catalog.models import Dataset
from products.registry import PRODUCTS
from tests.catalog.test_citation import contributors_of, parse_bibtex, parse_ris, seed_records

pytestmark = pytest.mark.django_db

ET = PRODUCTS["et_fusion"].dataset_id
MEDIA_TYPES = {  # as issue 14 asks, not read from the registry
    "datacite": "application/xml",
    "iso19139": "application/xml",
    "dcat": "application/ld+json",
    "schemaorg": "application/ld+json",
    "csl": "application/vnd.citationstyles.csl+json",
    "ris": "application/x-research-info-systems",
    "bibtex": "application/x-bibtex",
}
NS = {
    "gmd": "http://www.isotc211.org/2005/gmd",
    "gco": "http://www.isotc211.org/2005/gco",
    "gml": "http://www.opengis.net/gml",
}
IDENT = "gmd:identificationInfo/gmd:MD_DataIdentification"


def facts(dataset: Dataset) -> dict:
    """What the exports must say about ``dataset``, read from the database (not from the exports)."""
    return {
        "id": dataset.id,
        "title_en": dataset.title_en,
        "title_cn": dataset.title_cn,
        "extent": dataset.extent,
        "start": dataset.acq_start.date() if dataset.acq_start else None,
        "end": dataset.acq_end.date() if dataset.acq_end else None,
        "people": contributors_of(dataset),
        "licence": dataset.license_url,
        "landing": record.landing_url(dataset),
        "share_type": dataset.share_type,
        "year": (dataset.publish_time or dataset.created).year,
        "cstr": dataset.cstr,
    }


def get(portal_url: str, dataset_id: str, fmt: str, **params) -> requests.Response:
    return requests.get(f"{portal_url}/datasets/{dataset_id}/metadata/{fmt}", params=params, timeout=60)


def one(root, path: str):
    found = root.xpath(path, namespaces=NS)
    assert found, f"missing {path}"
    return found[0]


def wkt_box(wkt: str) -> tuple[float, float, float, float]:
    assert wkt.startswith("POLYGON((") and wkt.endswith("))"), wkt
    points = [tuple(map(float, p.split())) for p in wkt[9:-2].split(",")]
    assert points[0] == points[-1] and len(points) == 5
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    return min(lons), min(lats), max(lons), max(lats)


def prefixes_declared(node, context: dict) -> None:
    """Every compact IRI (``prefix:name``) used as a key or an ``@type``/``@id`` value has its prefix in the context."""
    if isinstance(node, list):
        for item in node:
            prefixes_declared(item, context)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "@context":
                continue
            for name in [key] + ([value] if key in ("@type", "@id") and isinstance(value, str) else []):
                if ":" in name and not name.startswith(("@", "http")):
                    assert name.split(":")[0] in context, f"undeclared prefix in {name}"
            prefixes_declared(value, context)


def check_iso(body: bytes, f: dict) -> None:
    root = etree.fromstring(body)
    assert root.tag == f"{{{NS['gmd']}}}MD_Metadata"
    assert one(root, "gmd:fileIdentifier/gco:CharacterString").text == f["id"]
    assert one(root, "gmd:language/gmd:LanguageCode").get("codeListValue") == "eng"
    assert one(root, "gmd:contact/gmd:CI_ResponsibleParty/gmd:organisationName/gco:CharacterString").text
    assert re.match(r"\d{4}-\d{2}-\d{2}", one(root, "gmd:dateStamp/*").text)
    cit = f"{IDENT}/gmd:citation/gmd:CI_Citation"
    assert one(root, f"{cit}/gmd:title/gco:CharacterString").text == f["title_en"]
    zh = one(root, f"{cit}/gmd:title/gmd:PT_FreeText/gmd:textGroup/gmd:LocalisedCharacterString")
    assert zh.text == f["title_cn"] and zh.get("locale") == "#" + one(root, "gmd:locale/gmd:PT_Locale").get("id")
    assert root.xpath(f"{cit}/gmd:date/gmd:CI_Date/gmd:dateType/gmd:CI_DateTypeCode/@codeListValue", namespaces=NS)[
        0
    ] in ("creation", "publication", "revision")
    authors = root.xpath(
        f"{cit}/gmd:citedResponsibleParty/gmd:CI_ResponsibleParty[gmd:role/gmd:CI_RoleCode"
        "/@codeListValue='author']/gmd:individualName/gco:CharacterString/text()",
        namespaces=NS,
    )
    assert authors == f["people"]
    assert f["title_en"] in one(root, f"{cit}/gmd:otherCitationDetails/gco:CharacterString").text
    assert len(one(root, f"{IDENT}/gmd:abstract/gco:CharacterString").text) > 100
    assert one(root, f"{IDENT}/gmd:language/gmd:LanguageCode").text == "eng"
    assert one(root, f"{IDENT}/gmd:topicCategory/gmd:MD_TopicCategoryCode").text == "inlandWaters"
    box = f"{IDENT}/gmd:extent/gmd:EX_Extent/gmd:geographicElement/gmd:EX_GeographicBoundingBox"
    edges = [
        float(one(root, f"{box}/gmd:{edge}/gco:Decimal").text)
        for edge in ("westBoundLongitude", "southBoundLatitude", "eastBoundLongitude", "northBoundLatitude")
    ]
    assert tuple(edges) == tuple(f["extent"])
    period = f"{IDENT}/gmd:extent/gmd:EX_Extent/gmd:temporalElement/gmd:EX_TemporalExtent/gmd:extent/gml:TimePeriod"
    assert one(root, f"{period}/gml:beginPosition").text == f["start"].isoformat()
    constraints = one(
        root, f"{IDENT}/gmd:resourceConstraints/gmd:MD_LegalConstraints/gmd:useLimitation/gco:CharacterString"
    ).text
    assert constraints == (f["licence"] or "No licence stated by the source")
    assert f["landing"] in root.xpath("gmd:distributionInfo//gmd:linkage/gmd:URL/text()", namespaces=NS)


def check_dcat(body: bytes, f: dict) -> dict:
    doc = json.loads(body)
    context = doc["@context"]
    assert context["dcat"] == "http://www.w3.org/ns/dcat#" and context["dct"] == "http://purl.org/dc/terms/"
    prefixes_declared(doc, context)
    assert doc["@type"] == "dcat:Dataset" and doc["@id"].startswith(f["landing"])
    assert {t["@language"]: t["@value"] for t in doc["dct:title"]} == {"en": f["title_en"], "zh": f["title_cn"]}
    assert {d["@language"] for d in doc["dct:description"]} == {"en", "zh"}
    assert f["id"] in doc["dct:identifier"] and doc["dcat:keyword"]
    assert wkt_box(doc["dct:spatial"]["locn:geometry"]["@value"]) == tuple(f["extent"])
    assert doc["dct:spatial"]["dcat:bbox"]["@type"] == "gsp:wktLiteral"
    assert doc["dct:temporal"]["dcat:startDate"] == {"@value": f["start"].isoformat(), "@type": "xsd:date"}
    assert doc["dct:temporal"]["dcat:endDate"]["@value"] == f["end"].isoformat()
    if f["licence"]:
        assert doc["dct:license"] == {"@id": f["licence"]}
    else:
        assert "dct:license" not in doc and doc["dct:rights"] == "No licence stated by the source"
    assert [c["foaf:name"] for c in doc.get("dct:creator", [])] == f["people"]
    return doc


def check_schemaorg(body: bytes, f: dict) -> dict:
    doc = json.loads(body)
    assert doc["@context"] == "https://schema.org/" and doc["@type"] == "Dataset"
    assert doc["name"] == f["title_en"] and doc["alternateName"] == f["title_cn"]
    assert 50 <= len(doc["description"]) <= 5000 and doc["url"].startswith(f["landing"])
    assert f["id"] in doc["identifier"] and doc["keywords"] and doc["isAccessibleForFree"] is True
    if f["cstr"]:
        assert {"@type": "PropertyValue", "propertyID": "CSTR", "value": f["cstr"]} in doc["identifier"]
    assert doc.get("license") == (f["licence"] or None)
    creators = [c["name"] for c in doc["creator"]]
    assert creators == (f["people"] or [doc["publisher"]["name"]])
    w, s, e, n = f["extent"]
    assert doc["spatialCoverage"]["geo"] == {"@type": "GeoShape", "box": f"{s:g} {w:g} {n:g} {e:g}"}
    assert doc["temporalCoverage"] == f"{f['start'].isoformat()}/{f['end'].isoformat()}"
    assert set(doc["inLanguage"]) == {"en", "zh"} and f["title_en"] in doc["creditText"]
    return doc


def check_csl(body: bytes, f: dict) -> dict:
    items = json.loads(body)
    assert isinstance(items, list) and len(items) == 1
    item = items[0]
    assert item["type"] == "dataset" and item["id"].startswith(f["id"]) and item["title"] == f["title_en"]
    assert [a["literal"] for a in item.get("author", [])] == f["people"]
    assert item["URL"].startswith(f["landing"]) and item["accessed"]["date-parts"][0][0] >= 2025
    assert f["title_en"] in citation.format_item(item)  # citeproc-py renders what it reads back
    return item


def check_ris(body: bytes, f: dict) -> dict:
    assert b"\r\n" in body
    pairs = parse_ris(body.decode("utf-8"))
    tags = dict(pairs)
    assert tags["TY"] == "DATA" and tags["TI"] == f["title_en"] and tags["UR"].startswith(f["landing"])
    assert [v for t, v in pairs if t == "AU"] == f["people"]
    return tags


def check_bibtex(body: bytes, f: dict) -> dict:
    kind, key, fields = parse_bibtex(body.decode("utf-8"))
    assert kind == "misc" and re.fullmatch(r"[A-Za-z0-9_]+", key)
    assert fields["title"] == "{" + f["title_en"] + "}" and fields["url"].startswith(f["landing"])
    assert fields.get("author", "") == " and ".join("{" + p + "}" for p in f["people"])
    return fields


def check_datacite(body: bytes, f: dict) -> None:
    root = etree.fromstring(body)
    assert root.tag.startswith("{http://datacite.org/schema/kernel-4}") and root.tag.endswith("}resource")
    assert f["title_en"] in root.itertext()


CHECKS = {
    "iso19139": check_iso,
    "dcat": check_dcat,
    "schemaorg": check_schemaorg,
    "csl": check_csl,
    "ris": check_ris,
    "bibtex": check_bibtex,
    "datacite": check_datacite,
}


def test_every_export_of_every_record_is_public_typed_and_reads_back(portal_url, catalog_dir):
    assert {"iso19139", "dcat", "schemaorg", "csl", "ris", "bibtex"} <= set(FORMATS) <= set(MEDIA_TYPES)
    records = [facts(d) for d in seed_records(catalog_dir)]
    assert any(r["share_type"] == "login-access" for r in records)
    for f in records:
        for fmt in FORMATS:
            response = get(portal_url, f["id"], fmt)  # anonymous: metadata is public, whatever the access rule
            assert response.status_code == 200, (f["id"], fmt, response.text[:300])
            assert response.headers["Content-Type"] == f"{MEDIA_TYPES[fmt]}; charset=utf-8"
            name = re.fullmatch(r'attachment; filename="([A-Za-z0-9._-]+)"', response.headers["Content-Disposition"])
            assert name and name.group(1).startswith(re.sub(r"[^A-Za-z0-9._-]+", "_", f["id"])), response.headers
            assert name.group(1).endswith(
                {"ris": ".ris", "bibtex": ".bib", "csl": ".json"}.get(
                    fmt, ".jsonld" if "json" in MEDIA_TYPES[fmt] else ".xml"
                )
            )
            CHECKS[fmt](response.content, f)


def test_a_version_export_states_its_number_date_and_files(portal_url, et_run):
    version = et_run.version
    f = facts(version.dataset)
    n, published = version.number, version.published_at.astimezone(dt.UTC).date()
    files = {record.download_url(x): (x.size, x.sha256) for x in version.files.all()}
    assert files
    created = version.dataset.created.date()

    doc = check_dcat(get(portal_url, ET, "dcat", version=n).content, f)
    assert doc["dcat:version"] == str(n) and doc["@id"] == f"{f['landing']}#version-{n}"
    assert doc["dct:issued"]["@value"] == published.isoformat()
    assert {
        d["dcat:downloadURL"]["@id"]: (
            int(d["dcat:byteSize"]["@value"]),
            d["spdx:checksum"]["spdx:checksumValue"]["@value"],
        )
        for d in doc["dcat:distribution"]
    } == files
    assert {d["spdx:checksum"]["spdx:algorithm"]["@id"] for d in doc["dcat:distribution"]} == {
        "spdx:checksumAlgorithm_sha256"
    }
    whole = check_dcat(get(portal_url, ET, "dcat").content, f)
    assert "dcat:version" not in whole and {"@id": f"{f['landing']}#version-{n}"} in whole["dcat:hasVersion"]
    assert whole["dct:issued"]["@value"] == created.isoformat()

    doc = check_schemaorg(get(portal_url, ET, "schemaorg", version=n).content, f)
    assert doc["version"] == str(n) and doc["datePublished"] == published.isoformat()
    assert {d["contentUrl"] for d in doc["distribution"]} == set(files)
    assert all(d["@type"] == "DataDownload" and d["encodingFormat"] for d in doc["distribution"])
    assert "version" not in check_schemaorg(get(portal_url, ET, "schemaorg").content, f)

    item = check_csl(get(portal_url, ET, "csl", version=n).content, f)
    assert item["version"] == str(n) and item["issued"]["date-parts"][0] == [
        published.year,
        published.month,
        published.day,
    ]
    assert "version" not in check_csl(get(portal_url, ET, "csl").content, f)
    tags = check_ris(get(portal_url, ET, "ris", version=n).content, f)
    assert tags["ET"] == str(n) and tags["DA"] == published.strftime("%Y/%m/%d")
    assert "ET" not in check_ris(get(portal_url, ET, "ris").content, f)
    response = get(portal_url, ET, "bibtex", version=n)
    assert check_bibtex(response.content, f)["version"] == str(n)
    assert f'-v{n}.bib"' in response.headers["Content-Disposition"]

    root = etree.fromstring(get(portal_url, ET, "iso19139", version=n).content)
    assert one(root, "gmd:fileIdentifier/gco:CharacterString").text == f"{ET}-v{n}"
    assert one(root, f"{IDENT}/gmd:citation/gmd:CI_Citation/gmd:edition/gco:CharacterString").text == f"v{n}"
    assert set(files) <= set(root.xpath("gmd:distributionInfo//gmd:linkage/gmd:URL/text()", namespaces=NS))
    # the links lead to the files (HEAD: nothing is downloaded or logged)
    url, (size, _) = next(iter(files.items()))
    head = requests.head(url.replace(record.base_url(), portal_url), timeout=30)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == size


def test_unknown_formats_versions_and_records_are_named_in_4xx(portal_url, et_run, client):
    n = et_run.version.number
    response = get(portal_url, ET, "marcxml")
    assert response.status_code == 404 and "'marcxml'" in response.json()["error"]
    assert response.json()["formats"] == list(FORMATS)
    response = get(portal_url, ET, "dcat", version="latest")
    assert response.status_code == 400 and "parameter 'version'" in response.json()["error"]
    assert "'latest'" in response.json()["error"]
    response = get(portal_url, ET, "dcat", version=n + 100)
    assert response.status_code == 404 and f"no version {n + 100}" in response.json()["error"]
    assert n in response.json()["versions"]
    response = get(portal_url, "no-such-record", "ris")
    assert response.status_code == 404 and "'no-such-record'" in response.json()["error"]
    assert client.post(f"/datasets/{ET}/metadata/ris").status_code == 405  # (CSRF answers a browser's POST first)


def test_the_api_and_the_detail_page_link_every_export(portal_url):
    detail = requests.get(f"{portal_url}/api/datasets/{ET}/", timeout=30).json()
    assert set(detail["metadata"]) == set(FORMATS)
    for fmt, url in detail["metadata"].items():
        assert url == f"{portal_url}/datasets/{ET}/metadata/{fmt}"
    assert requests.get(detail["metadata"]["ris"], timeout=30).status_code == 200
    page = requests.get(f"{portal_url}/datasets/{ET}/", timeout=30).text
    for fmt in FORMATS:
        assert f'href="/datasets/{ET}/metadata/{fmt}"' in page
