"""Stored rich text (record abstracts, sources, methods, quality): the one sanitizer, wherever the
text comes from (the TPDC importer and every save, the admin included, so no stored script reaches
a page), and the one conversion to plain text (search index, exports, STAC, records, NetCDF
attributes, page descriptions)."""

from __future__ import annotations

import html
import re

import nh3
from django.utils.html import strip_tags

HTML_TAGS = {
    "p",
    "br",
    "b",
    "strong",
    "i",
    "em",
    "u",
    "sub",
    "sup",
    "ul",
    "ol",
    "li",
    "a",
    "span",
    "table",
    "thead",
    "tbody",
    "tr",
    "td",
    "th",
    "h3",
    "h4",
    "blockquote",
}


def sanitize_html(text: str | None) -> str:
    """Sanitize rich text with nh3, the Ammonia sanitizer (an allow-list of harmless tags; links made safe).

    Idempotent: sanitizing sanitized text changes nothing.
    """
    if not text:
        return ""
    return nh3.clean(text, tags=HTML_TAGS, attributes={"a": {"href", "title"}}, link_rel="noopener noreferrer")


def plain_text(text: str | None, limit: int | None = None) -> str:
    """Plain text of a (sanitized) rich-text field: tags dropped, entities decoded, whitespace collapsed.

    Every HTML entity is decoded (``&amp;`` to ``&``, ``&emsp;`` and ``&nbsp;`` to spaces), so the
    text is escaped once, by whatever writes it (XML, JSON, a template), never twice.

    Parameters
    ----------
    text : str or None
        HTML (as stored, after :func:`sanitize_html`) or plain text; None is the empty text.
    limit : int, optional
        Cut the result to at most this many characters.

    Returns
    -------
    str
        One line: runs of whitespace (Unicode spaces included) become one space, none at the ends.
    """
    out = re.sub(r"\s+", " ", html.unescape(strip_tags(text or ""))).strip()
    return out[:limit] if limit else out
