"""API keys at the door of the HTTP API: who is calling, and how often.

Kept apart from ``accounts.api_base`` (the views' shared base) because DRF imports the classes
named in settings while it loads its own views: this module must not import those.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.throttling import SimpleRateThrottle

from accounts.access import api_key_refusal
from accounts.models import ApiKey, Reseller, Team
from accounts.selectors import api_key_for_secret
from accounts.services import touch_api_key

if TYPE_CHECKING:
    from rest_framework.request import Request

logger = logging.getLogger(__name__)

# Keys are "flx_" and 43 characters; anything much longer is not worth hashing.
MAX_KEY_LENGTH = 200


@dataclass
class ApiClient:
    """Who is calling: the key, and the one team or reseller it acts for."""

    key: ApiKey

    is_authenticated = True
    is_anonymous = False
    is_active = True
    pk = None

    @property
    def team(self) -> Team | None:
        return self.key.team

    @property
    def reseller(self) -> Reseller | None:
        return self.key.reseller

    @property
    def label(self) -> str:
        """How the audit trail names the caller: the key and who made it."""
        return self.key.label


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer <key>``. The key is looked up by its hash; use is noted at
    most once a minute (``touch_api_key``)."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ApiClient, ApiKey] | None:
        header = get_authorization_header(request).split()
        if not header:
            return None
        if header[0].lower() != self.keyword.lower().encode():
            raise exceptions.AuthenticationFailed("Send the key as “Authorization: Bearer <key>”.")
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("The Authorization header must be “Bearer <key>”, with one key.")
        try:
            secret = header[1].decode("ascii")
        except UnicodeDecodeError:
            secret = ""
        key = api_key_for_secret(secret=secret) if 0 < len(secret) <= MAX_KEY_LENGTH else None
        if key is None:
            raise exceptions.AuthenticationFailed("The API key is not valid or has been revoked.")
        refusal = api_key_refusal(key)
        if refusal is not None:
            raise exceptions.AuthenticationFailed(refusal)
        touch_api_key(key=key)
        return ApiClient(key=key), key

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) when the key is missing or wrong.
        return 'Bearer realm="api"'


class HasApiKey(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, ApiKey)


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Requests per key (``FLEX_API_THROTTLE_RATE``, e.g. ``1200/minute``); over it, 429."""

    scope = "api_key"

    def get_rate(self) -> str:
        # Read at call time, not import time, so that settings (and tests) can change it.
        return settings.FLEX_API_THROTTLE_RATE

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not isinstance(request.auth, ApiKey):
            return None
        # The hash, not the row id: ids come back in a fresh test database, hashes do not.
        return f"flexadmin:api-throttle:{request.auth.key_hash[:32]}"

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception:  # a cache that does not answer must not take the API down with it
            logger.warning("API throttle cache unavailable; request allowed", exc_info=True)
            return True
