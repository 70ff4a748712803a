"""Catalogue search: one service behind the list page, the API, STAC collections and OGC API - Records.

- **Full text, both languages** (PostgreSQL): each record's :class:`~portal.catalog.models.SearchDocument`
  holds weighted lexemes (A titles, B keywords/variables/category, C abstracts, D source and
  processing method); English is stemmed (``english``), Chinese is segmented into words by jieba
  (search mode, so a long word's parts are indexed too) and indexed as is (``simple``). Results are
  ranked by ``ts_rank``.
- **Query words**: a Chinese run is cut by jieba; it matches the word, or all its two-character
  parts (so "土壤水分" and "土壤 水分" find the same records). An abbreviation of
  :data:`~portal.catalog.vocabulary.SYNONYMS` (ET, SM, TWS, GRACE, FT, ERA5, SMAP, LightGBM)
  matches records holding it in their title or keywords, or any of its expansions anywhere.
- **Typos**: a Latin word absent from the lexicon (:class:`~portal.catalog.models.SearchWord`) is
  replaced by its most similar lexicon word (pg_trgm ``similarity`` >= :data:`CORRECTION_MIN`),
  and the answer says so; when the words still match nothing, records are ranked by trigram word
  similarity of the query to their titles and keywords.
- **Filters**: facet values (``category``, ``keyword``, ``variable``, ``spatial_resolution``,
  ``temporal_resolution``, ``share_type``, ``format``, ``published``; several values of one facet
  are alternatives, facets combine), a box (``bbox``, PostGIS intersection; ``min_lon > max_lon``
  crosses the antimeridian) and a period (``time``, ISO 8601 instant or interval, overlap).
- **Facet counts** of the filtered records, in the active language.

References: PostgreSQL 15 manual, chapter 12 (full text search) and F.35 (pg_trgm); jieba
(https://github.com/fxsjy/jieba).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import html
import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

import jieba
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils.html import strip_tags
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from redis.exceptions import RedisError

from portal import extents
from portal.subsets import core as subset_core
from portal.subsets.params import check_names
from products.registry import product_for_dataset

from . import vocabulary as vocab
from .html import plain_text
from .models import Dataset, Tag

jieba.setLogLevel(logging.WARNING)
log = logging.getLogger(__name__)

FACETS: dict[str, object] = {
    "category": _("Category"),
    "keyword": _("Keyword"),
    "variable": _("Variable"),
    "spatial_resolution": _("Spatial resolution"),
    "temporal_resolution": _("Temporal resolution"),
    "share_type": _("Access"),
    "format": _("Format"),
    "published": _("Published version"),
}
"""Facet names (query parameters and keys) -> their heading, in page order."""
SORTS = ("relevance", "date", "-date", "title")
PARAMETERS = ("q", *FACETS, "bbox", "time", "sort")
"""The search's query parameters; a front door adds its paging (``page``; ``limit``, ``offset``)."""
MAX_QUERY = 200
CORRECTION_MIN = 0.45
"""Lowest pg_trgm similarity at which a word absent from the lexicon is replaced by a lexicon word."""
"""The typo fallback keeps records whose titles and keywords hold the query with a pg_trgm word similarity of
at least ``pg_trgm.word_similarity_threshold`` (0.6 by default), the operator ``<%`` its index answers."""
FACET_VALUES_SHOWN = 12


class SearchError(subset_core.SubsetError):
    """A search parameter that cannot be read (400): ``field`` is the parameter as sent."""


