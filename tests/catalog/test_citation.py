"""How to cite a dataset: the formatted citation (citeproc-py, the portal's CSL style), RIS and BibTeX
read back by small parsers, the citation in the files, and the detail page's "How to cite" box in
headless Chromium in both languages (copy buttons, JSON-LD block, no CSP violation)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import netCDF4
import pytest
from django.conf import settings
from django.urls import reverse

from portal.catalog.exports import citation, linked_data, record
from portal.catalog.metadata import acdd_attributes
from portal.catalog.models import Dataset, DatasetFile
from products.registry import PRODUCTS

pytestmark = pytest.mark.django_db

ET = PRODUCTS["et_fusion"].dataset_id  # TPDC, three contributors, no licence, the session's published version
TWS = PRODUCTS["tws_rec"].dataset_id  # the TPDC JSON record: CC BY 4.0, a CSTR, no source portal
IEEE = "ieee-dataport-spatiotemporal-seamless-global-surface-soil-moisture"  # names nobody


# Tiny readers of the two text formats, written from their specifications (not from the writers).


def parse_ris(text: str) -> list[tuple[str, str]]:
    """RIS lines ``TAG  - value`` as (tag, value); asserts the record starts with TY and ends with ER."""
    lines = [line for line in text.splitlines() if line.strip()]
    pairs = []
    for line in lines:
        m = re.fullmatch(r"([A-Z][A-Z0-9])  - ?(.*)", line)
        assert m, f"not an RIS line: {line!r}"
        pairs.append((m.group(1), m.group(2)))
    assert pairs[0][0] == "TY" and pairs[-1] == ("ER", "")
    return pairs


def parse_bibtex(text: str) -> tuple[str, str, dict[str, str]]:
    """One BibTeX entry: (type, key, {field: value}) with braces matched and LaTeX escapes undone."""
    m = re.match(r"\s*@(\w+)\s*\{\s*([^,\s]+)\s*,", text)
    assert m, text[:80]
    kind, key, pos, fields = m.group(1).lower(), m.group(2), m.end(), {}
    while True:
        m = re.compile(r"\s*(\w+)\s*=\s*\{").match(text, pos)
        if not m:
            break
        depth, i = 1, m.end()
        while depth:
            c = text[i]
            if c == "\\":
                i += 2
                continue
            depth += {"{": 1, "}": -1}.get(c, 0)
            i += 1
        value = text[m.end() : i - 1]
        fields[m.group(1).lower()] = re.sub(r"\\([{}&%$#_])", r"\1", value)
        pos = i
        m = re.compile(r"\s*,").match(text, pos)
        if m:
            pos = m.end()
    assert re.fullmatch(r"\s*\}\s*", text[pos:]), f"unparsed tail {text[pos:]!r}"
    return kind, key, fields


def seed_records(catalog_dir: Path) -> list[Dataset]:
    """The five records the session imported from the shared catalog (other tests may add their own)."""
    ids = set()
    for path in catalog_dir.glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        ids |= {r["id"] for r in (data if isinstance(data, list) else [data])}
    records = list(Dataset.objects.filter(id__in=ids).order_by("id"))
    assert len(records) == len(ids) == 5
    return records


def contributors_of(dataset: Dataset) -> list[str]:
    """The contributors as the imported record lists them."""
    return [p["true_name"] for p in dataset.raw.get("ds_contributors") or []]


def test_the_formatted_citation_of_every_record_in_both_languages(catalog_dir):
    today = dt.date(2026, 3, 9)
    for dataset in seed_records(catalog_dir):
        en = citation.formatted_citation(dataset, language="en", accessed=today)
        zh = citation.formatted_citation(dataset, language="zh-hans", accessed=today)
        year = (dataset.publish_time or dataset.created).year
        names = contributors_of(dataset)
        if names:  # authors in record order, APA-style: "A, B, & C (Year)."
            listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + ", & " + names[-1]
            assert en.startswith(f"{listed} ({year}). {dataset.title_en} [Data set]. "), en
            assert zh.startswith(f"{listed} ({year}). {dataset.title_cn} [数据集]. "), zh
        else:  # nobody named: the publisher takes the authors' place (and is not repeated)
            assert en.startswith(f"IEEE DataPort ({year}). {dataset.title_en} [Data set]. http"), en
        assert en.endswith(f"{record.landing_url(dataset)}. Accessed 2026-03-09.")
        assert zh.endswith("访问日期 2026-03-09.")
        if dataset.source_portal == "TPDC":
            assert "National Tibetan Plateau Data Center." in en and "国家青藏高原科学数据中心." in zh
    tws = Dataset.objects.get(id=TWS)
    assert "CSTR:11738.11.NCDC.ZENODO.DB6521.2024" in citation.formatted_citation(tws)
    tws.doi = "10.5281/zenodo.1234567"  # a DOI is cited as a URL, before the CSTR, instead of the page
    cited = citation.formatted_citation(tws)
    assert "https://doi.org/10.5281/zenodo.1234567. CSTR:11738" in cited and record.landing_url(tws) not in cited


def test_a_version_is_cited_with_its_number_date_and_the_portal_as_publisher(et_run):
    version = et_run.version
    dataset = version.dataset
    item = citation.csl_item(dataset, version)
    assert item["version"] == str(version.number) and item["type"] == "dataset"
    assert item["issued"]["date-parts"][0] == list(version.published_at.astimezone(dt.UTC).date().timetuple()[:3])
    text = citation.format_item(item)
    assert (
        f"({version.published_at.year}). {dataset.title_en} (Version {version.number}) [Data set]. "
        "Land-surface hydrology data portal." in text
    )
    assert f"#version-{version.number}" in text and "Accessed" not in text  # no access date given
    assert f"(版本 {version.number}) [数据集]. 陆表水文数据门户." in citation.formatted_citation(
        dataset, version, language="zh-hans"
    )


def test_ris_and_bibtex_read_back_even_with_latex_and_ris_specials():
    dataset = Dataset(
        id="x-1",
        title_en="Soil {moisture} & ET_50% #1 ~ ^ \\ done",
        title_cn="土壤水分",
        abstract_en="<p>one\nER  - two</p>",
        category="水文",
    )
    _, key, fields = parse_bibtex(citation.bibtex(dataset, accessed=dt.date(2026, 1, 2)))
    assert re.fullmatch(r"[A-Za-z0-9_]+", key)
    assert (
        fields["title"] == "{Soil {moisture} & ET_50% #1 \\textasciitilde{} \\textasciicircum{} \\textbackslash{} done}"
    )
    assert fields["urldate"] == "2026-01-02" and fields["url"] == record.landing_url(dataset)
    pairs = parse_ris(citation.ris(dataset, accessed=dt.date(2026, 1, 2)))
    tags = dict(pairs)
    assert tags["TY"] == "DATA" and tags["TI"] == dataset.title_en and tags["TT"] == "土壤水分"
    assert tags["AB"] == "one ER - two" and tags["Y2"] == "2026/01/02" and tags["KW"] == "水文"
    assert [t for t, _ in pairs].count("ER") == 1  # an abstract cannot end the record early


def test_the_files_carry_the_formatted_citation(et_run):
    version = et_run.version
    dataset = version.dataset
    attrs = acdd_attributes(dataset, version)
    assert attrs["citation"] == citation.formatted_citation(dataset, version)
    assert f"(Version {version.number})" in attrs["citation"] and "Accessed" not in attrs["citation"]
    # the published NetCDF files were stamped with the record's citation by the session's publish
    f = DatasetFile.objects.filter(version=version, media_type="application/x-netcdf").first()
    assert f is not None
    with netCDF4.Dataset(Path(settings.DATA_ROOT) / f.path) as nc:
        assert nc.getncattr("citation") == citation.formatted_citation(dataset)
        assert nc.getncattr("citation").startswith(", ".join(contributors_of(dataset)[:-1]))


def test_the_cite_box_shows_the_records_own_citation_licence_and_exports(client):
    dataset = Dataset.objects.get(id=ET)
    dataset.ref_way_en = "<p>Wei Z. et al. (2025) Global ET. <b>TPDC</b>.</p>"
    dataset.ref_way_cn = "魏忠旺等 (2025) 全球蒸散发数据集。"
    dataset.save()
    html = client.get(reverse("catalog:dataset_detail", args=[ET])).content.decode()
    assert 'id="cite-record">Wei Z. et al. (2025) Global ET. TPDC.</p>' in html  # tags dropped, text kept
    assert "No licence stated by the source" in html
    for fmt in ("iso19139", "dcat", "schemaorg", "csl", "ris", "bibtex"):
        assert f'href="/datasets/{ET}/metadata/{fmt}"' in html
    client.cookies["django_language"] = "zh-hans"
    html = client.get(reverse("catalog:dataset_detail", args=[ET])).content.decode()
    assert 'id="cite-record">魏忠旺等 (2025) 全球蒸散发数据集。</p>' in html and "数据来源未声明许可协议" in html
    html = client.get(reverse("catalog:dataset_detail", args=[TWS])).content.decode()
    assert 'id="cite-record"' not in html and "数据来源未声明许可协议" not in html
    assert '<a href="https://creativecommons.org/licenses/by/4.0/" rel="license">' in html


@pytest.fixture
def expected(et_run) -> dict:
    """What the ET page must show, computed before Playwright starts (its greenlet must not use the ORM)."""
    dataset = et_run.version.dataset
    today = dt.datetime.now(dt.UTC).date()
    return {
        lang: {
            "citation": citation.formatted_citation(dataset, language=lang, accessed=today),
            "name": record.pick(dataset, "title", lang),
            "jsonld": linked_data.schema_org(dataset, language=lang),
        }
        for lang in ("en", "zh-hans")
    }


def test_the_cite_box_in_chromium_copies_in_both_languages(page, portal_url, expected):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=portal_url)
    for lang, heading in (("en", "How to cite"), ("zh-hans", "如何引用")):
        page.context.add_cookies([{"name": "django_language", "value": lang, "url": portal_url}])
        page.goto(f"{portal_url}/datasets/{ET}/")
        box = page.locator("#cite")
        assert box.locator("h2").inner_text() == heading
        shown = page.locator("#cite-formatted").inner_text()
        undated = r"\d{4}-\d{2}-\d{2}\.$"  # the access date (today; the day may have turned since)
        assert re.sub(undated, "", shown) == re.sub(undated, "", expected[lang]["citation"])
        assert expected[lang]["name"] in shown
        box.locator("button[data-copy=cite-formatted]").click()
        page.wait_for_selector("#cite button[data-copy=cite-formatted].copied")
        assert page.evaluate("navigator.clipboard.readText()") == shown
        box.locator("button[data-copy=cite-bibtex]").click()
        page.wait_for_selector("#cite button[data-copy=cite-bibtex].copied")
        _, _, fields = parse_bibtex(page.evaluate("navigator.clipboard.readText()"))
        assert fields["title"] == "{" + expected["en"]["name"] + "}"  # BibTeX is English first
        box.locator("button[data-copy=cite-ris]").click()
        page.wait_for_selector("#cite button[data-copy=cite-ris].copied")
        assert dict(parse_ris(page.evaluate("navigator.clipboard.readText()")))["TY"] == "DATA"
        assert page.locator("#cite .cite-status").inner_text().strip()
        blocks = page.locator('script[type="application/ld+json"]').all_text_contents()
        assert len(blocks) == 1
        data = json.loads(blocks[0])
        assert data["@context"] == "https://schema.org/" and data["@type"] == "Dataset"
        assert data["name"] == expected[lang]["name"] and data["identifier"] == expected[lang]["jsonld"]["identifier"]
        assert page.evaluate("window.cspViolations") == []
    assert page.problems == []
