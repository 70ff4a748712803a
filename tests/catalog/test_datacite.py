"""DataCite 4.5 XML of the records and of a published version, validated against DataCite's XSD
(tests/xsd/datacite-kernel-4.5) and the ``datacite`` package's JSON schema."""

from __future__ import annotations

import datetime as dt

import pytest
from datacite import schema45
from lxml import etree

from portal.catalog.exports import datacite, record
from portal.catalog.html import plain_text
from portal.catalog.models import Dataset, DatasetPerson
from tests.xsd import datacite_schema

NS = {"d": "http://datacite.org/schema/kernel-4"}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def _valid(xml: bytes) -> etree._Element:
    errors = [str(e)[:600] for e in datacite_schema().iter_errors(xml.decode("utf-8"))]
    assert not errors, errors[0]
    return etree.fromstring(xml)


def _texts(root, path: str) -> list[str]:
    return [e.text for e in root.xpath(path, namespaces=NS)]


@pytest.mark.django_db
def test_every_imported_record_is_valid_datacite_and_says_what_the_record_says():
    datasets = list(Dataset.objects.order_by("id"))
    assert len(datasets) == 5  # the session imports the five real records of ../shared/catalog
    for ds in datasets:
        xml = datacite.datacite_xml(ds)
        root = _valid(xml)
        data = datacite.datacite_dict(ds)
        body = {k: v for k, v in data.items() if k != "identifier"}
        assert schema45.validate(body), [e.message for e in schema45.validator.iter_errors(body)][:3]

        # no record has a DOI: the page is the identifier, the CSTR an alternate identifier
        ident = root.find("d:identifier", NS)
        assert (ident.get("identifierType"), ident.text) == ("URL", f"http://127.0.0.1:8000/datasets/{ds.id}/")
        assert _texts(root, "d:alternateIdentifiers/d:alternateIdentifier[@alternateIdentifierType='CSTR']") == (
            [ds.cstr] if ds.cstr else []
        )
        titles = {t.get(XML_LANG): t.text for t in root.findall("d:titles/d:title", NS)}
        assert titles == {k: v for k, v in (("zh", ds.title_cn), ("en", ds.title_en)) if v}
        contributors = [
            r.person.true_name for r in ds.roles.filter(role=DatasetPerson.Role.CONTRIBUTOR).order_by("order")
        ]
        assert _texts(root, "d:creators/d:creator/d:creatorName") == (contributors or ["(:unav)"])
        abstracts = root.findall("d:descriptions/d:description[@descriptionType='Abstract']", NS)
        assert abstracts and all("<" not in a.text and a.text.strip() for a in abstracts)
        assert {a.get(XML_LANG) for a in abstracts} == {
            k for k, v in (("zh", ds.abstract_cn), ("en", ds.abstract_en)) if plain_text(v)
        }
        box = root.find("d:geoLocations/d:geoLocation/d:geoLocationBox", NS)
        assert [
            float(box.find(f"d:{edge}", NS).text)
            for edge in ("westBoundLongitude", "southBoundLatitude", "eastBoundLongitude", "northBoundLatitude")
        ] == list(ds.extent)
        assert _texts(root, "d:dates/d:date[@dateType='Collected']") == [
            f"{ds.acq_start.date().isoformat()}/{ds.acq_end.date().isoformat()}"
        ]
        assert root.find("d:resourceType", NS).get("resourceTypeGeneral") == "Dataset"
        assert root.find("d:publisher", NS).text == record.publisher(ds, None)
        subjects = _texts(root, "d:subjects/d:subject")
        assert all(t.name in subjects for t in ds.tags.all()) and ds.category in subjects
        related = {
            (r.get("relationType"), r.text) for r in root.findall("d:relatedIdentifiers/d:relatedIdentifier", NS)
        }
        if ds.source_url:
            assert ("IsIdenticalTo", ds.source_url) in related

    tws = Dataset.objects.get(id="6b23bed9-627c-4653-8157-2ddd5b323888")  # the TPDC API record: licence, sizes
    root = etree.fromstring(datacite.datacite_xml(tws))
    licence = root.find("d:rightsList/d:rights[@rightsIdentifierScheme='SPDX']", NS)
    assert (licence.get("rightsIdentifier"), licence.get("rightsURI")) == (
        "CC-BY-4.0",
        "https://creativecommons.org/licenses/by/4.0/",
    )
    assert root.find("d:rightsList/d:rights[@rightsURI='info:eu-repo/semantics/restrictedAccess']", NS) is not None
    assert _texts(root, "d:sizes/d:size") == ["49636781181 bytes", "11 files"]
    assert _texts(root, "d:formats/d:format") == ["nc", "xlsx"]
    assert root.find("d:version", NS).text == "9" and root.find("d:language", NS).text == "zh"
    assert _texts(root, "d:contributors/d:contributor[@contributorType='DataManager']/d:contributorName") == ["尹家波"]


