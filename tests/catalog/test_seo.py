"""sitemap.xml, robots.txt and the page head (canonical URL, description, OpenGraph) on a real gunicorn."""

from __future__ import annotations

import re
import urllib.robotparser

import httpx2
import pytest
from lxml import etree, html

from portal.catalog.html import plain_text
from portal.catalog.models import Dataset

CANONICAL = "http://127.0.0.1:8000"  # settings.PORTAL_URL of the test servers (the default)
SITEMAP_NS = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}


def rfc9309_allowed(robots: str, path: str) -> bool:
    """Whether ``robots`` lets the group ``*`` fetch ``path`` under RFC 9309: the longest matching
    rule wins (``*`` any characters, ``$`` the end), an allow rule on a tie."""
    best = (-1, True)
    for kind, pattern in re.findall(r"^(Allow|Disallow):\s*(\S*)", robots, flags=re.M):
        regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\$", "$")
        if pattern and re.match(regex, path) and (len(pattern), kind == "Allow") > best:
            best = (len(pattern), kind == "Allow")
    return best[1]


@pytest.mark.django_db
def test_robots_txt_allows_pages_and_keeps_crawlers_off_accounts_admin_jobs_and_data(portal_url, et_run):
    answer = httpx2.get(f"{portal_url}/robots.txt", timeout=30)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    robots = answer.text
    parser = urllib.robotparser.RobotFileParser()
    parser.parse(robots.splitlines())
    assert parser.site_maps() == [f"{CANONICAL}/sitemap.xml"]
    ds = et_run.dataset
    f = et_run.version.files.first()
    pages = ["/", "/datasets/", f"/datasets/{ds.id}/", "/datasets/?q=soil", "/oai/?verb=Identify", "/api/docs/"]
    private = [
        "/accounts/login/",
        "/accounts/profile/",
        "/admin/",
        "/api/jobs/",
        "/opendap/x/v1/y.nc.dods",
        "/api/observations/?network=AmeriFlux",
        "/i18n/setlang/",
    ]
    data = [
        f"/datasets/{ds.id}/versions/{et_run.version.number}/files/{f.name}",
        f"/datasets/{ds.id}/series.json",
        f"/api/datasets/{ds.id}/subset/",
        f"/api/datasets/{ds.id}/point/",
        f"/api/edr/collections/{ds.id}/cube",
    ]
    for path in pages:
        assert parser.can_fetch("*", CANONICAL + path) and rfc9309_allowed(robots, path), path
    for path in private:  # plain prefixes: Python's parser and RFC 9309 agree
        assert not parser.can_fetch("*", CANONICAL + path) and not rfc9309_allowed(robots, path), path
    for path in data:  # wildcard rules (RFC 9309)
        assert not rfc9309_allowed(robots, path), path


@pytest.mark.django_db
def test_sitemap_lists_every_dataset_page_with_its_last_change(portal_url, et_run):
    answer = httpx2.get(f"{portal_url}/sitemap.xml", timeout=30)
    assert answer.status_code == 200 and "xml" in answer.headers["content-type"]
    root = etree.fromstring(answer.content)
    entries = {
        u.findtext("s:loc", namespaces=SITEMAP_NS): u.findtext("s:lastmod", namespaces=SITEMAP_NS)
        for u in root.iterfind("s:url", SITEMAP_NS)
    }
    datasets = list(Dataset.objects.all())
    assert len(datasets) == 5
    assert set(entries) == {f"{CANONICAL}/datasets/"} | {f"{CANONICAL}/datasets/{d.id}/" for d in datasets}
    for ds in datasets:  # lastmod: the later of the record's update and its last published version
        times = [ds.updated or ds.created, *(v.published_at for v in ds.versions.all())]
        assert entries[f"{CANONICAL}/datasets/{ds.id}/"][:10] == max(t for t in times if t).date().isoformat()
    assert entries[f"{CANONICAL}/datasets/{et_run.dataset_id}/"][:10] == et_run.version.published_at.date().isoformat()
    with httpx2.Client(timeout=60) as http:  # every listed page is there
        for loc in entries:
            assert http.get(portal_url + loc.removeprefix(CANONICAL)).status_code == 200, loc


def _head(portal_url: str, path: str, language: str) -> dict[str, str]:
    answer = httpx2.get(portal_url + path, headers={"Accept-Language": language}, timeout=60)
    assert answer.status_code == 200
    doc = html.fromstring(answer.content)
    head = {
        "canonical": doc.xpath("string(//head/link[@rel='canonical']/@href)"),
        "description": doc.xpath("string(//head/meta[@name='description']/@content)"),
        "title": doc.xpath("string(//head/title)").strip(),
    }
    for meta in doc.xpath("//head/meta[starts-with(@property, 'og:')]"):
        head[meta.get("property")] = meta.get("content")
    assert len(doc.xpath("//head/link[@rel='canonical']")) == 1
    return head


@pytest.mark.django_db
def test_list_and_detail_pages_carry_canonical_description_and_opengraph_in_both_languages(portal_url):
    site = {"en": "Land-surface hydrology data portal", "zh-hans": "陆表水文数据门户"}
    for language, zh in (("en", False), ("zh-hans", True)):
        head = _head(portal_url, "/datasets/?q=soil&category=", language)
        assert head["canonical"] == head["og:url"] == f"{CANONICAL}/datasets/"  # no query string
        assert head["og:type"] == "website" and head["og:site_name"] == head["og:title"] == site[language]
        assert head["og:locale"] == ("zh_CN" if zh else "en_US")
        assert head["description"] == head["og:description"] and len(head["description"]) > 30
        assert bool(re.search(r"[\u4e00-\u9fff]", head["description"])) == zh  # the active language's

        for ds in Dataset.objects.all():
            head = _head(portal_url, f"/datasets/{ds.id}/", language)
            title = (ds.title_cn or ds.title_en) if zh else (ds.title_en or ds.title_cn)
            abstract = plain_text((ds.abstract_cn or ds.abstract_en) if zh else (ds.abstract_en or ds.abstract_cn))
            assert head["canonical"] == head["og:url"] == f"{CANONICAL}/datasets/{ds.id}/"
            assert head["og:title"] == title and head["og:type"] == "article"
            assert head["description"] == head["og:description"]
            assert 0 < len(head["description"]) <= 300 and abstract.startswith(head["description"].rstrip("…"))

    assert _head(portal_url, "/", "en")["canonical"] == f"{CANONICAL}/"
