"""OAI-PMH 2.0 at /oai/ harvested by a real harvester (oaipmh-scythe) from a real gunicorn; every
answer validated against OAI-PMH.xsd with the oai_dc, oai_datacite 1.1 and DataCite 4.5 schemas."""

from __future__ import annotations

import datetime as dt
import math

import httpx2
import pytest
from lxml import etree
from oaipmh_scythe import Scythe, exceptions
from oaipmh_scythe.config import HTTPConfig
from oaipmh_scythe.iterator import OAIResponseIterator

from portal.catalog.exports.record import landing_url
from portal.catalog.models import Dataset
from tests.xsd import oai_schema

from .conftest import PAGE_SIZE, REPOSITORY

OAI = "{http://www.openarchives.org/OAI/2.0/}"
NS = {
    "o": "http://www.openarchives.org/OAI/2.0/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "od": "http://schema.datacite.org/oai/oai-1.1/",
    "d": "http://datacite.org/schema/kernel-4",
}


def valid(text: str) -> etree._Element:
    errors = [str(e)[:600] for e in oai_schema().iter_errors(text)]
    assert not errors, errors[0]
    return etree.fromstring(text.encode("utf-8"))


def expected_datestamps() -> dict[str, dt.date]:
    """Each record's datestamp as the protocol answer must give it: the later of its update (else
    creation) and its last published version, a UTC day."""
    out = {}
    for ds in Dataset.objects.prefetch_related("versions"):
        times = [ds.updated or ds.created, *(v.published_at for v in ds.versions.all())]
        out[f"oai:{REPOSITORY}:{ds.id}"] = max(t for t in times if t).astimezone(dt.UTC).date()
    return out


@pytest.mark.django_db
def test_identify_metadata_formats_and_sets(oai_url):
    stamps = expected_datestamps()
    with Scythe(oai_url) as scythe:
        valid(scythe.harvest({"verb": "Identify"}).raw)
        identify = scythe.identify()
        assert (identify.repositoryName, identify.baseURL, identify.protocolVersion) == (
            "Land-surface hydrology data portal",
            oai_url,
            "2.0",
        )
        assert (identify.granularity, identify.deletedRecord, identify.adminEmail) == (
            "YYYY-MM-DD",
            "no",
            "data@hydro.example.org",
        )
        assert identify.earliestDatestamp == min(stamps.values()).isoformat()

        valid(scythe.harvest({"verb": "ListMetadataFormats"}).raw)
        formats = {f.metadataPrefix: (f.metadataNamespace, f.schema) for f in scythe.list_metadata_formats()}
        assert formats == {
            "oai_dc": ("http://www.openarchives.org/OAI/2.0/oai_dc/", "http://www.openarchives.org/OAI/2.0/oai_dc.xsd"),
            "oai_datacite": (
                "http://schema.datacite.org/oai/oai-1.1/",
                "http://schema.datacite.org/oai/oai-1.1/oai.xsd",
            ),
        }
        some = next(iter(stamps))
        assert {f.metadataPrefix for f in scythe.list_metadata_formats(identifier=some)} == set(formats)

        valid(scythe.harvest({"verb": "ListSets"}).raw)
        assert {s.setSpec: s.setName for s in scythe.list_sets()} == {
            "hydrology": "Hydrology / 水文",
            "cryosphere": "Cryosphere / 冰冻圈",
        }
        in_set = [h.identifier for h in scythe.list_identifiers(metadata_prefix="oai_dc", set_="cryosphere")]
        assert in_set == [f"oai:{REPOSITORY}:f52826e1-c61c-4b79-a43c-4ece3a8eca18"]


