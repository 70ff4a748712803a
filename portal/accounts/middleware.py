"""Token and HTTP Basic authentication for every front door (API, EDR, OPeNDAP, file downloads).

After Django's session middleware: a request with an ``Authorization`` header is that user for
this request only (no session is created), its token's scopes on ``request.user.token_scopes``;
such a request carries no cookie, so CSRF does not apply. A wrong token or password is a 401
naming the problem, whatever the path.
"""
from __future__ import annotations

from django.http import JsonResponse

from .tokens import InvalidCredentials, from_request


class TokenAuthenticationMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            credentials = from_request(request)
        except InvalidCredentials as exc:
            return JsonResponse({"detail": str(exc)}, status=401,
                                headers={"WWW-Authenticate": 'Bearer realm="data portal"'})
        if credentials is not None:
            user = credentials.user
            if credentials.token is not None:
                user.token_scopes = frozenset(credentials.token.scopes)
            request.user = user
            request.api_token = credentials.token
            request._dont_enforce_csrf_checks = True
        return self.get_response(request)
