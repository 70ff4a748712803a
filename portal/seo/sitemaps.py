"""``sitemap.xml``: the dataset list and every dataset page, on the canonical address (``PORTAL_URL``)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.contrib.sitemaps import Sitemap
from django.urls import reverse

from portal.catalog.models import Dataset
from portal.oai.services import EPOCH, with_datestamp

from .services import base_url


class _Canonical(Sitemap):
    """URLs on ``settings.PORTAL_URL``'s scheme and host (the request's when it is empty)."""

    def get_protocol(self, protocol=None):
        configured = base_url()
        return urlsplit(configured).scheme if configured else super().get_protocol(protocol)

    def get_domain(self, site=None):
        configured = base_url()
        return urlsplit(configured).netloc if configured else super().get_domain(site)


class PagesSitemap(_Canonical):
    changefreq = "daily"
    priority = 0.8

    def items(self):
        return ["catalog:dataset_list"]

    def location(self, item):
        return reverse(item)


class DatasetSitemap(_Canonical):
    """Every record's page; ``lastmod`` is the record's datestamp as OAI-PMH gives it (the later of
    its update and its last published version)."""

    changefreq = "weekly"
    priority = 1.0

    def items(self):
        return with_datestamp(Dataset.objects.all()).order_by("id")

    def location(self, item):
        return reverse("catalog:dataset_detail", args=[item.id])

    def lastmod(self, item):
        return item.stamp if item.stamp and item.stamp > EPOCH else None


SITEMAPS = {"pages": PagesSitemap, "datasets": DatasetSitemap}
