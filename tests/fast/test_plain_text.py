"""The one conversion of stored rich text to plain text (portal.catalog.html.plain_text; no database)."""

from __future__ import annotations

from portal.catalog.html import plain_text, sanitize_html


def test_tags_go_entities_are_decoded_and_whitespace_collapses():
    assert (
        plain_text("<p>Soil  moisture&emsp;(SM)</p>\n<p>and&nbsp;ET &amp; TWS</p>") == "Soil moisture (SM) and ET & TWS"
    )
    assert plain_text(None) == "" and plain_text("") == "" and plain_text("  plain\ttext ") == "plain text"


def test_sanitized_text_is_escaped_once_by_its_writer_not_twice():
    stored = sanitize_html("A < B & C <script>alert(1)</script>")
    assert "&amp;" in stored and plain_text(stored) == "A < B & C"


def test_a_limit_cuts_the_text():
    assert plain_text("<b>abcdef</b>", 3) == "abc" and plain_text("abc", None) == "abc"
