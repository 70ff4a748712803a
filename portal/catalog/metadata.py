"""The record's discovery metadata as NetCDF global attributes (ACDD 1.3), for every file the portal writes.

One place turns a :class:`~portal.catalog.models.Dataset` (TPDC schema) into the global attributes
of the Attribute Convention for Data Discovery: the publisher stamps them on each NetCDF of a
version (:func:`products.services.publish`) and the subset service carries them into every answer
(:mod:`portal.subsets.writers`). Station files (CF DSG) belong to no record: theirs describe the
networks (:func:`portal.subsets.stations.acdd_attributes`). Extent attributes (``geospatial_*``,
``time_coverage_*``) are the writer's business: they describe the file's own coordinates.

References
----------
ACDD 1.3, https://wiki.esipfed.org/Attribute_Convention_for_Data_Discovery_1-3
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings

from products.registry import GCMD_INSTRUMENTS, GCMD_PLATFORMS, product_for_dataset

from .exports.citation import formatted_citation
from .exports.record import PORTAL_NAME
from .html import plain_text
from .models import Dataset, DatasetPerson, DatasetVersion

NAMING_AUTHORITY = "org.hydroportal"
"""ACDD ``naming_authority``: reverse-DNS of the portal; ``id`` is the record's id within it."""
KEYWORDS_VOCABULARY = "TPDC:TPDC keywords (topic, place and subject tags of the National Tibetan Plateau Data Center)"
STANDARD_NAME_VOCABULARY = "CF Standard Name Table v93"
"""The table the writers pick standard names from and the checkers validate against: the one
``compliance-checker`` ships (its ``data/cf-standard-name-table.xml``, version 93). Naming another
version makes the IOOS checker try to download that table."""
LICENSE_NOT_STATED = (
    "not stated: the source record gives no licence; ask its data manager before reuse (the record's page says so too)"
)
"""``license`` of a record without one: the files never claim a licence the record does not state."""
FILE_LEVEL = ("platform", "platform_vocabulary", "instrument", "instrument_vocabulary")
"""Attributes that describe a file rather than the record (a synthetic twin's are not the product's):
stamped when a version is published, then kept from the file by whatever is cut from it."""


def _join(values: Iterable[str]) -> str:
    return ", ".join(dict.fromkeys(v.strip() for v in values if v and v.strip()))


