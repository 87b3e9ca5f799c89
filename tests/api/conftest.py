"""API fixtures: keys for the personas' team and reseller (and for the outsiders), and a
client that speaks JSON with a key."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Reseller
from billing import services as billing_services


@dataclass
class Keys:
    team: str  # the personas' team ("own-team")
    reseller: str  # its reseller ("alder")
    other_team: str  # another team, another reseller
    other_reseller: str


@pytest.fixture
def keys(personas) -> Keys:
    def make(**owner: Any) -> str:
        return account_services.create_api_key(name="tests", actor=None, **owner)[1]

    return Keys(
        team=make(team=personas.team),
        reseller=make(reseller=personas.team.reseller),
        other_team=make(team=personas.other_team),
        other_reseller=make(reseller=Reseller.objects.get(slug="other-partners")),
    )


class ApiClient:
    """``api.post("/api/v1/...", {...}, key=...)`` -> response with ``.json()``."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def request(self, method: str, path: str, data: Any = None, *, key: str | None = None, **extra: Any):
        headers = extra.pop("headers", {})
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        body = extra.pop("body", None)
        if body is None and data is not None:
            body = json.dumps(data)
        content_type = extra.pop("content_type", "application/json")
        return self.client.generic(method, path, body or "", content_type=content_type, headers=headers, **extra)

    def get(self, path: str, **kwargs: Any):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, data: Any = None, **kwargs: Any):
        return self.request("POST", path, data, **kwargs)

    def put(self, path: str, data: Any = None, **kwargs: Any):
        return self.request("PUT", path, data, **kwargs)

    def delete(self, path: str, **kwargs: Any):
        return self.request("DELETE", path, **kwargs)


@pytest.fixture
def api(client) -> ApiClient:
    return ApiClient(client)


@pytest.fixture
def assigned(personas):
    """The member may spend tokens on every product."""
    billing_services.assign_flex(
        team=personas.team, user=personas.member, products="all", actor=None, at=datetime(2022, 1, 1, tzinfo=UTC)
    )
    return personas.member


@pytest.fixture
def pack(personas):
    """1000 tokens bought a week ago (valid for a year)."""
    at = timezone.now() - timedelta(days=7)
    return billing_services.record_purchase(team=personas.team, reference="PO-1", tokens=1000, purchased_at=at)[0]


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]