@pytest.mark.django_db
@pytest.mark.parametrize("prefix", ["oai_dc", "oai_datacite"])
def test_list_records_in_pages_with_resumption_tokens(oai_url, prefix):
    stamps = expected_datestamps()
    pages_needed = math.ceil(len(stamps) / PAGE_SIZE)
    assert pages_needed >= 3
    with Scythe(oai_url, iterator=OAIResponseIterator) as scythe:
        pages = [valid(page.raw) for page in scythe.list_records(metadata_prefix=prefix)]
    assert len(pages) == pages_needed
    tokens = [page.find(f".//{OAI}resumptionToken") for page in pages]
    assert [(t.get("completeListSize"), t.get("cursor")) for t in tokens] == [
        (str(len(stamps)), str(i * PAGE_SIZE)) for i in range(pages_needed)
    ]
    assert [bool(t.text) for t in tokens] == [True] * (pages_needed - 1) + [False]  # the last token is empty
    headers = {
        h.findtext(f"{OAI}identifier"): dt.date.fromisoformat(h.findtext(f"{OAI}datestamp"))
        for page in pages
        for h in page.iterfind(f".//{OAI}record/{OAI}header")
    }
    assert headers == stamps  # every record once, with its datestamp

    with Scythe(oai_url) as scythe:  # the harvester's records, followed across the pages
        records = {r.header.identifier: r for r in scythe.list_records(metadata_prefix=prefix)}
    assert set(records) == set(stamps)
    for identifier, rec in records.items():
        ds = Dataset.objects.get(id=identifier.rsplit(":", 1)[1])
        if prefix == "oai_dc":
            assert set(rec.metadata["title"]) == {t for t in (ds.title_cn, ds.title_en) if t}
            assert landing_url(ds) in rec.metadata["identifier"] and rec.metadata["type"] == ["Dataset"]
        else:
            resource = rec.xml.find(".//d:resource", NS)
            assert resource.getparent().tag == "{http://schema.datacite.org/oai/oai-1.1/}payload"
            assert resource.findtext("d:identifier", namespaces=NS) == landing_url(ds)
            assert rec.xml.findtext(".//od:schemaVersion", namespaces=NS) == "4.5"