@dataclass(frozen=True)
class SearchParams:
    """A parsed search.

    Attributes
    ----------
    q : str
        The words, NFKC-normalized, at most :data:`MAX_QUERY` characters.
    filters : dict of str to tuple of str
        Facet name -> accepted values (alternatives).
    bbox : tuple of 4 float, optional
        (min_lon, min_lat, max_lon, max_lat) in degrees; min_lon > max_lon crosses the antimeridian.
    period : tuple of 2 datetime, optional
        UTC bounds (either may be None: open).
    sort : {"relevance", "date", "-date", "title"}
        "relevance" without words is by date, newest first.
    """

    q: str = ""
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    bbox: tuple[float, float, float, float] | None = None
    period: tuple[dt.datetime | None, dt.datetime | None] | None = None
    sort: str = "relevance"

    def query_string(self, **changes) -> str:
        """This search as a URL query (facet links and paging on the list page)."""
        items = [("q", self.q)] if self.q else []
        for name in FACETS:
            items += [(name, v) for v in self.filters.get(name, ())]
        if self.bbox:
            items.append(("bbox", ",".join(f"{v:g}" for v in self.bbox)))
        if self.period:
            items.append(("time", "/".join(t.isoformat().replace("+00:00", "Z") if t else ".." for t in self.period)))
        if self.sort != "relevance":
            items.append(("sort", self.sort))
        for name, value in changes.items():
            items = [(k, v) for k, v in items if k != name] + ([(name, value)] if value else [])
        return urlencode(items)


def parse(params: Mapping[str, Iterable[str]], *, also: tuple[str, ...] = (), heights: str = "no") -> SearchParams:
    """Read a search from query parameters (each name -> its values, as ``QueryDict.lists()`` gives).

    Parameters
    ----------
    params : mapping of name -> list of str
    also : names the front door reads itself (paging), accepted here and ignored.
    heights : {"no", "drop"}
        Whether a 6-number ``bbox`` (with heights, OGC API-Records) is read with its heights
        dropped (:func:`portal.extents.parse_bbox`).

    Raises
    ------
    SearchError
        An unknown parameter (named, with a suggestion), a malformed ``bbox`` or ``time``, an unknown
        ``sort``, a repeated single-valued parameter, or a value with a NUL byte.
    """
    values = {str(k): [str(v) for v in vs] for k, vs in params.items()}
    try:
        check_names({k: ",".join(v) for k, v in values.items()}, (*PARAMETERS, *also), "api")
    except subset_core.SubsetError as exc:
        raise SearchError(exc.field, exc.message) from None
    for name, vs in values.items():
        if any("\x00" in v for v in vs):
            raise SearchError(name, "a NUL byte is not allowed")
        if name in ("q", "bbox", "time", "sort") and len(vs) > 1:
            raise SearchError(name, f"expected one value, got {len(vs)}")

    def one(name):
        return (values.get(name) or [""])[0].strip()

    q = vocab.normalize(one("q"))[:MAX_QUERY].strip()
    filters = {
        name: tuple(dict.fromkeys(v.strip()[:300] for v in values[name] if v.strip()))
        for name in FACETS
        if values.get(name)
    }
    filters = {k: v for k, v in filters.items() if v}
    if "published" in filters and not set(filters["published"]) <= {"yes", "no"}:
        raise SearchError("published", "expected 'yes' or 'no'")
    bbox = extents.parse_bbox(one("bbox"), heights=heights, wgs84=True, error=SearchError) if one("bbox") else None
    period = extents.period_bounds(
        extents.parse_period(one("time"), "time", error=SearchError), "time", error=SearchError
    )
    sort = one("sort") or "relevance"
    if sort not in SORTS:
        raise SearchError("sort", f"expected one of {', '.join(SORTS)}, got {sort[:40]!r}")
    return SearchParams(q=q, filters=filters, bbox=bbox, period=period, sort=sort)


# --------------------------------------------------------------------------- indexing


def segment(text: str) -> str:
    """Chinese text cut into words (jieba search mode: long words and their parts), space-separated;
    other text is kept as is. Sentences are cut one by one (punctuation ends a word anyway) and
    remembered: records repeat sentences, and jieba is the slowest step of indexing."""
    text = vocab.normalize(html.unescape(strip_tags(text or "")))
    return " ".join(_segment_sentence(s) for s in _SENTENCE_END.split(text) if s.strip())


_SENTENCE_END = re.compile(r"(?<=[。！？；;!?.,，、:：])\s*|\s*\n\s*")


@functools.lru_cache(maxsize=65536)
def _segment_sentence(sentence: str) -> str:
    """Han runs cut by jieba; Latin words ("GRACE-FO", "ERA5-Land") left whole for PostgreSQL's parser."""
    return vocab.CJK_RUN.sub(
        lambda m: " " + " ".join(w for w in jieba.cut_for_search(m.group()) if w.strip()) + " ", sentence
    ).strip()


