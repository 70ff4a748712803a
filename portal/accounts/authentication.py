"""DRF's view of :class:`~portal.accounts.middleware.TokenAuthenticationMiddleware`'s work."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication

from .tokens import BEARER_CHALLENGE


class HeaderAuthentication(BaseAuthentication):
    """The user the ``Authorization`` header named (token or Basic), already checked by the middleware.

    Its ``authenticate_header`` makes DRF answer 401 (not 403) to an anonymous request that needs a user.
    """

    def authenticate(self, request):
        raw = request._request
        if "HTTP_AUTHORIZATION" in raw.META and getattr(raw, "user", None) is not None and raw.user.is_authenticated:
            return raw.user, getattr(raw, "api_token", None)
        return None

    def authenticate_header(self, request):
        return BEARER_CHALLENGE


class HeaderAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "portal.accounts.authentication.HeaderAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "hp_<prefix>_<secret> (personal API token)",
            "description": "A personal API token from your profile, as 'Authorization: Bearer <token>' "
            "(or 'Token <token>', or the password of HTTP Basic).",
        }