@pytest.mark.django_db
def test_a_published_version_is_valid_datacite_linked_to_its_record_and_files(et_run):
    version, ds = et_run.version, et_run.dataset
    root = _valid(datacite.datacite_xml(ds, version))
    page = f"http://127.0.0.1:8000/datasets/{ds.id}/"
    assert root.find("d:identifier", NS).text == f"{page}#version-{version.number}"
    assert root.find("d:version", NS).text == str(version.number)
    assert root.find("d:publisher", NS).text == record.PORTAL_NAME  # the portal generated the files
    related = {(r.get("relationType"), r.text) for r in root.findall("d:relatedIdentifiers/d:relatedIdentifier", NS)}
    assert ("IsVersionOf", page) in related
    files = list(version.files.all())
    assert files and {r for r in related if r[0] == "HasPart"} == {("HasPart", record.download_url(f)) for f in files}
    assert _texts(root, "d:sizes/d:size")[0] == f"{sum(f.size for f in files)} bytes"
    assert _texts(root, "d:dates/d:date[@dateType='Issued']") == [version.published_at.date().isoformat()]
    # the record lists the version
    record_root = _valid(datacite.datacite_xml(ds))
    assert f"{page}#version-{version.number}" in _texts(
        record_root, "d:relatedIdentifiers/d:relatedIdentifier[@relationType='HasVersion']"
    )
    other = Dataset.objects.exclude(id=ds.id).first()
    with pytest.raises(ValueError, match="belongs to"):
        datacite.datacite_xml(other, version)


@pytest.mark.django_db
def test_a_doi_an_embargo_and_stray_control_characters():
    ds = Dataset.objects.get(id="f52826e1-c61c-4b79-a43c-4ece3a8eca18")
    ds.doi = "https://doi.org/10.11888/Cryos.tpdc.272000"
    ds.share_type, ds.protected_to = Dataset.ShareType.PROTECTED, dt.datetime(2031, 1, 1, tzinfo=dt.UTC)
    ds.license_url = "https://creativecommons.org/licenses/by-nc-sa/4.0/"
    ds.abstract_en = "Soil <b>freeze</b>\x01 and thaw\x0b states."
    ds.save()
    root = _valid(datacite.datacite_xml(ds))
    ident = root.find("d:identifier", NS)
    assert (ident.get("identifierType"), ident.text) == ("DOI", "10.11888/Cryos.tpdc.272000")
    assert _texts(root, "d:alternateIdentifiers/d:alternateIdentifier[@alternateIdentifierType='URL']") == [
        f"http://127.0.0.1:8000/datasets/{ds.id}/"
    ]
    assert _texts(root, "d:dates/d:date[@dateType='Available']") == ["2031-01-01"]
    assert root.find("d:rightsList/d:rights[@rightsURI='info:eu-repo/semantics/embargoedAccess']", NS) is not None
    assert (
        root.find("d:rightsList/d:rights[@rightsIdentifierScheme='SPDX']", NS).get("rightsIdentifier")
        == "CC-BY-NC-SA-4.0"
    )
    assert "Soil freeze and thaw states." in _texts(root, "d:descriptions/d:description[@descriptionType='Abstract']")

    ds.doi = "not a doi"  # not a DOI: the page stays the identifier
    assert etree.fromstring(datacite.datacite_xml(ds)).find("d:identifier", NS).get("identifierType") == "URL"