@pytest.mark.django_db
def test_get_record_and_from_until_at_day_granularity(oai_url, et_run):
    stamps = expected_datestamps()
    ident = f"oai:{REPOSITORY}:{et_run.dataset_id}"
    # the ET record's datestamp is its published version's day (later than the record's update)
    assert stamps[ident] == et_run.version.published_at.astimezone(dt.UTC).date()
    with Scythe(oai_url) as scythe:
        valid(scythe.harvest({"verb": "GetRecord", "identifier": ident, "metadataPrefix": "oai_datacite"}).raw)
        rec = scythe.get_record(identifier=ident, metadata_prefix="oai_datacite")
        assert rec.header.identifier == ident and rec.header.datestamp == stamps[ident].isoformat()
        versions = rec.xml.xpath(".//d:relatedIdentifier[@relationType='HasVersion']/text()", namespaces=NS)
        assert versions == [f"{landing_url(et_run.dataset)}#version-{et_run.version.number}"]

        days = sorted(set(stamps.values()))
        middle = days[len(days) // 2]
        for args, keep in (
            ({"from_": middle.isoformat()}, lambda d: d >= middle),
            ({"until": middle.isoformat()}, lambda d: d <= middle),
            ({"from_": middle.isoformat(), "until": middle.isoformat()}, lambda d: d == middle),
        ):
            got = {h.identifier: h.datestamp for h in scythe.list_identifiers(metadata_prefix="oai_dc", **args)}
            assert got == {i: d.isoformat() for i, d in stamps.items() if keep(d)}, args
        if len(days) > 1:  # the filters above split the set (all five records share a day once this worker
            # has published every product that day: the product tests commit their versions)
            assert 0 < len([d for d in stamps.values() if d >= middle]) < len(stamps)
        with pytest.raises(exceptions.NoRecordsMatch):  # until is applied, not ignored
            list(
                scythe.list_identifiers(metadata_prefix="oai_dc", until=(min(days) - dt.timedelta(days=1)).isoformat())
            )
        with pytest.raises(exceptions.NoRecordsMatch):
            list(
                scythe.list_identifiers(metadata_prefix="oai_dc", from_=(max(days) + dt.timedelta(days=1)).isoformat())
            )
        with pytest.raises(exceptions.BadArgument):  # seconds: finer than the repository's granularity
            list(scythe.list_identifiers(metadata_prefix="oai_dc", from_=f"{middle.isoformat()}T00:00:00Z"))
        with pytest.raises(exceptions.BadArgument):
            list(scythe.list_identifiers(metadata_prefix="oai_dc", from_="2024-02-01", until="2024-01-01"))
        with pytest.raises(exceptions.BadArgument):
            list(scythe.list_identifiers(metadata_prefix="oai_dc", from_="2024-02-30"))

    with Scythe(oai_url, http_config=HTTPConfig(http_method="POST")) as scythe:  # the protocol allows POST
        assert scythe.get_record(identifier=ident, metadata_prefix="oai_dc").header.identifier == ident


@pytest.mark.django_db
def test_every_error_is_the_protocols_error_element_with_http_200(oai_url):
    some = f"oai:{REPOSITORY}:f52826e1-c61c-4b79-a43c-4ece3a8eca18"
    cases = [
        ({"verb": "Harvest"}, exceptions.BadVerb),
        ({}, exceptions.BadVerb),
        ({"verb": "ListRecords"}, exceptions.BadArgument),  # metadataPrefix missing
        ({"verb": "GetRecord", "identifier": some}, exceptions.BadArgument),
        ({"verb": "Identify", "metadataPrefix": "oai_dc"}, exceptions.BadArgument),  # an argument Identify has not
        ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "resumptionToken": "x"}, exceptions.BadArgument),
        ({"verb": "ListRecords", "metadataPrefix": "marc21"}, exceptions.CannotDisseminateFormat),
        ({"verb": "GetRecord", "identifier": some, "metadataPrefix": "marc21"}, exceptions.CannotDisseminateFormat),
        ({"verb": "ListRecords", "resumptionToken": "bm90IGEgdG9rZW4"}, exceptions.BadResumptionToken),
        ({"verb": "ListIdentifiers", "resumptionToken": "!!"}, exceptions.BadResumptionToken),
        ({"verb": "ListSets", "resumptionToken": "abc"}, exceptions.BadResumptionToken),
        (
            {"verb": "GetRecord", "identifier": f"oai:{REPOSITORY}:no-such-record", "metadataPrefix": "oai_dc"},
            exceptions.IdDoesNotExist,
        ),
        (
            {
                "verb": "GetRecord",
                "identifier": "oai:other.example.org:f52826e1-c61c-4b79-a43c-4ece3a8eca18",
                "metadataPrefix": "oai_dc",
            },
            exceptions.IdDoesNotExist,
        ),
        ({"verb": "ListMetadataFormats", "identifier": "not-an-oai-id"}, exceptions.IdDoesNotExist),
        ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "set": "no-such-set"}, exceptions.NoRecordsMatch),
    ]
    with Scythe(oai_url) as scythe:
        for query, error in cases:
            with pytest.raises(error):
                scythe.harvest(query)
    # a ListIdentifiers token is no ListRecords token
    with Scythe(oai_url, iterator=OAIResponseIterator) as scythe:
        first = next(iter(scythe.list_identifiers(metadata_prefix="oai_dc")))
        token = first.xml.findtext(f".//{OAI}resumptionToken")
        with pytest.raises(exceptions.BadResumptionToken):
            scythe.harvest({"verb": "ListRecords", "resumptionToken": token})

    # raw HTTP: repeated arguments, status 200, schema-valid error documents, no echoed arguments
    with httpx2.Client(timeout=30) as http:
        for query, code in (
            (b"verb=Identify&verb=Identify", "badVerb"),
            (b"verb=ListRecords&metadataPrefix=oai_dc&metadataPrefix=oai_dc", "badArgument"),
            (b"verb=ListIdentifiers&metadataPrefix=oai_dc&from=yesterday", "badArgument"),
            (b"verb=GetRecord&metadataPrefix=oai_dc&identifier=oai%3Ax%3Ay%01", "badArgument"),
            (b"verb=GetRecord&metadataPrefix=oai_dc&identifier=oai%3Ax%3Ay", "idDoesNotExist"),
        ):
            answer = http.get(f"{oai_url}?{query.decode()}")
            assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/xml")
            root = valid(answer.text)
            assert [e.get("code") for e in root.iterfind(f"{OAI}error")] == [code], query
            request = root.find(f"{OAI}request")
            assert request.text == oai_url
            if code in ("badVerb", "badArgument"):
                assert dict(request.attrib) == {}, query
            else:
                assert request.get("verb") == "GetRecord"
        assert http.put(oai_url).status_code == 405