@dataclass
class DocumentFields:
    """What :func:`index_datasets` writes for one record (pure: see :func:`document_fields`)."""

    texts: dict[str, tuple[str, str]]  # weight -> (English text, segmented Chinese text)
    words: str
    facets: list[str]
    lexicon: set[str]


def document_fields(
    dataset: Dataset, tags: list[tuple[str, str]], variables: Iterable[str], published: bool
) -> DocumentFields:
    """The weighted texts, trigram words, facet keys and lexicon words of one record.

    Parameters
    ----------
    dataset : Dataset (unsaved is fine)
    tags : list of (name, English name) of its keywords
    variables : CF standard names of what it publishes
    published : whether it has a published version
    """
    variables = list(variables)
    keywords_en = " ".join(en or vocab.keyword_en(name) for name, en in tags)
    keywords_cn = " ".join(name for name, _ in tags)
    var_text = " ".join(v.replace("_", " ") for v in variables)
    var_cn = " ".join(vocab.VARIABLES_CN.get(v, "") for v in variables)
    category = f"{vocab.category_en(dataset.category)} {dataset.category}" if dataset.category else ""
    texts = {
        "A": (f"{dataset.title_en}", segment(dataset.title_cn)),
        "B": (f"{keywords_en} {var_text} {category}", segment(f"{keywords_cn} {var_cn} {dataset.category}")),
        "C": (plain_text(dataset.abstract_en), segment(dataset.abstract_cn)),
        "D": (
            plain_text(f"{dataset.source_en} {dataset.process_way_en}"),
            segment(f"{dataset.source_cn} {dataset.process_way_cn}"),
        ),
    }
    words = " ".join(t for t in (dataset.title_en, dataset.title_cn, keywords_en, keywords_cn) if t)
    facets = []
    if dataset.category:
        facets.append(f"category:{dataset.category}")
    facets += [f"keyword:{name}" for name in dict.fromkeys(name for name, _ in tags)]
    facets += [f"variable:{v}" for v in variables]
    facets += [f"spatial_resolution:{v}" for v in vocab.spatial_resolutions(dataset.space_res_en, dataset.space_res_cn)]
    facets += [f"temporal_resolution:{v}" for v in vocab.time_resolutions(dataset.time_res_en, dataset.time_res_cn)]
    if dataset.share_type:
        facets.append(f"share_type:{dataset.share_type}")
    facets += [f"format:{v}" for v in vocab.formats(dataset.format_en, dataset.format_cn)]
    facets.append(f"published:{'yes' if published else 'no'}")
    english = " ".join(t[0] for t in texts.values())
    lexicon = {w.lower() for w in re.findall(r"[A-Za-z][A-Za-z0-9-]{2,}", vocab.normalize(english)) if len(w) <= 100}
    return DocumentFields(
        texts=texts, words=vocab.normalize(words)[:5000], facets=list(dict.fromkeys(facets)), lexicon=lexicon
    )


_DOCUMENT_SQL = " || ".join(
    f"setweight(to_tsvector('english', %s), '{w}') || setweight(to_tsvector('simple', %s), '{w}')" for w in "ABCD"
)
_UPSERT = f"""
INSERT INTO catalog_searchdocument (dataset_id, document, words, title_en, title_cn, date, bbox, period, facets)
VALUES (%s, {_DOCUMENT_SQL}, %s, %s, %s, %s, ST_GeomFromEWKT(%s), tstzrange(%s, %s, '[]'), %s)
ON CONFLICT (dataset_id) DO UPDATE SET document = EXCLUDED.document, words = EXCLUDED.words,
  title_en = EXCLUDED.title_en, title_cn = EXCLUDED.title_cn, date = EXCLUDED.date, bbox = EXCLUDED.bbox,
  period = EXCLUDED.period, facets = EXCLUDED.facets
"""


