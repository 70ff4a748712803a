"""Metadata exports of a dataset record: one registry, one entry point.

Every export is a pure function ``(dataset, version=None) -> bytes`` of a
:class:`~portal.catalog.models.Dataset` and, optionally, one of its published
:class:`~portal.catalog.models.DatasetVersion` (then: its number, its publication date, its files).
:data:`FORMATS` names them with their media type and file suffix; :func:`render` is what the front
door (``/datasets/<id>/metadata/<format>``, :mod:`portal.catalog.export_views`) calls through
:func:`export` (which finds the record and version). Adding a format is one line in :data:`FORMATS`.

Modules: :mod:`.citation` (CSL-JSON, formatted citation, RIS, BibTeX), :mod:`.iso` (ISO 19139),
:mod:`.linked_data` (DCAT and schema.org JSON-LD), :mod:`.datacite` (DataCite XML 4), :mod:`.record`
(the facts they share).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from ..models import Dataset, DatasetVersion
from . import citation, iso, linked_data
from .datacite import datacite_xml

Export = Callable[[Dataset, DatasetVersion | None], bytes]


def _csl(dataset: Dataset, version: DatasetVersion | None = None) -> bytes:
    return json.dumps(citation.csl_json(dataset, version), ensure_ascii=False, indent=2).encode("utf-8")


def _ris(dataset: Dataset, version: DatasetVersion | None = None) -> bytes:
    return citation.ris(dataset, version).encode("utf-8")


def _bibtex(dataset: Dataset, version: DatasetVersion | None = None) -> bytes:
    return citation.bibtex(dataset, version).encode("utf-8")


FORMATS: dict[str, tuple[Export, str, str]] = {
    "datacite": (datacite_xml, "application/xml", "datacite.xml"),
    "iso19139": (iso.iso19139_xml, "application/xml", "iso19139.xml"),
    "dcat": (linked_data.dcat_jsonld, "application/ld+json", "dcat.jsonld"),
    "schemaorg": (linked_data.schemaorg_jsonld, "application/ld+json", "schemaorg.jsonld"),
    "csl": (_csl, "application/vnd.citationstyles.csl+json", "csl.json"),
    "ris": (_ris, "application/x-research-info-systems", "ris"),
    "bibtex": (_bibtex, "application/x-bibtex", "bib"),
}
"""Export name -> (function, media type, file suffix)."""


class UnknownFormat(LookupError):
    """An export name not in :data:`FORMATS`; the message names it and lists the formats."""

    def __init__(self, fmt: str):
        self.format = fmt
        super().__init__(f"unknown metadata format {fmt!r}: expected one of {', '.join(FORMATS)}")


def render(dataset: Dataset, format: str, version: DatasetVersion | None = None) -> bytes:  # noqa: A002
    """The export ``format`` of ``dataset`` (or of ``version``, one of its published versions).

    Parameters
    ----------
    dataset : Dataset
    format : str
        A key of :data:`FORMATS`.
    version : DatasetVersion, optional
        Must belong to ``dataset``.

    Returns
    -------
    bytes
        The document, UTF-8; its media type is ``FORMATS[format][1]``.

    Raises
    ------
    UnknownFormat
        When ``format`` is not a key of :data:`FORMATS`.
    ValueError
        When ``version`` belongs to another dataset.
    """
    if format not in FORMATS:
        raise UnknownFormat(format)
    if version is not None and version.dataset_id != dataset.id:
        raise ValueError(f"version {version.number} belongs to {version.dataset_id!r}, not {dataset.id!r}")
    return FORMATS[format][0](dataset, version)


def filename(dataset: Dataset, format: str, version: DatasetVersion | None = None) -> str:  # noqa: A002
    """A download name: ``<record id>[-v<N>].<suffix>`` (``[A-Za-z0-9._-]`` only)."""
    if format not in FORMATS:
        raise UnknownFormat(format)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", dataset.id).strip("._") or "dataset"
    return f"{stem}{f'-v{version.number}' if version is not None else ''}.{FORMATS[format][2]}"


class ExportError(LookupError):
    """A request for an export that cannot be answered: ``status`` 404 (no such format, dataset or
    version) or 400 (a version parameter that is not a number); ``detail`` says what was expected."""

    def __init__(self, status: int, message: str, **detail):
        self.status, self.detail = status, {"error": message, **detail}
        super().__init__(message)


@dataclass(frozen=True)
class Document:
    """An export ready to send: its bytes, media type and download name."""

    content: bytes
    media_type: str
    filename: str


def export(dataset_id: str, format: str, version: str | None = None) -> Document:  # noqa: A002
    """The export ``format`` of the record ``dataset_id`` (or of its version number ``version``).

    Parameters
    ----------
    dataset_id : str
        The record's id.
    format : str
        A key of :data:`FORMATS`.
    version : str, optional
        A published version's number, as text (a query parameter); ``None`` or empty for the record.

    Returns
    -------
    Document

    Raises
    ------
    ExportError
        404 for an unknown format (listing :data:`FORMATS`), dataset or version (listing the
        dataset's versions); 400 for a version that is not a whole number >= 1.
    """
    formats = list(FORMATS)
    if format not in FORMATS:
        raise ExportError(404, str(UnknownFormat(format)), formats=formats)
    dataset = Dataset.objects.filter(id=dataset_id).first()
    if dataset is None:
        raise ExportError(404, f"no dataset {dataset_id!r}", formats=formats)
    chosen = None
    if version not in (None, ""):
        text = version.strip()
        if not re.fullmatch(r"[0-9]{1,9}", text) or int(text) < 1:
            raise ExportError(
                400,
                f"parameter 'version': expected a version number (a whole number >= 1), got {version[:40]!r}",
                formats=formats,
            )
        chosen = dataset.versions.filter(number=int(text)).first()
        if chosen is None:
            numbers = list(dataset.versions.order_by("number").values_list("number", flat=True))
            raise ExportError(
                404,
                f"parameter 'version': dataset {dataset.id!r} has no version {int(text)}",
                versions=numbers,
                formats=formats,
            )
    return Document(render(dataset, format, chosen), FORMATS[format][1], filename(dataset, format, chosen))
