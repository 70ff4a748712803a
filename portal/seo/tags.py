"""Template library ``seo`` (registered in settings.TEMPLATES): ``{% page_meta as head_meta %}``."""

from django import template

from . import services

register = template.Library()


@register.simple_tag(takes_context=True)
def page_meta(context):
    """The page's head values (:func:`portal.seo.services.page_meta`), from the request and, on a
    dataset page, the ``dataset`` in the context."""
    return services.page_meta(context.get("request"), context.get("dataset"))