def document_row(dataset: Dataset, fields: DocumentFields) -> tuple:
    """The parameters of :data:`_UPSERT` for one record."""
    texts = [t for w in "ABCD" for t in fields.texts[w]]
    bbox = dataset.bbox.ewkt if dataset.bbox else None
    return (
        dataset.id,
        *texts,
        fields.words,
        dataset.title_en or dataset.title_cn,
        dataset.title_cn or dataset.title_en,
        dataset.updated or dataset.publish_time or dataset.created,
        bbox,
        dataset.acq_start,
        dataset.acq_end,
        fields.facets,
    )


def write_documents(rows: list[tuple], lexicon: set[str]) -> None:
    """Upsert search documents (:func:`document_row`) and add words to the lexicon, in one transaction."""
    with transaction.atomic(), connection.cursor() as cursor:
        _bump_generation()  # this transaction sees its own documents...
        transaction.on_commit(_bump_generation)  # ...and the others, once they see them, nothing cached before
        cursor.executemany(_UPSERT, rows)
        if lexicon:
            cursor.execute(
                "INSERT INTO catalog_searchword (word) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING",
                [sorted(lexicon)],
            )


def index_datasets(ids: Iterable[str] | None = None) -> int:
    """(Re)build the search documents of the given records (all when ``ids`` is None).

    Called by the importer, the admin and :func:`products.services.publish` in their transactions.
    Returns the number of records indexed.
    """
    for tag in Tag.objects.filter(name_en="", name__in=list(vocab.KEYWORDS)):  # the vocabulary names new tags
        tag.name_en = vocab.KEYWORDS[tag.name]
        tag.save(update_fields=["name_en"])
    qs = Dataset.objects.prefetch_related("tags").order_by("id")
    if ids is not None:
        qs = qs.filter(id__in=list(ids))
    published = set(qs.filter(versions__isnull=False).values_list("id", flat=True).distinct())
    rows, lexicon = [], set()
    for dataset in qs.iterator(chunk_size=500):
        product = product_for_dataset(dataset.id)
        tags = [(t.name, t.name_en) for t in dataset.tags.all()]
        fields = document_fields(dataset, tags, product.variables if product else (), dataset.id in published)
        rows.append(document_row(dataset, fields))
        lexicon |= fields.lexicon
    write_documents(rows, lexicon)
    return len(rows)


# --------------------------------------------------------------------------- querying


@dataclass
class FacetValue:
    key: str
    label: str
    count: int
    selected: bool


@dataclass
class Facet:
    name: str
    label: str
    values: list[FacetValue]


@dataclass
class SearchResult:
    """One page of a search.

    Attributes
    ----------
    datasets : list of Dataset
        The page, in order, each with ``snippet`` and ``title_marked`` (HTML with ``<mark>``) and
        ``rank`` (float, or None when sorted otherwise).
    total : int
        Records matching (all pages).
    facets : list of Facet
        Counts among the matching records, values labelled in the active language.
    corrected : str or None
        The query as searched when misspelt words were replaced (``"evapotranspiration"``).
    fallback : bool
        True when the words matched nothing and records were ranked by trigram similarity.
    """

    datasets: list[Dataset]
    total: int
    facets: list[Facet]
    corrected: str | None = None
    fallback: bool = False
    terms: list[str] = field(default_factory=list)


def _tokens(q: str) -> list[str]:
    """Query words: Chinese runs cut by jieba (precise mode), Latin words as typed (lower case)."""
    out = []
    for token in vocab.TOKEN.findall(q):
        if vocab.is_cjk(token):
            out += [w for w in jieba.cut(token) if w.strip()]
        else:
            out.append(token.lower())
    return out


def _cjk_parts(word: str) -> list[str]:
    """The two-character words jieba's search mode finds inside ``word`` (what the index holds for it)."""
    return [p for p in dict.fromkeys(jieba.cut_for_search(word)) if len(p) == 2 and p != word]


