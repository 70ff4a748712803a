"""``{% closure_link dataset as url %}``: the closure page's address when ``dataset`` is the TWS or the ET product."""

from django import template
from django.urls import reverse

from portal.closure.services import dataset_ids

register = template.Library()


@register.simple_tag
def closure_link(dataset) -> str:
    """The address of /water-balance/ for the TWS and ET datasets, else an empty string."""
    return reverse("closure:page") if getattr(dataset, "id", None) in dataset_ids() else ""
