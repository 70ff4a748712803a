"""How to cite a dataset: a CSL-JSON item, the formatted citation (citeproc-py), RIS and BibTeX.

One CSL-JSON item (:func:`csl_item`) is the source of every citation the portal gives: the "How to
cite" box of the detail page, the ``citation`` attribute of the files (:mod:`portal.catalog.metadata`)
and the CSL-JSON, RIS and BibTeX exports. It holds the record's contributors in record order (as
literal names: Chinese names have no given/family split to guess), the publication year, the title,
the publisher (:func:`.record.publisher`), the version, the DOI and the CSTR, the landing page and
the access date.

The formatted text follows ``styles/portal-dataset.csl``, a CSL 1.0 style in the APA 7 pattern for
data sets written for this portal (citeproc-py ships no APA style), in English (``en-US`` terms) or
Chinese (``zh-CN`` terms)::

    Author, Author, & Author (Year). Title (Version N) [Data set]. Publisher. https://doi.org/DOI.
    CSTR:ID. Accessed YYYY-MM-DD.

References
----------
CSL 1.0.2 specification and CSL-JSON schema, https://citationstyles.org/
RIS format (Research Information Systems), as documented by Clarivate (RefMan/EndNote tags).
BibTeX (Patashnik, 1988), ``@misc`` with the ``version``/``doi``/``url``/``urldate`` fields biblatex reads.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from functools import lru_cache
from pathlib import Path

from citeproc import Citation, CitationItem, CitationStylesBibliography, CitationStylesStyle, formatter
from citeproc.source.json import CiteProcJSON

from ..html import plain_text
from ..models import Dataset, DatasetVersion
from . import record

STYLE = Path(__file__).with_name("styles") / "portal-dataset.csl"
"""The CSL style of the formatted citation."""
GENRE = {"en": "Data set", "zh": "数据集"}
_LOCALES = {"en": "en-US", "zh": "zh-CN"}
_lock = threading.Lock()


def _lang(language: str) -> str:
    return "zh" if (language or "en").startswith("zh") else "en"


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def csl_item(
    dataset: Dataset, version: DatasetVersion | None = None, *, language: str = "en", accessed: dt.date | None = None
) -> dict:
    """The CSL-JSON item (type ``dataset``) of ``dataset``, or of one of its versions.

    Parameters
    ----------
    dataset : Dataset
        The record.
    version : DatasetVersion, optional
        A published version: ``version`` is its number, ``issued`` its publication date, ``URL`` its
        section of the record's page, and the publisher this portal (which generated it).
    language : str
        ``"en"`` or ``"zh-hans"``: the language of the title, abstract, publisher name and ``genre``
        (the other language's title goes into ``original-title``).
    accessed : datetime.date, optional
        The access date; none is stated when not given (files written by the portal carry none).

    Returns
    -------
    dict
        CSL-JSON: ``id``, ``type``, ``title``, ``author`` (``[{"literal": name}]``, in record order;
        absent when the record names nobody), ``issued`` (``{"date-parts": [[Y, M, D]]}``),
        ``publisher``, ``version``, ``DOI``, ``URL``, ``note`` (``CSTR:...``), ``accessed``, ``genre``,
        ``abstract``, ``keyword``, ``language``, ``original-title`` (the other language's title).
        Empty values are left out.
    """
    lang = _lang(language)
    title = record.pick(dataset, "title", lang)
    other = record.pick(dataset, "title", "en" if lang == "zh" else "zh")
    when = record.issued(dataset, version)
    doi = record.doi_url(dataset).removeprefix("https://doi.org/")
    item = {
        "id": dataset.id if version is None else f"{dataset.id}-v{version.number}",
        "type": "dataset",
        "title": title,
        "original-title": other if other != title else "",
        "author": [{"literal": p.true_name.strip()} for p in record.contributors(dataset) if p.true_name.strip()],
        "issued": {"date-parts": [[when.year, when.month, when.day]]} if when else None,
        "publisher": record.publisher(dataset, version, lang),
        "version": str(version.number) if version is not None else "",
        "DOI": doi,
        "URL": record.version_url(dataset, version),
        "note": record.cstr_label(dataset),
        "accessed": {"date-parts": [[accessed.year, accessed.month, accessed.day]]} if accessed else None,
        "genre": GENRE[lang],
        "abstract": plain_text(record.pick(dataset, "abstract", lang)),
        "keyword": ", ".join(record.keywords(dataset)),
        "language": "zh" if lang == "zh" else "en",
    }
    return {k: v for k, v in item.items() if v}


@lru_cache(maxsize=4)
def _style(locale: str) -> CitationStylesStyle:
    return CitationStylesStyle(str(STYLE), locale=locale, validate=False)


def format_item(item: dict, *, language: str = "en") -> str:
    """A CSL-JSON item formatted as plain text with :data:`STYLE` (citeproc-py), in ``language``'s terms.

    Raises
    ------
    ValueError
        When the item has no ``id`` (CSL-JSON requires one).
    """
    if not item.get("id"):
        raise ValueError("CSL item: 'id' is required")
    with _lock:  # citeproc-py keeps state in the parsed style while it formats
        bibliography = CitationStylesBibliography(
            _style(_LOCALES[_lang(language)]), CiteProcJSON([item]), formatter.plain
        )
        bibliography.register(Citation([CitationItem(item["id"])]))
        entries = [str(entry) for entry in bibliography.bibliography()]
    return re.sub(r"\s+", " ", " ".join(entries)).strip()


def formatted_citation(
    dataset: Dataset, version: DatasetVersion | None = None, *, language: str = "en", accessed: dt.date | None = None
) -> str:
    """The formatted citation of ``dataset`` (or ``version``): :func:`csl_item` through :func:`format_item`.

    ``accessed`` adds the access date; the "How to cite" box passes today, the files' ``citation``
    attribute none.
    """
    return format_item(csl_item(dataset, version, language=language, accessed=accessed), language=language)


def csl_json(dataset: Dataset, version: DatasetVersion | None = None) -> list[dict]:
    """CSL-JSON (a list of one item, English first, accessed today), as reference managers import it."""
    return [csl_item(dataset, version, language="en", accessed=_today())]


# RIS -------------------------------------------------------------------------------------------------------


def _ris_value(value: str) -> str:
    return re.sub(r"\s+", " ", str(value)).strip()


def ris(dataset: Dataset, version: DatasetVersion | None = None, *, accessed: dt.date | None = None) -> str:
    """The citation as an RIS record (type ``DATA``), lines ``TAG  - value`` ending in CR LF.

    Tags: ``TY`` DATA, ``TI`` title, ``TT`` the other language's title, ``AU`` each contributor (record
    order), ``PY`` year, ``DA`` date (``YYYY/MM/DD``), ``PB`` publisher, ``ET`` version, ``DO`` DOI,
    ``UR`` landing page, ``Y2`` access date, ``N1`` CSTR, ``KW`` each keyword, ``AB`` abstract,
    ``LA`` language, ``M3`` the type of work (``Data set``), ``ER`` end of record.
    """
    item = csl_item(dataset, version, language="en", accessed=accessed or _today())
    lines = [("TY", "DATA"), ("TI", item["title"])]
    if item.get("original-title"):
        lines.append(("TT", item["original-title"]))
    lines += [("AU", a["literal"]) for a in item.get("author", [])]
    if item.get("issued"):
        y, m, d = item["issued"]["date-parts"][0]
        lines += [("PY", f"{y}"), ("DA", f"{y}/{m:02d}/{d:02d}")]
    y, m, d = item["accessed"]["date-parts"][0]
    lines += [
        ("PB", item["publisher"]),
        ("ET", item.get("version", "")),
        ("DO", item.get("DOI", "")),
        ("UR", item["URL"]),
        ("Y2", f"{y}/{m:02d}/{d:02d}"),
        ("N1", item.get("note", "")),
        *(("KW", k) for k in record.keywords(dataset)),
        ("AB", item.get("abstract", "")),
        ("LA", item["language"]),
        ("M3", item["genre"]),
    ]
    out = [f"{tag}  - {_ris_value(value)}" for tag, value in lines if _ris_value(value)]
    return "\r\n".join([*out, "ER  - ", ""])


# BibTeX ----------------------------------------------------------------------------------------------------

_BIBTEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def bibtex_escape(value: str) -> str:
    """Text for a BibTeX field: LaTeX special characters escaped, whitespace collapsed."""
    return "".join(_BIBTEX_SPECIAL.get(c, c) for c in re.sub(r"\s+", " ", str(value)).strip())


def bibtex_key(dataset: Dataset, version: DatasetVersion | None = None, year: int | None = None) -> str:
    """A citation key of ASCII letters, digits and ``_``: the record id (a UUID's first group), year, version."""
    uuid = re.fullmatch(r"([0-9a-fA-F]{8})-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", dataset.id)
    stem = uuid.group(1) if uuid else (re.sub(r"[^A-Za-z0-9]+", "_", dataset.id).strip("_")[:40] or "dataset")
    return "_".join(p for p in (stem, str(year or ""), f"v{version.number}" if version is not None else "") if p)


def bibtex(dataset: Dataset, version: DatasetVersion | None = None, *, accessed: dt.date | None = None) -> str:
    """The citation as a BibTeX ``@misc`` entry (English first).

    Fields: ``author`` (contributors joined by ``and``, each braced: literal names are never split),
    ``title`` (braced: its case is kept), ``year``, ``publisher``, ``howpublished``, ``version``,
    ``doi``, ``url``, ``urldate``, ``note`` (the CSTR and ``Data set``), ``keywords``, ``language``.
    """
    item = csl_item(dataset, version, language="en", accessed=accessed or _today())
    year = item["issued"]["date-parts"][0][0] if item.get("issued") else None
    y, m, d = item["accessed"]["date-parts"][0]
    fields = [
        ("author", " and ".join("{" + bibtex_escape(a["literal"]) + "}" for a in item.get("author", []))),
        ("title", "{" + bibtex_escape(item["title"]) + "}"),
        ("year", str(year or "")),
        ("publisher", bibtex_escape(item["publisher"])),
        ("howpublished", bibtex_escape(item["publisher"])),
        ("version", bibtex_escape(item.get("version", ""))),
        ("doi", bibtex_escape(item.get("DOI", ""))),
        ("url", item["URL"]),
        ("urldate", f"{y}-{m:02d}-{d:02d}"),
        ("note", bibtex_escape(". ".join(v for v in (item.get("note", ""), item["genre"]) if v))),
        ("keywords", bibtex_escape(item.get("keyword", ""))),
        ("language", "english"),
    ]
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields if value)
    return f"@misc{{{bibtex_key(dataset, version, year)},\n{body}\n}}\n"