def _corrections(tokens: list[str]) -> dict[str, str]:
    """Misspelt Latin words -> their closest lexicon word (pg_trgm similarity >= CORRECTION_MIN)."""
    candidates = [
        t
        for t in tokens
        if not vocab.is_cjk(t) and len(t) >= 4 and t not in vocab.SYNONYMS and not t.replace(".", "").isdigit()
    ]
    if not candidates:
        return {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT word FROM catalog_searchword WHERE word = ANY(%s)", [candidates])
        known = {row[0] for row in cursor.fetchall()}
        fixes = {}
        for token in candidates:
            if token in known:
                continue
            cursor.execute(
                "SELECT word, similarity(word, %s) AS s FROM catalog_searchword WHERE word %% %s "
                "ORDER BY s DESC, word LIMIT 1",
                [token, token],
            )
            row = cursor.fetchone()
            if row and row[1] >= CORRECTION_MIN:
                fixes[token] = row[0]
    return fixes


def _cjk_alternatives(word: str) -> tuple[list[str], list[str]]:
    """A Chinese word matches itself or all of its two-character parts."""
    alternatives, args = ["plainto_tsquery('simple', %s)"], [word]
    pieces = _cjk_parts(word)
    if pieces:
        alternatives.append("plainto_tsquery('simple', %s)")
        args.append(" ".join(pieces))
    return alternatives, args


def _tsquery(tokens: list[str]) -> tuple[str, list]:
    """SQL of a tsquery that every token must match (see the module docstring), and its parameters."""
    parts, params = [], []
    for token in tokens:
        alternatives, args = [], []
        if vocab.is_cjk(token):
            alternatives, args = _cjk_alternatives(token)
        elif token in vocab.SYNONYMS:
            alternatives.append("to_tsquery('simple', %s)")  # the abbreviation itself: in titles or keywords only
            args.append(f"{re.sub(r'[^a-z0-9]', '', token)}:AB")
            for phrase in vocab.SYNONYMS[token]:
                if vocab.is_cjk(phrase):
                    more, more_args = _cjk_alternatives(phrase)
                else:
                    more, more_args = (
                        ["phraseto_tsquery('english', %s)", "phraseto_tsquery('simple', %s)"],
                        [phrase] * 2,
                    )
                alternatives += more
                args += more_args
        else:
            alternatives += ["plainto_tsquery('english', %s)", "plainto_tsquery('simple', %s)"]
            args += [token, token]
        parts.append("(" + " || ".join(alternatives) + ")")
        params += args
    return " && ".join(parts), params


def _where(params: SearchParams) -> tuple[list[str], list]:
    """SQL conditions on ``d`` (catalog_searchdocument) for the filters, box and period."""
    where, args = [], []
    for name, values in params.filters.items():
        where.append("d.facets && %s::varchar[]")
        args.append([f"{name}:{v}" for v in values])
    if params.bbox:
        west, south, east, north = params.bbox
        boxes = (
            [(west, south, east, north)]
            if west <= east
            else [(west, south, 180.0, north), (-180.0, south, east, north)]
        )
        where.append(
            "(" + " OR ".join(["ST_Intersects(d.bbox, ST_MakeEnvelope(%s, %s, %s, %s, 4326))"] * len(boxes)) + ")"
        )
        args += [v for box in boxes for v in box]
    if params.period:
        where.append("d.period && tstzrange(%s, %s, '[]')")
        args += list(params.period)
    return where, args


def _order(params: SearchParams, ranked: bool) -> str:
    zh = (get_language() or "en").startswith("zh")
    title = "d.title_cn" if zh else "d.title_en"
    if params.sort == "title":
        return f"{title}, d.dataset_id"
    if params.sort == "-date" or (params.sort == "relevance" and not ranked):
        return f"d.date DESC NULLS LAST, {title}, d.dataset_id"
    if params.sort == "date":
        return f"d.date ASC NULLS LAST, {title}, d.dataset_id"
    return f"rank DESC, {title}, d.dataset_id"


CACHE_SECONDS = 600
GENERATION_KEY = "catalog-search-generation"


CACHE_ERRORS = (RedisError, OSError)
_cache_down_until = 0.0  # per process: after a cache failure the search skips the cache for a while


def _cached(call, *args, default=None):
    """``call(*args)`` on the cache; ``default`` while it is down (the search answers from the database,
    failing open as the rate limiter does, and does not wait on the cache again for
    RATELIMIT_RETRY_CACHE_SECONDS)."""
    global _cache_down_until
    if time.monotonic() < _cache_down_until:
        return default
    try:
        return call(*args)
    except CACHE_ERRORS as exc:
        _cache_down_until = time.monotonic() + settings.RATELIMIT_RETRY_CACHE_SECONDS
        log.warning(
            "the search answers without its cache for %s s (%s: %s)",
            settings.RATELIMIT_RETRY_CACHE_SECONDS,
            type(exc).__name__,
            exc,
        )
        return default


def generation() -> int | None:
    """The catalogue's search generation: bumped when any search document changes (cached answers of an
    older generation are never read again); None while the cache is down."""
    return _cached(cache.get_or_set, GENERATION_KEY, 1, None)


def _bump_generation() -> None:
    def bump():
        try:
            cache.incr(GENERATION_KEY)
        except ValueError:  # not set yet (or evicted): any new value retires the old answers
            cache.set(GENERATION_KEY, int(time.time() * 1000), timeout=None)

    _cached(bump)


def search(params: SearchParams, *, offset: int = 0, limit: int = 20, facets: bool = True) -> SearchResult:
    """Run a search: one page of records, the total, and facet counts.

    Answers are cached for :data:`CACHE_SECONDS` per catalogue :func:`generation` (a change of any
    record's search document starts a new one), so a repeated search costs one cache read.

    Parameters
    ----------
    params : SearchParams (see :func:`parse`)
    offset, limit : the page (records ``offset`` to ``offset + limit``)
    facets : compute facet counts (the API's ``facets=0`` and machine clients skip them)

    Returns
    -------
    SearchResult
    """
    zh = (get_language() or "en").startswith("zh")  # the title sort follows the language
    current = generation()
    key = (
        "catalog-search:"
        + hashlib.sha256(
            repr(
                (
                    current,
                    params.q,
                    sorted(params.filters.items()),
                    params.bbox,
                    params.period,
                    params.sort,
                    offset,
                    limit,
                    facets,
                    zh,
                )
            ).encode()
        ).hexdigest()
    )
    found = _cached(cache.get, key) if current is not None else None
    if found is None:
        found = _match(params, offset=offset, limit=limit, facets=facets)
        if current is not None:
            _cached(cache.set, key, found, CACHE_SECONDS)
    by_id = Dataset.objects.defer("raw").prefetch_related("tags").in_bulk([row[0] for row in found["page"]])
    terms = _highlight_terms(found["searched"], params.q if found["fallback"] else "")
    datasets = []
    for dataset_id, rank in found["page"]:
        dataset = by_id.get(dataset_id)
        if dataset is None:  # deleted since the answer was cached
            continue
        dataset.rank = rank
        dataset.title_marked = highlight(dataset.title, terms)
        dataset.snippet = snippet(dataset.abstract, terms)
        datasets.append(dataset)
    return SearchResult(
        datasets=datasets,
        total=found["total"],
        facets=facet_list(found["counts"], params),
        corrected=found["corrected"],
        fallback=found["fallback"],
        terms=terms,
    )


def _match(params: SearchParams, *, offset: int, limit: int, facets: bool) -> dict:
    """The database's answer: ``page`` [(id, rank)], ``total``, facet ``counts`` [(key, n)], ``searched``
    (the words after correction), ``corrected`` and ``fallback`` (see :class:`SearchResult`)."""
    tokens = _tokens(params.q)
    fixes = _corrections(tokens) if tokens else {}
    searched = [fixes.get(t, t) for t in tokens]
    where, args = _where(params)
    fallback = False
    with connection.cursor() as cursor:
        if searched:
            match_sql, match_args = _tsquery(searched)
            cursor.execute("SELECT numnode(" + match_sql + ")", match_args)
            if not cursor.fetchone()[0]:  # only stop words ("the"): no words to search
                searched = []
        if searched:
            from_sql = f"catalog_searchdocument d, (SELECT {match_sql} AS query) AS q"
            cond, cond_args = ["d.document @@ q.query", *where], [*match_args, *args]
            rank_sql, rank_args = "ts_rank(d.document, q.query)", []
            counts, total = _counts(cursor, from_sql, cond, cond_args, facets)
            if total == 0:  # words that match nothing: rank titles and keywords by trigrams
                fallback = True
        if fallback:
            from_sql = "catalog_searchdocument d"
            cond = ["%s <%% d.words", *where]  # word_similarity >= pg_trgm.word_similarity_threshold (0.6)
            cond_args = [params.q, *args]
            rank_sql, rank_args = "word_similarity(%s, d.words)", [params.q]
            counts, total = _counts(cursor, from_sql, cond, cond_args, facets)
        elif not searched:
            from_sql, cond, cond_args = "catalog_searchdocument d", where, args
            rank_sql, rank_args = "NULL::float", []
            counts, total = _counts(cursor, from_sql, cond, cond_args, facets)
        where_sql = f" WHERE {' AND '.join(cond)}" if cond else ""
        cursor.execute(
            f"SELECT d.dataset_id, {rank_sql} AS rank FROM {from_sql}{where_sql} "
            f"ORDER BY {_order(params, bool(searched) or fallback)} LIMIT %s OFFSET %s",
            [*rank_args, *cond_args, limit, offset],
        )
        page = cursor.fetchall()
    return {
        "page": page,
        "total": total,
        "counts": counts,
        "searched": searched,
        "fallback": fallback,
        "corrected": " ".join(searched) if fixes and searched else None,
    }


def _counts(cursor, from_sql: str, cond: list[str], args: list, facets: bool) -> tuple[list[tuple[str, int]], int]:
    """Facet counts and the number of matching records in one scan (every record has exactly one
    ``published:`` key, so their counts add up to the total)."""
    where_sql = f" WHERE {' AND '.join(cond)}" if cond else ""
    if not facets:
        cursor.execute(f"SELECT count(*) FROM {from_sql}{where_sql}", args)
        return [], cursor.fetchone()[0]
    cursor.execute(f"SELECT k, count(*) FROM {from_sql}, unnest(d.facets) AS k{where_sql} GROUP BY k", args)
    counts = cursor.fetchall()
    return counts, sum(n for k, n in counts if k.startswith("published:"))


# --------------------------------------------------------------------------- facets and snippets


def facet_label(name: str, value: str, keywords_en: Mapping[str, str] | None = None) -> str:
    """A facet value's label in the active language (``keywords_en``: the tags' English names)."""
    zh = (get_language() or "en").startswith("zh")
    if name == "category":
        return value if zh else vocab.category_en(value)
    if name == "keyword":
        return value if zh else (keywords_en or {}).get(value) or vocab.keyword_en(value)
    if name == "variable":
        return vocab.VARIABLES_CN.get(value, value) if zh else value
    if name == "temporal_resolution":
        en, cn, _spellings = vocab.TIME_RESOLUTIONS.get(value, (value, value, ()))
        return cn if zh else en
    if name == "share_type":
        en, cn = vocab.SHARE_TYPES.get(value, (value, value))
        return cn if zh else en
    if name == "published":
        return str({"yes": _("yes"), "no": _("no")}.get(value, value))
    return value


def facet_list(counts: list[tuple[str, int]], params: SearchParams) -> list[Facet]:
    """Facet counts grouped by facet in :data:`FACETS` order, most frequent values first (selected
    values always shown, even when the other filters leave none of them)."""
    grouped: dict[str, list[tuple[str, int]]] = {name: [] for name in FACETS}
    for key, count in counts:
        name, _, value = key.partition(":")
        if name in grouped:
            grouped[name].append((value, count))
    names = {v for v, _ in grouped["keyword"]} | set(params.filters.get("keyword", ()))
    keywords_en = dict(Tag.objects.filter(name__in=names).exclude(name_en="").values_list("name", "name_en"))
    out = []
    for name, values in grouped.items():
        selected = set(params.filters.get(name, ()))

        def label(value, name=name):
            return facet_label(name, value, keywords_en)

        values.sort(key=lambda vc: (-vc[1], label(vc[0])))
        shown = values[:FACET_VALUES_SHOWN] + [(v, c) for v, c in values[FACET_VALUES_SHOWN:] if v in selected]
        shown += [(v, 0) for v in selected if v not in {s for s, _ in shown}]
        if shown:
            out.append(
                Facet(
                    name=name,
                    label=str(FACETS[name]),
                    values=[FacetValue(key=v, label=label(v), count=c, selected=v in selected) for v, c in shown],
                )
            )
    return out


def _highlight_terms(tokens: list[str], raw: str) -> list[str]:
    """What to mark in titles and snippets: the words searched, their abbreviations' expansions,
    and for Latin words the stem-like prefix (``moisture`` marks "moist..."), longest first."""
    terms: set[str] = set()
    for token in tokens:
        terms.add(token)
        for phrase in vocab.SYNONYMS.get(token, ()):
            terms.add(phrase.lower())
        if vocab.is_cjk(token):
            terms.update(_cjk_parts(token))
    for word in raw.split():
        terms.add(word.lower())
    return sorted((t for t in terms if t), key=len, reverse=True)


def _pattern(terms: list[str]) -> re.Pattern | None:
    alternatives = []
    for term in terms:
        if vocab.is_cjk(term.replace(" ", "")):
            alternatives.append(re.escape(term))
        else:
            stem = term if len(term) <= 4 else term[: max(4, len(term) - 2)]
            alternatives.append(r"(?<![^\W_])" + re.escape(stem).replace(r"\ ", r"\s+") + r"[^\W_]*")
    return re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None


def highlight(text: str, terms: list[str]) -> SafeString:
    """``text`` HTML-escaped, the search terms wrapped in ``<mark>``."""
    text = text or ""
    pattern = _pattern(terms)
    if pattern is None:
        return mark_safe(html.escape(text))
    out, last = [], 0
    for m in pattern.finditer(text):
        out += [html.escape(text[last : m.start()]), "<mark>", html.escape(m.group(0)), "</mark>"]
        last = m.end()
    out.append(html.escape(text[last:]))
    return mark_safe("".join(out))


def snippet(abstract_html: str, terms: list[str], width: int = 260) -> SafeString:
    """About ``width`` characters of the abstract around the first search term, terms marked."""
    text = plain_text(abstract_html)
    pattern = _pattern(terms)
    m = pattern.search(text) if pattern else None
    start = 0 if m is None else max(0, m.start() - width // 3)
    piece = text[start : start + width]
    prefix, suffix = ("… " if start else ""), (" …" if start + width < len(text) else "")
    return mark_safe(html.escape(prefix) + highlight(piece, terms) + html.escape(suffix))


def facets_as_dicts(facets: list[Facet]) -> list[dict]:
    """Facet counts as JSON: ``[{"name", "label", "values": [{"value", "label", "count", "selected"}]}]``."""
    return [
        {
            "name": f.name,
            "label": f.label,
            "values": [{"value": v.key, "label": v.label, "count": v.count, "selected": v.selected} for v in f.values],
        }
        for f in facets
    ]


MAX_PAGE = 500


def page_number(text: str | None) -> int:
    """The list page's ``page`` (1 to :data:`MAX_PAGE`). Raises SearchError otherwise."""
    if text in (None, ""):
        return 1
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text[:6]) <= MAX_PAGE or len(text) > 6:
        raise SearchError("page", f"expected a whole number from 1 to {MAX_PAGE}, got {text[:20]!r}")
    return int(text)


def facet_links(facets: list[Facet], params: SearchParams) -> list[dict]:
    """Facets for the list page: each value with the query string that toggles it (page reset)."""
    out = []
    for f in facets:
        values = []
        for v in f.values:
            chosen = list(params.filters.get(f.name, ()))
            chosen = [c for c in chosen if c != v.key] if v.selected else [*chosen, v.key]
            filters = {**params.filters, f.name: tuple(chosen)}
            toggled = SearchParams(
                q=params.q,
                filters={k: vs for k, vs in filters.items() if vs},
                bbox=params.bbox,
                period=params.period,
                sort=params.sort,
            )
            values.append({"value": v, "query": toggled.query_string()})
        out.append({"name": f.name, "label": f.label, "values": values})
    return out


def sort_choices() -> list[tuple[str, str]]:
    """The list page's sort menu: (``sort`` value, label in the active language), :data:`SORTS` with "-date" first."""
    return [
        ("relevance", str(_("relevance"))),
        ("-date", str(_("newest first"))),
        ("date", str(_("oldest first"))),
        ("title", str(_("title"))),
    ]
