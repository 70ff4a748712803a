"""The facts of a record that every export states the same way: links, people, publisher, dates, files.

Each export family (:mod:`.citation`, :mod:`.iso`, :mod:`.linked_data`, the DataCite writer) reads the
record through these helpers, so that a citation, an ISO record and a JSON-LD block never disagree on
who published what, when, and where it is.

Links are absolute on ``settings.PORTAL_URL`` (the portal's canonical address, not the host a request
happened to use): an export is a stable description of the record.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse

from ..models import Dataset, DatasetFile, DatasetPerson, DatasetVersion, Person

PORTAL_NAME = "Land-surface hydrology data portal"
"""The portal's name (publisher of the versions it generates; ACDD ``publisher_name`` of its files)."""
PORTAL_NAME_ZH = "陆表水文数据门户"  # the site name of the Chinese pages (locale)
"""The portal's name in Chinese (publisher of the versions it generates)."""

PUBLISHERS = {
    "TPDC": ("National Tibetan Plateau Data Center", "国家青藏高原科学数据中心"),
    "IEEE DataPort": ("IEEE DataPort", "IEEE DataPort"),
}
"""Full names (English, Chinese) of the source portals named by ``Dataset.source_portal``. The TPDC
seed pages name their publisher 国家青藏高原科学数据中心 (``seeds/000_*.txt`` line 6); an unknown
source portal is cited by the name the record gives."""


def base_url() -> str:
    """The portal's canonical base URL (``settings.PORTAL_URL``), without a trailing slash."""
    return getattr(settings, "PORTAL_URL", "").rstrip("/")


def landing_url(dataset: Dataset) -> str:
    """Absolute URL of the record's page on this portal."""
    return base_url() + reverse("catalog:dataset_detail", args=[dataset.id])


def version_url(dataset: Dataset, version: DatasetVersion | None) -> str:
    """The record's page, or the version's section of it (``#version-N``) when ``version`` is given."""
    return landing_url(dataset) + (f"#version-{version.number}" if version is not None else "")


def metadata_url(dataset: Dataset, fmt: str, version: DatasetVersion | None = None) -> str:
    """Absolute URL of an export (``/datasets/<id>/metadata/<fmt>``, ``?version=N`` for a version)."""
    url = base_url() + reverse("catalog:metadata", args=[dataset.id, fmt])
    return url + (f"?version={version.number}" if version is not None else "")


def download_url(f: DatasetFile) -> str:
    """Absolute URL of a published file (the access policy of the dataset applies there)."""
    return base_url() + reverse("catalog:download", args=[f.version.dataset_id, f.version.number, f.name])


def pick(dataset: Dataset, field: str, language: str) -> str:
    """``field_cn`` or ``field_en`` for ``language`` (``"zh..."`` or other), falling back to the other."""
    cn, en = getattr(dataset, f"{field}_cn"), getattr(dataset, f"{field}_en")
    return (cn or en) if language.startswith("zh") else (en or cn)


def contributors(dataset: Dataset) -> list[Person]:
    """The record's contributors (TPDC ``ds_contributors``) in record order; none for an unsaved record."""
    if dataset._state.adding:
        return []
    return [
        r.person
        for r in DatasetPerson.objects.filter(dataset=dataset, role=DatasetPerson.Role.CONTRIBUTOR)
        .select_related("person")
        .order_by("order", "id")
    ]


def publisher(dataset: Dataset, version: DatasetVersion | None, language: str = "en") -> str:
    """Who publishes what is cited: this portal for a version it generated; else the record's source
    portal (full name, :data:`PUBLISHERS`), or this portal for a record it holds itself."""
    zh = language.startswith("zh")
    if version is None and dataset.source_portal:
        names = PUBLISHERS.get(dataset.source_portal, (dataset.source_portal, dataset.source_portal))
        return names[1] if zh else names[0]
    return PORTAL_NAME_ZH if zh else PORTAL_NAME


def issued(dataset: Dataset, version: DatasetVersion | None) -> dt.date | None:
    """Publication date: the version's, else the record's publication time, else its creation time."""
    if version is not None and version.published_at:
        return version.published_at.astimezone(dt.UTC).date()
    when = dataset.publish_time or dataset.created
    return when.astimezone(dt.UTC).date() if when else None


def files(dataset: Dataset, version: DatasetVersion | None) -> list[DatasetFile]:
    """The version's files; for the record, those of its latest version (none before the first)."""
    version = version if version is not None else (None if dataset._state.adding else dataset.latest_version())
    return list(version.files.select_related("version").order_by("name")) if version is not None else []


def keywords(dataset: Dataset) -> list[str]:
    """Tag names (topic, place, subject, class) and the category, each once."""
    tags = [] if dataset._state.adding else list(dataset.tags.order_by("kind", "name").values_list("name", flat=True))
    return list(dict.fromkeys(k.strip() for k in [*tags, dataset.category] if k and k.strip()))


def doi_url(dataset: Dataset) -> str:
    """``https://doi.org/<DOI>``, or empty when the record has no DOI."""
    doi = (dataset.doi or "").strip()
    doi = re.sub(r"^(https?://(dx\.)?doi\.org/|doi:)", "", doi, flags=re.I)
    return f"https://doi.org/{doi}" if doi else ""


def cstr_label(dataset: Dataset) -> str:
    """``CSTR:<identifier>`` (China's science and technology resource identifier), or empty."""
    cstr = re.sub(r"^CSTR:\s*", "", (dataset.cstr or "").strip(), flags=re.I)
    return f"CSTR:{cstr}" if cstr else ""


@dataclass(frozen=True)
class Period:
    """The acquisition period as dates (either may be missing)."""

    start: dt.date | None
    end: dt.date | None

    def iso_interval(self) -> str:
        """ISO 8601 interval ``start/end`` (``..`` for an open end), empty when both are missing."""
        if not (self.start or self.end):
            return ""
        return f"{self.start.isoformat() if self.start else '..'}/{self.end.isoformat() if self.end else '..'}"


def period(dataset: Dataset) -> Period:
    """The record's acquisition period (UTC dates)."""

    def day(value):
        return value.astimezone(dt.UTC).date() if value else None

    return Period(day(dataset.acq_start), day(dataset.acq_end))


def bbox_wkt(dataset: Dataset) -> str:
    """The bounding box as a WKT polygon (lon lat, EPSG:4326), empty when the record has none."""
    if not dataset.extent:
        return ""
    w, s, e, n = (f"{v:g}" for v in dataset.extent)
    return f"POLYGON(({w} {s}, {e} {s}, {e} {n}, {w} {n}, {w} {s}))"
