"""Template filters for validation scores."""

from django import template

from portal.catalog import splits

register = template.Library()


@register.filter
def reason_text(reason: str) -> str:
    """A stored ``ValidationResult.not_meaningful`` reason in the visitor's language (unknown ones as stored)."""
    return str(splits.NOT_MEANINGFUL.get(reason, reason)) if reason else ""