def acdd_attributes(dataset: Dataset, version: DatasetVersion | None = None) -> dict[str, str]:
    """ACDD 1.3 global attributes of ``dataset`` (and ``version`` when given), English first.

    Parameters
    ----------
    dataset : Dataset
        The record (titles, abstracts, tags, people, licence, DOI/CSTR, citation).
    version : DatasetVersion, optional
        Adds ``product_version``, ``date_issued`` and the version's lineage summary as ``source``.

    Returns
    -------
    dict of str to str
        ``title``, ``summary``, ``keywords`` with ``keywords_vocabulary``, ``id`` and
        ``naming_authority``, ``creator_*`` (the record's people; the portal, as an institution,
        when the record names nobody), ``publisher_*``, ``contributor_*``, ``institution``,
        ``license``, ``references``, ``metadata_link`` (the record's page or DOI),
        ``acknowledgement`` (the record's acknowledgement instruction, else the source record it is
        based on), ``processing_level``,
        ``standard_name_vocabulary`` (:data:`STANDARD_NAME_VOCABULARY`), ``date_created`` (the
        record's), ``date_modified`` and ``date_metadata_modified`` (the record's last update),
        ``doi``, the Chinese title and abstract (``title_zh``, ``summary_zh``), ``citation`` (the
        formatted citation of :func:`portal.catalog.exports.citation.formatted_citation`, English, of
        the version when given, without an access date). Empty values are left out. No extent
        attributes. Dates are ISO 8601.
    """
    saved = not dataset._state.adding  # an unsaved record (benchmarks, previews) has no people or tags yet
    people = (
        list(DatasetPerson.objects.filter(dataset=dataset).select_related("person").order_by("role", "order"))
        if saved
        else []
    )
    contributors = [p.person for p in people if p.role == DatasetPerson.Role.CONTRIBUTOR]
    tags = list(dataset.tags.values_list("name", flat=True)) if saved else []
    doi_url = f"https://doi.org/{dataset.doi}" if dataset.doi else ""
    portal_url = getattr(settings, "PORTAL_URL", "").rstrip("/")
    references = [doi_url, dataset.source_url, f"{portal_url}/datasets/{dataset.id}/" if portal_url else ""]
    creators = contributors or [p.person for p in people]
    contact = getattr(settings, "PORTAL_CONTACT_EMAIL", "")
    product = product_for_dataset(dataset.id)
    attrs = {
        "title": dataset.title_en or dataset.title_cn,
        "title_zh": dataset.title_cn,
        "summary": plain_text(dataset.abstract_en or dataset.abstract_cn, 4000),
        "summary_zh": plain_text(dataset.abstract_cn, 4000),
        "keywords": _join([*tags, dataset.category]),
        "keywords_vocabulary": KEYWORDS_VOCABULARY,
        "standard_name_vocabulary": STANDARD_NAME_VOCABULARY,
        "id": dataset.id,
        "naming_authority": NAMING_AUTHORITY,
        "doi": dataset.doi,
        "cstr": dataset.cstr,
        # a record naming nobody: the files were created (regenerated) by the portal itself
        "creator_name": _join(p.true_name for p in creators) or PORTAL_NAME,
        "creator_type": "person" if creators else "institution",
        "creator_institution": _join(p.work_for for p in creators) if creators else PORTAL_NAME,
        # the portal answers for people the record gives no address for
        "creator_email": _join(p.email for p in creators) or contact,
        "contributor_name": _join(p.true_name for p in contributors),
        "contributor_role": _join("contributor" for _ in contributors),
        "institution": _join(p.work_for for p in creators) or PORTAL_NAME,
        "publisher_name": dataset.source_portal or PORTAL_NAME,
        "publisher_type": "institution",
        "publisher_institution": dataset.source_portal or PORTAL_NAME,
        "publisher_url": dataset.source_url or portal_url,
        "publisher_email": dataset.service_email or contact,
        "creator_url": dataset.source_url or portal_url,
        "license": dataset.license_url or LICENSE_NOT_STATED,
        "references": _join(references),
        "metadata_link": f"{portal_url}/datasets/{dataset.id}/" if portal_url else doi_url or dataset.source_url,
        "acknowledgement": plain_text(dataset.ref_instruction_en or dataset.ref_instruction_cn, 2000)
        or (
            f"Based on the {dataset.source_portal} record {dataset.source_url}"
            if dataset.source_portal
            else f"Regenerated by the {PORTAL_NAME} with the method of the record {dataset.id}; cite the record"
        ),
        "citation": formatted_citation(dataset, version, language="en"),
        "processing_level": f"L{dataset.data_level}"
        if dataset.data_level is not None
        else "L4 (model output from machine learning on observations)",
        "source": plain_text(dataset.source_en or dataset.source_cn, 2000),
        "project": PORTAL_NAME,
        "program": f"{PORTAL_NAME}: regenerated machine-learning land-surface hydrology products",
        # the platforms and instruments whose data the product's method uses (products.registry)
        "platform": ", ".join(product.platforms) if product else "",
        "platform_vocabulary": GCMD_PLATFORMS if product and product.platforms else "",
        "instrument": ", ".join(product.instruments) if product else "",
        "instrument_vocabulary": GCMD_INSTRUMENTS if product and product.instruments else "",
        "date_created": (dataset.created or dataset.publish_time).isoformat()
        if (dataset.created or dataset.publish_time)
        else "",
        "date_modified": dataset.updated.isoformat() if dataset.updated else "",
        "date_metadata_modified": dataset.updated.isoformat() if dataset.updated else "",
    }
    if version is not None:
        attrs["product_version"] = f"v{version.number}"
        if version.published_at:
            attrs["date_issued"] = version.published_at.isoformat()
    return {k: str(v) for k, v in attrs.items() if v not in (None, "")}
