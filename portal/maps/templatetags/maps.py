"""``{% map_config version as config %}``: what the dataset page's map needs (None without a grid)."""

from __future__ import annotations

from django import template

from portal.catalog import access
from portal.maps import services

register = template.Library()


@register.simple_tag
def map_config(version, user=None):
    """:func:`portal.maps.services.page_config` of ``version`` (None for no version or no grid), with
    ``allowed`` (whether ``user`` may download, so see the map) and ``need`` (what would let them in)."""
    if version is None:
        return None
    config = services.page_config(version)
    if config is not None:
        decision = access.decide(user, version.dataset)
        config.update(allowed=decision.allowed, need=decision.need)
    return config


@register.simple_tag
def quicklook_urls(datasets, user=None) -> dict[str, str]:
    """``{dataset id: quicklook URL}`` for the datasets of a list page whose latest version holds a grid that
    ``user`` may see (one query for the whole page: the NetCDF files of their versions)."""
    return services.quicklook_paths([d for d in datasets if access.can_download(user, d)])


@register.filter
def lookup(mapping, key):
    """``mapping[key]`` in a template ("" when missing)."""
    return mapping.get(key, "") if mapping else ""
