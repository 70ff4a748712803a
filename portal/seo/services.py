"""What a page says about itself to search engines and link previews, and what crawlers may fetch.

Pure functions of the request's path and language and, on a dataset page, of the record: no
rendering here. Links are absolute on ``settings.PORTAL_URL`` (the canonical address), falling
back to the address the request came to when it is empty.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.encoding import iri_to_uri
from django.utils.translation import get_language, gettext, gettext_lazy

from portal.catalog.html import plain_text
from portal.catalog.models import Dataset

SITE_DESCRIPTION = gettext_lazy(
    "Land-surface hydrology datasets (evapotranspiration, soil moisture, freeze/thaw, terrestrial water storage) "
    "regenerated from real inputs and validated against independent stations."
)
DESCRIPTION_CHARS = 300
"""A page description is cut to this many characters (search engines show about 150-300)."""

DISALLOW = (
    "/accounts/",
    "/admin/",
    "/api/jobs/",
    "/jobs/",
    "/i18n/",
    # data, not pages: whole files, chart series, subsets, point/area series, observations, EDR queries, OPeNDAP
    "/datasets/*/versions/",
    "/datasets/*/series.json",
    "/datasets/*/metadata/",
    "/api/datasets/*/subset",
    "/api/datasets/*/point",
    "/api/datasets/*/area",
    "/api/observations/",
    "/api/edr/collections/*/position",
    "/api/edr/collections/*/area",
    "/api/edr/collections/*/cube",
    "/opendap/",
)
"""Paths crawlers are asked to leave alone (RFC 9309 patterns: ``*`` is any run of characters)."""


def base_url(request=None) -> str:
    """``settings.PORTAL_URL`` without a trailing slash; the request's own scheme and host when it is empty."""
    configured = (getattr(settings, "PORTAL_URL", "") or "").rstrip("/")
    if configured or request is None:
        return configured
    return request.build_absolute_uri("/").rstrip("/")


def canonical_url(request) -> str:
    """The page's canonical URL: the base URL and the request's path, without the query string."""
    path = request.path if request is not None else "/"
    return base_url(request) + iri_to_uri(path)


def page_meta(request, dataset: Dataset | None = None) -> dict[str, str]:
    """The head of a page: canonical URL, title, description and OpenGraph values.

    Parameters
    ----------
    request : HttpRequest or None
        The page's request (its path makes the canonical URL).
    dataset : Dataset, optional
        The record a dataset page shows: its title and abstract (plain text, cut to
        :data:`DESCRIPTION_CHARS`) in the active language describe the page.

    Returns
    -------
    dict
        ``canonical``, ``title``, ``description``, ``type`` (OpenGraph ``article`` for a record,
        ``website`` otherwise), ``site_name``, ``locale`` and ``locale_alternate`` (``en_US`` /
        ``zh_CN``).
    """
    site_name = gettext("Land-surface hydrology data portal")
    zh = (get_language() or "en").startswith("zh")
    meta = {
        "canonical": canonical_url(request),
        "title": site_name,
        "description": str(SITE_DESCRIPTION),
        "type": "website",
        "site_name": site_name,
        "locale": "zh_CN" if zh else "en_US",
        "locale_alternate": "en_US" if zh else "zh_CN",
    }
    if isinstance(dataset, Dataset):
        meta["title"] = dataset.title or dataset.id
        abstract = plain_text(dataset.abstract)
        if abstract:
            meta["description"] = shorten(abstract)
        meta["type"] = "article"
    return meta


def shorten(value: str, limit: int = DESCRIPTION_CHARS) -> str:
    """``value`` cut to at most ``limit`` characters, ending in "…" when cut (at a space when the
    text has one in its last third, so an English word stays whole)."""
    if len(value) <= limit:
        return value
    cut = value[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit * 2 // 3 else cut).rstrip() + "…"


def robots_txt(request=None) -> str:
    """``robots.txt``: every page allowed, :data:`DISALLOW` not, and where the sitemap is.

    Disallow lines come before ``Allow: /`` so that parsers taking the first matching rule
    (Python's ``urllib.robotparser``) agree with those taking the longest one (RFC 9309).
    """
    lines = [
        "User-agent: *",
        *(f"Disallow: {path}" for path in DISALLOW),
        "Allow: /",
        "",
        f"Sitemap: {base_url(request)}/sitemap.xml",
        "",
    ]
    return "\n".join(lines)
