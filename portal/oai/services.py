"""OAI-PMH 2.0 data provider: a request's arguments in, the protocol's XML answer out (no HTTP here).

Verbs Identify, ListMetadataFormats, ListSets, ListIdentifiers, ListRecords and GetRecord; metadata
formats ``oai_dc`` (unqualified Dublin Core) and ``oai_datacite`` (DataCite 4.5 XML in DataCite's
OAI wrapper, schema ``oai-1.1`` as DataCite's own provider serves it); sets are the records'
categories. Items are the dataset records, identified ``oai:<OAI_REPOSITORY_IDENTIFIER>:<record id>``.

* Datestamps have day granularity (``YYYY-MM-DD``, UTC): a record's datestamp is the later of its
  ``updated`` time (``created`` when it has none) and its last published version. ``from`` and
  ``until`` are days and inclusive.
* Lists come in pages of ``settings.OAI_PAGE_SIZE`` items. The resumption token is stateless (the
  request and the offset, base64url JSON), carries ``completeListSize`` and ``cursor``, and the last
  page has an empty one.
* Every error the protocol names is answered as its ``<error code="...">`` element (the front door
  sends it with HTTP 200): badVerb, badArgument (missing, repeated, unknown or malformed
  arguments), badResumptionToken, cannotDisseminateFormat, idDoesNotExist, noRecordsMatch and
  noSetHierarchy (no record has a category). Deleted records are not kept (``deletedRecord`` no).

Source standard: The Open Archives Initiative Protocol for Metadata Harvesting, version 2.0
(http://www.openarchives.org/OAI/openarchivesprotocol.html).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote

from django.conf import settings
from django.db.models import DateTimeField, Max, Prefetch, QuerySet, Value
from django.db.models.functions import Coalesce, Greatest, TruncDate
from lxml import etree

from portal.catalog.exports import datacite
from portal.catalog.metadata import PORTAL_NAME
from portal.catalog.models import Dataset, DatasetPerson, DatasetVersion
from portal.catalog.vocabulary import category_en

NS_OAI = "http://www.openarchives.org/OAI/2.0/"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS_XML = "http://www.w3.org/XML/1998/namespace"
NS_OAI_DC = "http://www.openarchives.org/OAI/2.0/oai_dc/"
NS_DC = "http://purl.org/dc/elements/1.1/"
NS_OAI_DATACITE = "http://schema.datacite.org/oai/oai-1.1/"
OAI_SCHEMA = "http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
GRANULARITY = "YYYY-MM-DD"


class OAIError(Exception):
    """An OAI-PMH error condition: ``code`` is the protocol's error code, the message says what was wrong."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


# ---- metadata formats ---------------------------------------------------------------------------


def _sub(parent, tag: str, text: str, lang: str | None = None) -> None:
    element = etree.SubElement(parent, tag)
    element.text = text
    if lang:
        element.set(f"{{{NS_XML}}}lang", lang)


def oai_dc(data: dict) -> etree._Element:
    """Unqualified Dublin Core (``oai_dc:dc``) of a record's DataCite dict (:func:`datacite.datacite_dict`)."""
    root = etree.Element(f"{{{NS_OAI_DC}}}dc", nsmap={"oai_dc": NS_OAI_DC, "dc": NS_DC, "xsi": NS_XSI})
    root.set(f"{{{NS_XSI}}}schemaLocation", f"{NS_OAI_DC} http://www.openarchives.org/OAI/2.0/oai_dc.xsd")
    dc = f"{{{NS_DC}}}"
    for t in data["titles"]:
        _sub(root, dc + "title", t["title"], t.get("lang"))
    for c in data["creators"]:
        _sub(root, dc + "creator", c["name"])
    for s in data.get("subjects", []):
        _sub(root, dc + "subject", s["subject"], s.get("lang"))
    for d in data.get("descriptions", []):
        if d["descriptionType"] == "Abstract":
            _sub(root, dc + "description", d["description"], d.get("lang"))
    _sub(root, dc + "publisher", data["publisher"]["name"])
    for c in data.get("contributors", []):
        _sub(root, dc + "contributor", c["name"])
    dates = {d["dateType"]: d["date"] for d in data.get("dates", [])}
    _sub(root, dc + "date", dates.get("Issued") or dates.get("Created") or data["publicationYear"])
    _sub(root, dc + "type", "Dataset")
    for f in data.get("formats", []):
        _sub(root, dc + "format", f)
    if "doi" in data:
        _sub(root, dc + "identifier", f"https://doi.org/{data['doi']}")
    _sub(root, dc + "identifier", data.get("url") or data["identifier"]["identifier"])
    for a in data.get("alternateIdentifiers", []):
        if a["alternateIdentifierType"] == "CSTR":
            _sub(root, dc + "identifier", f"CSTR:{a['alternateIdentifier']}")
    if data.get("language"):
        _sub(root, dc + "language", data["language"])
    for r in data.get("relatedIdentifiers", []):
        _sub(root, dc + "relation", r["relatedIdentifier"])
    for g in data.get("geoLocations", []):
        if g.get("geoLocationPlace"):
            _sub(root, dc + "coverage", g["geoLocationPlace"])
        box = g.get("geoLocationBox")
        if box:  # DCMI Box encoding
            _sub(
                root,
                dc + "coverage",
                f"westlimit={box['westBoundLongitude']}; eastlimit={box['eastBoundLongitude']}; "
                f"southlimit={box['southBoundLatitude']}; northlimit={box['northBoundLatitude']}",
            )
    if dates.get("Collected"):
        _sub(root, dc + "coverage", dates["Collected"])
    for r in data.get("rightsList", []):
        _sub(root, dc + "rights", r.get("rightsUri") or r.get("rights", ""))
    return root


