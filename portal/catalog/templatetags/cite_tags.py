"""Template tags of the detail page's "How to cite" box, export links and schema.org JSON-LD block.

The detail view gives the template the record; these tags ask :mod:`portal.catalog.exports` for
what is shown of it, in the active language (the citation is formatted in that language's terms,
accessed today).
"""

from __future__ import annotations

import datetime as dt

from django import template
from django.urls import reverse
from django.utils.translation import get_language

from ..exports import FORMATS, citation, linked_data, record
from ..html import plain_text
from ..models import Dataset, DatasetVersion

register = template.Library()

FORMAT_LABELS = {
    "datacite": "DataCite XML",
    "iso19139": "ISO 19139 XML",
    "dcat": "DCAT (JSON-LD)",
    "schemaorg": "schema.org (JSON-LD)",
    "csl": "CSL-JSON",
    "ris": "RIS",
    "bibtex": "BibTeX",
}
"""Link texts of the exports (names of standards: not translated)."""


@register.simple_tag
def metadata_links(dataset: Dataset, version: DatasetVersion | None = None) -> list[dict]:
    """The exports of ``dataset`` (or ``version``): ``[{"name", "label", "url", "media_type"}]``, in
    :data:`~portal.catalog.exports.FORMATS` order; URLs relative to the site."""
    query = f"?version={version.number}" if version is not None else ""
    return [
        {
            "name": name,
            "label": FORMAT_LABELS.get(name, name),
            "media_type": media_type,
            "url": reverse("catalog:metadata", args=[dataset.id, name]) + query,
        }
        for name, (_, media_type, _) in FORMATS.items()
    ]


@register.inclusion_tag("catalog/_cite.html")
def cite_box(dataset: Dataset) -> dict:
    """The "How to cite" box: the record's own citation text (if any), the formatted citation, BibTeX
    and RIS for the copy buttons, the licence and the export links."""
    language = get_language() or "en"
    zh = language.startswith("zh")
    today = dt.datetime.now(dt.UTC).date()
    own = plain_text(record.pick(dataset, "ref_way", "zh" if zh else "en"))
    return {
        "dataset": dataset,
        "record_citation": own,
        "related": plain_text(dataset.paper_ref_way),
        "formatted": citation.formatted_citation(dataset, language=language, accessed=today),
        "bibtex": citation.bibtex(dataset, accessed=today),
        "ris": citation.ris(dataset, accessed=today),
        "licence": dataset.license_url.strip(),
        "links": metadata_links(dataset),
    }


@register.simple_tag
def schemaorg_jsonld(dataset: Dataset):
    """The page's ``<script type="application/ld+json">`` block: the schema.org Dataset of the record."""
    return linked_data.jsonld_script(linked_data.schema_org(dataset, language=get_language() or "en"))
