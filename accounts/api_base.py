"""The base of every API view: a key at the door, and the team it may reach.

- **Keys.** ``Authorization: Bearer <key>``; the key stands for one team or one reseller
  (``ApiClient``). No key, an unknown key or a revoked key: 401.
- **Scope.** :meth:`ApiView.get_team` is the one place that turns a slug into a team for a
  key: another team (or a team another reseller serves) is a 404, never a 403, so a key
  can't learn which slugs exist elsewhere.

JSON, the error shape and the fields come from ``core.api``.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.request import Request

from accounts import audit
from accounts.authentication import ApiClient, ApiKeyAuthentication, ApiKeyRateThrottle, HasApiKey
from accounts.models import Reseller, Team
from core.api import ApiError, JsonApiView


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key, sent as `Authorization: Bearer flx_…`. A team key acts for its team; "
            "a reseller key for its reseller and the teams it serves.",
        }


class ApiView(JsonApiView):
    """Base of every API view: key authentication, a per-key throttle, team scope."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasApiKey]
    throttle_classes = [ApiKeyRateThrottle]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        token = audit.api_actor.set(None)
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            audit.api_actor.reset(token)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # Audit events written by the services name the key as the actor ("who").
        audit.api_actor.set(request.user.label)

    @property
    def client(self) -> ApiClient:
        return self.request.user

    def get_team(self, slug: str, *, team_key: bool = True, reseller_key: bool = False) -> Team:
        """The team ``slug`` names, as this key may reach it, or 404.

        ``team_key`` / ``reseller_key`` say which kind of key the endpoint takes; the other
        kind gets a 403 for a team it can reach (and the same 404 for one it can't).
        Times in the answer are shown in the team's time zone.
        """
        client = self.client
        if client.team is not None:
            team = client.team if client.team.slug == slug else None
        else:
            team = Team.objects.select_related("reseller").filter(slug=slug, reseller_id=client.reseller.pk).first()
        if team is None:
            raise ApiError(404, "not_found", f"No team “{slug[:100]}” for this key.")
        if client.team is not None and not team_key:
            raise ApiError(403, "forbidden", "This needs a reseller key; a team key can't do it.")
        if client.reseller is not None and not reseller_key:
            raise ApiError(403, "forbidden", "This needs the team's own key; a reseller key can't do it.")
        timezone.activate(team.tz)
        return team

    def require_reseller(self) -> Reseller:
        if self.client.reseller is None:
            raise ApiError(403, "forbidden", "This needs a reseller key; a team key can't do it.")
        return self.client.reseller