def oai_datacite(data: dict) -> etree._Element:
    """DataCite XML in DataCite's OAI wrapper (``oai_datacite``, schema oai-1.1): schemaVersion,
    datacentreSymbol (this repository's identifier: the records are not registered with DataCite)
    and the ``resource`` as payload."""
    root = etree.Element(f"{{{NS_OAI_DATACITE}}}oai_datacite", nsmap={None: NS_OAI_DATACITE, "xsi": NS_XSI})
    root.set(f"{{{NS_XSI}}}schemaLocation", f"{NS_OAI_DATACITE} http://schema.datacite.org/oai/oai-1.1/oai.xsd")
    etree.SubElement(root, f"{{{NS_OAI_DATACITE}}}schemaVersion").text = "4.5"
    etree.SubElement(root, f"{{{NS_OAI_DATACITE}}}datacentreSymbol").text = repository_identifier()
    etree.SubElement(root, f"{{{NS_OAI_DATACITE}}}payload").append(datacite.datacite_element(data))
    return root


@dataclass(frozen=True)
class MetadataFormat:
    prefix: str
    schema: str
    namespace: str
    write: Callable[[dict], etree._Element]


FORMATS = {
    f.prefix: f
    for f in (
        MetadataFormat("oai_dc", "http://www.openarchives.org/OAI/2.0/oai_dc.xsd", NS_OAI_DC, oai_dc),
        MetadataFormat("oai_datacite", "http://schema.datacite.org/oai/oai-1.1/oai.xsd", NS_OAI_DATACITE, oai_datacite),
    )
}
"""metadataPrefix -> format; every record is disseminated in each."""


# ---- records, identifiers, sets, datestamps ----------------------------------------------------


def repository_identifier() -> str:
    """The repository's identifier in OAI identifiers (``settings.OAI_REPOSITORY_IDENTIFIER``)."""
    return settings.OAI_REPOSITORY_IDENTIFIER


def oai_identifier(dataset_id: str) -> str:
    """``oai:<repository identifier>:<record id>`` (the id percent-encoded where the oai-identifier syntax needs it)."""
    return f"oai:{repository_identifier()}:{quote(dataset_id, safe=SAFE)}"


SAFE = "-_.!~*'();/?:@&=+$,"


def dataset_id_of(identifier: str) -> str | None:
    """The record id an OAI identifier names, or ``None`` when it is not one of this repository's."""
    prefix = f"oai:{repository_identifier()}:"
    return (
        unquote(identifier[len(prefix) :]) if identifier.startswith(prefix) and len(identifier) > len(prefix) else None
    )


def set_spec(category: str) -> str:
    """The setSpec of a category: its English name in lower case with hyphens (``hydrology``); a
    category without an ASCII name gets ``category-`` and a digest of its name."""
    spec = re.sub(r"[^a-z0-9]+", "-", category_en(category).lower()).strip("-")
    return (
        spec
        if spec and category_en(category).isascii()
        else "category-" + hashlib.sha1(category.encode("utf-8")).hexdigest()[:10]
    )


def set_name(category: str) -> str:
    english = category_en(category)
    return f"{english} / {category}" if english != category else category


