"""The profile (downloads, jobs, licences, applications, tokens, limits) and the account forms' POSTs.

Thin views over :mod:`portal.accounts.services`. Account pages are for a browser session only: a
request that authenticates with an ``Authorization`` header (an API token or HTTP Basic) is
refused, so a token can never create, see or revoke tokens.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from . import services
from .forms import ApplicationForm, TokenForm

NEW_TOKEN = "accounts.new_token"


def session_only(view):
    """Refuse (403) a request authenticated by an ``Authorization`` header: account pages need a browser session."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if "HTTP_AUTHORIZATION" in request.META:
            return JsonResponse(
                {
                    "detail": "account pages need a browser session: sign in at "
                    f"{reverse('account_login')}, not with an API token or HTTP Basic"
                },
                status=403,
            )
        return view(request, *args, **kwargs)

    return wrapper


def problem(request, exc: services.AccountError):
    """The page of a refused account request, with the status ``exc`` names."""
    return render(request, "accounts/problem.html", {"message": str(exc), "field": exc.field}, status=exc.status)


def _profile_page(request, token_form: TokenForm, status: int = 200):
    context = services.profile(request.user)
    context.update(token_form=token_form, new_token=request.session.pop(NEW_TOKEN, None))
    return render(request, "accounts/profile.html", context, status=status)


@session_only
@login_required
@require_http_methods(["GET", "HEAD"])
def profile(request):
    """The signed-in user's profile; a token created just before is shown here once."""
    return _profile_page(request, TokenForm())


@session_only
@login_required
@require_POST
def token_create(request):
    """Create a token from the profile's form; its plain value is kept in the session for one page view."""
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _profile_page(request, form, status=400)
    try:
        token, raw = services.create_token(
            request.user, form.cleaned_data["name"], form.cleaned_data["scopes"], form.cleaned_data["days"]
        )
    except services.AccountError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        return _profile_page(request, form, status=exc.status)
    request.session[NEW_TOKEN] = {"id": token.pk, "name": token.name, "token": raw}
    return redirect(reverse("accounts:profile") + "#tokens")


@session_only
@login_required
@require_POST
def token_revoke(request, token_id: int):
    """Revoke one of the user's tokens."""
    try:
        token = services.revoke_token(request.user, token_id)
    except services.AccountError as exc:
        return problem(request, exc)
    messages.success(request, _("The token “%(name)s” was revoked.") % {"name": token.name})
    return redirect(reverse("accounts:profile") + "#tokens")


@session_only
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def apply(request, dataset_id: str):
    """The application form of a protected dataset (also on its page) and its POST."""
    try:
        dataset = services.find_dataset(dataset_id)
    except services.AccountError as exc:
        return problem(request, exc)
    form = ApplicationForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.apply_for_access(
                    request.user, dataset, form.cleaned_data["purpose"], form.cleaned_data["institution"]
                )
            except services.AccountError as exc:
                if exc.field not in form.fields:
                    return problem(request, exc)
                form.add_error(exc.field, str(exc))
            else:
                messages.success(
                    request,
                    _(
                        "Your application was sent to the data managers; you will be told "
                        "by e-mail and on your profile."
                    ),
                )
                return redirect(reverse("catalog:dataset_detail", args=[dataset.pk]) + "#access")
        status = 400
    return render(request, "accounts/apply.html", {"dataset": dataset, "form": form}, status=status)


@session_only
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def licence(request, dataset_id: str):
    """The licence terms of a dataset that asks for acceptance, and the POST that accepts them."""
    try:
        dataset = services.find_dataset(dataset_id)
        if request.method == "POST":
            services.accept_licence(request.user, dataset)
            messages.success(request, _("You accepted the licence of this dataset."))
            return redirect(reverse("catalog:dataset_detail", args=[dataset.pk]) + "#access")
    except services.AccountError as exc:
        return problem(request, exc)
    return render(
        request, "accounts/licence.html", {"dataset": dataset, "accepted": services.has_accepted(request.user, dataset)}
    )
