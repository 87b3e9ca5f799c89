"""What every endpoint shares: no key is 401, too many requests is 429, and a key never
reaches another team (404), whichever kind of key it is."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from tests.api.conftest import error_of

# (method, path under own-team, body, the kind of key the endpoint takes)
ENDPOINTS = [
    ("POST", "/api/v1/teams/own-team/packs", {"reference": "E-1", "tokens": 5}, "reseller"),
    ("GET", "/api/v1/teams/own-team/packs", None, "team"),
    (
        "POST",
        "/api/v1/teams/own-team/cloud-credits",
        {"credits": "5", "granted_at": "2022-06-01T00:00:00Z"},
        "reseller",
    ),
    ("PUT", "/api/v1/teams/own-team/members/new@own.example", {"role": "member"}, "team"),
    ("PUT", "/api/v1/teams/own-team/assignments/member@own.example", {"products": "all"}, "team"),
    ("DELETE", "/api/v1/teams/own-team/assignments/member@own.example", None, "team"),
    ("POST", "/api/v1/teams/own-team/usage-events", {"events": [{"id": "e"}]}, "team"),
    ("POST", "/api/v1/teams/own-team/usage-events/e-1/refund", None, "team"),
    ("GET", "/api/v1/teams/own-team/balance", None, "team"),
    ("GET", "/api/v1/teams/own-team/usage", None, "team"),
    ("GET", "/api/v1/teams/own-team/ledger", None, "team"),
]
TEAMLESS = [
    (
        "POST",
        "/api/v1/teams",
        {
            "slug": "x",
            "name": "X",
            "plan": "standard",
            "time_zone": "UTC",
            "contract_start": "2026-01-01",
            "contract_end": "2026-12-31",
        },
        "reseller",
    ),
    ("GET", "/api/v1/rates", None, "team"),
]


@pytest.mark.parametrize(("method", "path", "body", "kind"), ENDPOINTS + TEAMLESS)
def test_no_key_is_401(api, keys, method, path, body, kind):
    response = api.request(method, path, body)

    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


@pytest.mark.parametrize(("method", "path", "body", "kind"), ENDPOINTS + TEAMLESS)
def test_too_many_requests_is_429(api, keys, settings, method, path, body, kind):
    settings.FLEX_API_THROTTLE_RATE = "0/minute"
    cache.clear()

    response = api.request(method, path, body, key=getattr(keys, kind))

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert error_of(response)["code"] == "throttled"


@pytest.mark.parametrize(("method", "path", "body", "kind"), ENDPOINTS)
@pytest.mark.parametrize("other", ["other_team", "other_reseller"])
def test_another_teams_key_gets_404(api, keys, method, path, body, kind, other):
    response = api.request(method, path, body, key=getattr(keys, other))

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


@pytest.mark.parametrize(("method", "path", "body", "kind"), ENDPOINTS)
def test_a_slug_that_does_not_exist_is_404_like_another_teams(api, keys, method, path, body, kind):
    response = api.request(method, path.replace("own-team", "no-such-team"), body, key=getattr(keys, kind))

    assert response.status_code == 404
    assert error_of(response) == {"code": "not_found", "message": "No team “no-such-team” for this key.", "fields": {}}


def test_an_invalid_email_in_a_delete_is_400(api, keys):
    response = api.delete("/api/v1/teams/own-team/assignments/not-an-email", key=keys.team)

    assert response.status_code == 400
    assert "email" in error_of(response)["fields"]
