"""``{% map_config versions user chosen as config %}``: what the dataset page's map needs (None without a grid)."""

from __future__ import annotations

from django import template

from portal.catalog import access
from portal.maps import services

register = template.Library()


@register.simple_tag
def map_config(versions, user=None, chosen=None):
    """:func:`portal.maps.services.chosen_page_config`: the map of the version numbered ``chosen`` among ``versions``
    (the page's ``?map_version=``; the latest when empty or not one of them), None without a grid, with
    ``allowed`` (whether ``user`` may download, so see the map), ``need`` (what would let them in),
    ``latest`` (the latest version's number) and ``choices`` (the numbers of the versions with a grid,
    newest first, for the page's version choice)."""
    config = services.chosen_page_config(versions, chosen)
    if config is not None:
        decision = access.decide(user, config.pop("record"))
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
