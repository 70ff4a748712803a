"""The one sanitizer of stored rich text (record abstracts, sources, methods, quality), wherever it
comes from: the TPDC importer and every save (the admin included), so no stored script reaches a page."""
from __future__ import annotations

import nh3

HTML_TAGS = {"p", "br", "b", "strong", "i", "em", "u", "sub", "sup", "ul", "ol", "li", "a", "span", "table",
             "thead", "tbody", "tr", "td", "th", "h3", "h4", "blockquote"}


def sanitize_html(text: str | None) -> str:
    """Sanitize rich text with nh3, the Ammonia sanitizer (an allow-list of harmless tags; links made safe).

    Idempotent: sanitizing sanitized text changes nothing.
    """
    if not text:
        return ""
    return nh3.clean(text, tags=HTML_TAGS, attributes={"a": {"href", "title"}}, link_rel="noopener noreferrer")
