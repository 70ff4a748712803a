"""Token and HTTP Basic authentication for the data front doors (API, EDR, OPeNDAP, file downloads, jobs).

After Django's session middleware: a request with an ``Authorization`` header is that user for
this request only (no session is created), its token's scopes on ``request.user.token_scopes``.
A wrong token or password is a 401 naming the problem.

Two rules keep a header from doing more than a script needs:

* account and admin pages (``/accounts/``, ``/admin/``) ignore the header: they need a browser
  session, so a token (even a read-only one) can never change the account it belongs to;
* HTTP Basic is for reading (GET, HEAD, OPTIONS: OPeNDAP clients and ``~/.netrc``): a browser
  replays Basic credentials it was once given on any request to the site, cross-site forms
  included, so a POST with Basic would be a CSRF hole. Writes take a Bearer (or Token) header,
  which no browser adds by itself; such requests carry no cookie and CSRF does not apply.
"""

from __future__ import annotations

from django.http import JsonResponse

from .tokens import BEARER_CHALLENGE, InvalidCredentials, from_request

SESSION_ONLY = ("/accounts/", "/admin/")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class TokenAuthenticationMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith(SESSION_ONLY):
            return self.get_response(request)
        try:
            credentials = from_request(request)
        except InvalidCredentials as exc:
            return JsonResponse({"detail": str(exc)}, status=401, headers={"WWW-Authenticate": BEARER_CHALLENGE})
        if credentials is None:
            return self.get_response(request)
        if credentials.scheme == "basic" and request.method not in SAFE_METHODS:
            return JsonResponse(
                {
                    "detail": f"HTTP Basic is for reading only: send {request.method} requests with "
                    "'Authorization: Bearer <API token>'"
                },
                status=401,
                headers={"WWW-Authenticate": BEARER_CHALLENGE},
            )
        user = credentials.user
        if credentials.token is not None:
            user.token_scopes = frozenset(credentials.token.scopes)
        request.user = user
        request.api_token = credentials.token
        request._dont_enforce_csrf_checks = credentials.scheme != "basic"
        return self.get_response(request)
