"""DRF's JSON parser with a bound on nesting: over-deep JSON is a 400, never a RecursionError (500)."""

from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils import json


def depth(value) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0, ``[]`` and ``{}`` are 1), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            deepest = max(deepest, level)
            continue
        deepest = max(deepest, level + 1)
        stack.extend((child, level + 1) for child in item)
    return deepest


class BoundedJSONParser(JSONParser):
    """JSON bodies nested at most ``JSON_MAX_DEPTH`` deep, strict (no NaN/Infinity), 400 otherwise."""

    strict = True

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            data = json.loads(stream.read().decode(encoding))  # DRF's: NaN and Infinity refused
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {settings.JSON_MAX_DEPTH} levels") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if depth(data) > settings.JSON_MAX_DEPTH:
            raise ParseError(f"JSON parse error - nested deeper than {settings.JSON_MAX_DEPTH} levels")
        return data