def with_datestamp(queryset: QuerySet[Dataset]) -> QuerySet[Dataset]:
    """``queryset`` annotated with ``stamp`` (the later of the record's update, or creation, time and
    its last published version's; the epoch when it has none of them) and ``day``, its UTC date."""
    return queryset.annotate(
        stamp=Greatest(
            Coalesce("updated", "created", "publish_time", Value(EPOCH), output_field=DateTimeField()),
            Coalesce(Max("versions__published_at"), Value(EPOCH), output_field=DateTimeField()),
        )
    ).annotate(day=TruncDate("stamp", tzinfo=dt.UTC))


def _records() -> QuerySet[Dataset]:
    return with_datestamp(Dataset.objects.all()).order_by("id")


def _with_related(queryset: QuerySet[Dataset]) -> QuerySet[Dataset]:
    return queryset.prefetch_related(
        "tags",
        Prefetch("roles", queryset=DatasetPerson.objects.select_related("person")),
        Prefetch("versions", queryset=DatasetVersion.objects.prefetch_related("files")),
    )


# ---- the answer ---------------------------------------------------------------------------------

ARGUMENTS = {
    # verb: (required, optional, exclusive)
    "Identify": (set(), set(), None),
    "ListMetadataFormats": (set(), {"identifier"}, None),
    "ListSets": (set(), set(), "resumptionToken"),
    "GetRecord": ({"identifier", "metadataPrefix"}, set(), None),
    "ListIdentifiers": ({"metadataPrefix"}, {"from", "until", "set"}, "resumptionToken"),
    "ListRecords": ({"metadataPrefix"}, {"from", "until", "set"}, "resumptionToken"),
}
_XML_CHARS = re.compile("^[^\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]*$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SECONDS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_PREFIX = re.compile(r"^[A-Za-z0-9\-_.!~*'()]+$")
_SETSPEC = re.compile(r"^[A-Za-z0-9\-_.!~*'()]+(:[A-Za-z0-9\-_.!~*'()]+)*$")
_URI = re.compile(r"^[^\s<>\"{}|\\^`]+$")
_ECHO = {
    "identifier": _URI,
    "metadataPrefix": _PREFIX,
    "from": _DAY,
    "until": _DAY,
    "set": _SETSPEC,
    "resumptionToken": re.compile(r"^[A-Za-z0-9_\-=]+$"),
}
"""Arguments echoed in ``<request>``, each only when it has the syntax OAI-PMH.xsd gives the attribute."""


def respond(params: Mapping[str, Sequence[str]], base_url: str, now: dt.datetime | None = None) -> bytes:
    """The OAI-PMH answer to one request.

    Parameters
    ----------
    params : mapping of str to sequence of str
        The request's arguments (query string of a GET, form body of a POST), each name with all
        the values it was given (a repeated argument is a badArgument).
    base_url : str
        The base URL of the request (``<request>`` and Identify's ``baseURL``).
    now : datetime, optional
        The response date (UTC); the current time by default.

    Returns
    -------
    bytes
        A UTF-8 ``OAI-PMH`` document valid against OAI-PMH.xsd: the verb's answer, or its
        ``error`` elements (the protocol's error codes; never an exception).
    """
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    root = etree.Element(f"{{{NS_OAI}}}OAI-PMH", nsmap={None: NS_OAI, "xsi": NS_XSI})
    root.set(f"{{{NS_XSI}}}schemaLocation", f"{NS_OAI} {OAI_SCHEMA}")
    etree.SubElement(root, f"{{{NS_OAI}}}responseDate").text = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    request = etree.SubElement(root, f"{{{NS_OAI}}}request")
    request.text = base_url
    try:
        verb, args = _arguments(params)
        request.set("verb", verb)
        for name, value in args.items():  # attributes only for requests that are not badVerb/badArgument
            if _ECHO[name].match(value):
                request.set(name, value)
        root.append(VERBS[verb](args, base_url))
    except OAIError as exc:
        if exc.code in ("badVerb", "badArgument"):  # the protocol: the base URL only, no attributes
            request.attrib.clear()
        error = etree.SubElement(root, f"{{{NS_OAI}}}error", code=exc.code)
        error.text = str(exc)
    etree.indent(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _arguments(params: Mapping[str, Sequence[str]]) -> tuple[str, dict[str, str]]:
    """Check the arguments against the verb's: returns (verb, {name: value}) or raises OAIError."""
    verbs = list(params.get("verb", []))
    if not verbs:
        raise OAIError("badVerb", "the argument 'verb' is missing: expected one of " + ", ".join(ARGUMENTS))
    if len(verbs) > 1:
        raise OAIError("badVerb", "the argument 'verb' is repeated")
    verb = verbs[0]
    if verb not in ARGUMENTS:
        raise OAIError("badVerb", f"illegal verb {verb[:60]!r}: expected one of " + ", ".join(ARGUMENTS))
    required, optional, exclusive = ARGUMENTS[verb]
    args: dict[str, str] = {}
    for name, values in params.items():
        if name == "verb":
            continue
        if name not in required | optional | ({exclusive} if exclusive else set()):
            allowed = sorted(required | optional | ({exclusive} if exclusive else set()))
            raise OAIError(
                "badArgument",
                f"illegal argument {name[:60]!r} for {verb}: expected "
                + (", ".join(allowed) if allowed else "no other argument"),
            )
        if len(values) != 1:
            raise OAIError("badArgument", f"the argument {name!r} is repeated")
        if not _XML_CHARS.match(values[0]):
            raise OAIError("badArgument", f"the argument {name!r} holds control characters")
        args[name] = values[0]
    if exclusive and exclusive in args:
        if len(args) > 1:
            raise OAIError(
                "badArgument",
                f"{exclusive} is an exclusive argument: no other argument than the verb "
                f"may come with it (got {', '.join(sorted(set(args) - {exclusive}))})",
            )
        return verb, args
    missing = sorted(required - set(args))
    if missing:
        raise OAIError("badArgument", f"{verb} needs the argument(s) {', '.join(missing)}")
    return verb, args


def _format(prefix: str) -> MetadataFormat:
    if prefix not in FORMATS:
        raise OAIError(
            "cannotDisseminateFormat",
            f"metadataPrefix {prefix[:60]!r} is not supported: expected one of {', '.join(FORMATS)}",
        )
    return FORMATS[prefix]


def _dataset(identifier: str) -> Dataset:
    dataset_id = dataset_id_of(identifier)
    dataset = _with_related(_records().filter(id=dataset_id)).first() if dataset_id else None
    if dataset is None:
        raise OAIError(
            "idDoesNotExist",
            f"no record {identifier[:200]!r} in this repository (identifiers are "
            f"oai:{repository_identifier()}:<record id>)",
        )
    return dataset


def _day(name: str, value: str) -> dt.date:
    if _SECONDS.match(value):
        raise OAIError("badArgument", f"'{name}' {value!r}: this repository's granularity is {GRANULARITY} (days)")
    if not _DAY.match(value):
        raise OAIError("badArgument", f"'{name}' {value[:40]!r}: expected a date {GRANULARITY}")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise OAIError("badArgument", f"'{name}' {value!r}: not a date of the calendar") from None


def _categories() -> list[str]:
    return sorted(c for c in Dataset.objects.exclude(category="").values_list("category", flat=True).distinct())


def _header(dataset: Dataset) -> etree._Element:
    header = etree.Element(f"{{{NS_OAI}}}header")
    etree.SubElement(header, f"{{{NS_OAI}}}identifier").text = oai_identifier(dataset.id)
    etree.SubElement(header, f"{{{NS_OAI}}}datestamp").text = dataset.day.isoformat()
    if dataset.category:
        etree.SubElement(header, f"{{{NS_OAI}}}setSpec").text = set_spec(dataset.category)
    return header


def _record(dataset: Dataset, fmt: MetadataFormat) -> etree._Element:
    element = etree.Element(f"{{{NS_OAI}}}record")
    element.append(_header(dataset))
    etree.SubElement(element, f"{{{NS_OAI}}}metadata").append(fmt.write(datacite.datacite_dict(dataset)))
    return element


def identify(args: dict, base_url: str) -> etree._Element:
    earliest = _records().order_by("day").values_list("day", flat=True).first()
    element = etree.Element(f"{{{NS_OAI}}}Identify")
    for tag, text in (
        ("repositoryName", PORTAL_NAME),
        ("baseURL", base_url),
        ("protocolVersion", "2.0"),
        ("adminEmail", settings.PORTAL_CONTACT_EMAIL),
        ("earliestDatestamp", (earliest or dt.datetime.now(dt.UTC).date()).isoformat()),
        ("deletedRecord", "no"),
        ("granularity", GRANULARITY),
    ):
        etree.SubElement(element, f"{{{NS_OAI}}}{tag}").text = text
    return element


def list_metadata_formats(args: dict, base_url: str) -> etree._Element:
    if "identifier" in args:
        _dataset(args["identifier"])  # idDoesNotExist for an unknown one; every record has every format
    element = etree.Element(f"{{{NS_OAI}}}ListMetadataFormats")
    for fmt in FORMATS.values():
        entry = etree.SubElement(element, f"{{{NS_OAI}}}metadataFormat")
        for tag, text in (("metadataPrefix", fmt.prefix), ("schema", fmt.schema), ("metadataNamespace", fmt.namespace)):
            etree.SubElement(entry, f"{{{NS_OAI}}}{tag}").text = text
    return element


def list_sets(args: dict, base_url: str) -> etree._Element:
    if "resumptionToken" in args:  # every set fits in one answer: no token was ever given
        raise OAIError("badResumptionToken", "ListSets answers in one page: it gives no resumption token")
    categories = _categories()
    if not categories:
        raise OAIError("noSetHierarchy", "no record has a category, so this repository has no sets")
    element = etree.Element(f"{{{NS_OAI}}}ListSets")
    for category in categories:
        entry = etree.SubElement(element, f"{{{NS_OAI}}}set")
        etree.SubElement(entry, f"{{{NS_OAI}}}setSpec").text = set_spec(category)
        etree.SubElement(entry, f"{{{NS_OAI}}}setName").text = set_name(category)
    return element


def get_record(args: dict, base_url: str) -> etree._Element:
    dataset = _dataset(args["identifier"])
    fmt = _format(args["metadataPrefix"])
    element = etree.Element(f"{{{NS_OAI}}}GetRecord")
    element.append(_record(dataset, fmt))
    return element


def _token(verb: str, request: dict, offset: int) -> str:
    payload = json.dumps({"v": verb, **request, "o": offset}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(payload.encode("utf-8")).decode("ascii")


def _untoken(verb: str, token: str) -> tuple[dict, int]:
    """The request and offset a resumption token carries, or badResumptionToken."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        data = None
    keys = {"metadataPrefix", "from", "until", "set"}
    if (
        not isinstance(data, dict)
        or data.get("v") != verb
        or not isinstance(data.get("o"), int)
        or isinstance(data.get("o"), bool)
        or data["o"] < 1
        or not set(data) - {"v", "o"} <= keys
        or not all(isinstance(data[k], str) for k in set(data) & keys)
        or "metadataPrefix" not in data
    ):
        raise OAIError(
            "badResumptionToken", f"the resumption token {token[:80]!r} is not one this repository gave for {verb}"
        )
    return {k: data[k] for k in keys if k in data}, data["o"]


def _list(verb: str, args: dict, full: bool) -> etree._Element:
    offset = 0
    if "resumptionToken" in args:
        args, offset = _untoken(verb, args["resumptionToken"])
    fmt = _format(args["metadataPrefix"])
    queryset = _records()
    start = _day("from", args["from"]) if "from" in args else None
    end = _day("until", args["until"]) if "until" in args else None
    if start and end and start > end:
        raise OAIError("badArgument", f"'from' ({start}) is after 'until' ({end})")
    if start:
        queryset = queryset.filter(day__gte=start)
    if end:
        queryset = queryset.filter(day__lte=end)
    if "set" in args:
        categories = _categories()
        if not categories:
            raise OAIError("noSetHierarchy", "this repository has no sets (no record has a category)")
        queryset = queryset.filter(category__in=[c for c in categories if set_spec(c) == args["set"]])
    total = queryset.count()
    if total == 0:
        raise OAIError(
            "noRecordsMatch",
            "no record matches the arguments " + ", ".join(f"{k}={v}" for k, v in sorted(args.items())),
        )
    if offset >= total:
        raise OAIError(
            "badResumptionToken", f"the resumption token points past the end of the list ({total} records now)"
        )
    size = max(1, int(settings.OAI_PAGE_SIZE))
    page = list(_with_related(queryset)[offset : offset + size]) if full else list(queryset[offset : offset + size])
    element = etree.Element(f"{{{NS_OAI}}}{verb}")
    for dataset in page:
        element.append(_record(dataset, fmt) if full else _header(dataset))
    if offset or offset + size < total:  # the list is split: every page has a token, the last one empty
        token = etree.SubElement(
            element, f"{{{NS_OAI}}}resumptionToken", completeListSize=str(total), cursor=str(offset)
        )
        if offset + size < total:
            token.text = _token(verb, args, offset + size)
    return element


def list_identifiers(args: dict, base_url: str) -> etree._Element:
    return _list("ListIdentifiers", args, full=False)


def list_records(args: dict, base_url: str) -> etree._Element:
    return _list("ListRecords", args, full=True)


VERBS: dict[str, Callable[[dict, str], etree._Element]] = {
    "Identify": identify,
    "ListMetadataFormats": list_metadata_formats,
    "ListSets": list_sets,
    "GetRecord": get_record,
    "ListIdentifiers": list_identifiers,
    "ListRecords": list_records,
}
