"""Forms of the profile (a new API token) and of the dataset page (an application for access)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import ApiToken
from .tokens import MAX_DAYS


class AsciiIntegerField(forms.IntegerField):
    """An integer written in ASCII digits only (Python's ``int`` also reads other scripts' digits)."""

    def to_python(self, value):
        text = "" if value is None else str(value).strip()
        if text and not (text.isascii() and text.lstrip("+-").isdigit()):
            raise forms.ValidationError(_("Enter a whole number in ASCII digits (0-9)."), code="invalid")
        return super().to_python(value)


class TokenForm(forms.Form):
    """A new personal API token: its name, scopes and lifetime in days."""

    name = forms.CharField(
        label=_("Name"), max_length=100, help_text=_("what the token is for, e.g. 'laptop notebook'")
    )
    scopes = forms.MultipleChoiceField(
        label=_("Scopes"),
        widget=forms.CheckboxSelectMultiple,
        choices=[
            (ApiToken.Scope.READ.value, _("read (records, estimates, job status)")),
            (ApiToken.Scope.DOWNLOAD.value, _("download (files, subsets, OPeNDAP, jobs)")),
        ],
        initial=[ApiToken.Scope.READ.value, ApiToken.Scope.DOWNLOAD.value],
    )
    days = AsciiIntegerField(label=_("Expires after (days)"), min_value=1, max_value=MAX_DAYS, initial=90)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "token")
        super().__init__(*args, **kwargs)


class ApplicationForm(forms.Form):
    """An application for a protected dataset: the purpose (required) and the institution."""

    purpose = forms.CharField(
        label=_("Purpose"),
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("what the data will be used for (project, study area, period)"),
    )
    institution = forms.CharField(label=_("Institution"), max_length=300, required=False)
