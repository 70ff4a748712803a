"""``{% access_panel dataset %}``: what the dataset page shows a user about access to ``dataset``.

The page asks :func:`portal.catalog.access.decide` and shows, by its ``need``: a sign-in link
(``login``), a verification notice (``verify``), the application form (``apply``, and again after
``refused`` with the refusal and its reply), a pending notice (``pending``), the licence terms with
an "I accept" button (``licence``), or nothing but the state of an approved application when allowed.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django import template
from django.urls import reverse

from portal.accounts import services
from portal.accounts.forms import ApplicationForm
from portal.catalog import access

register = template.Library()


@register.inclusion_tag("accounts/_access_panel.html", takes_context=True)
def access_panel(context, dataset):
    """The access panel of ``dataset`` for the request's user (see the module's docstring)."""
    request = context["request"]
    user = request.user
    decision = access.decide(user, dataset)
    page = reverse("catalog:dataset_detail", args=[dataset.pk])
    return {
        "dataset": dataset,
        "decision": decision,
        "need": decision.need,
        "application": services.latest_application(user, dataset),
        "form": ApplicationForm(),
        "protected": access.share_type(dataset) == access.Dataset.ShareType.PROTECTED,
        "login_url": reverse("account_login") + "?" + urlencode({"next": page}),
        "signup_url": reverse("account_signup") + "?" + urlencode({"next": page}),
        "csrf_token": context.get("csrf_token"),
        "LANGUAGE_CODE": context.get("LANGUAGE_CODE"),
        "request": request,
    }
