"""Keys, the error shape, and robustness: whatever a client sends, the answer is JSON in
the error shape of api.md, never a 500."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from django.core.cache import cache

from accounts import services as account_services
from accounts.models import ApiKey, AuditEvent
from tests.api.conftest import error_of

BALANCE = "/api/v1/teams/own-team/balance"
EVENTS = "/api/v1/teams/own-team/usage-events"
PACKS = "/api/v1/teams/own-team/packs"


# --- Keys ------------------------------------------------------------------------------------------


def test_a_request_without_a_key_is_401_with_a_bearer_challenge(api, keys):
    response = api.get(BALANCE)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert error_of(response)["code"] == "unauthorized"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer flx_not-a-real-key",
        "Bearer ",
        "Bearer a b",
        "Basic dXNlcjpwYXNz",
        "Token flx_abc",
        "Bearer " + "x" * 5000,
        "Bearer caf\u00e9",
    ],
)
def test_a_wrong_key_or_scheme_is_401(api, keys, header):
    response = api.get(BALANCE, headers={"Authorization": header})

    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


def test_a_revoked_key_is_401(api, keys, personas):
    key = ApiKey.objects.get(team=personas.team)
    account_services.revoke_api_key(key=key, actor=personas.primary_admin)

    response = api.get(BALANCE, key=keys.team)

    assert response.status_code == 401
    assert "revoked" in error_of(response)["message"]


def test_a_signed_in_browser_session_is_no_key(api, keys, personas, client):
    client.force_login(personas.primary_admin)

    response = api.get(BALANCE)

    assert response.status_code == 401


def test_the_api_needs_no_csrf_token(keys, personas):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post(
        PACKS,
        json.dumps({"reference": "PO-CSRF", "tokens": 5}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {keys.reseller}"},
    )

    assert response.status_code == 201


def test_use_of_a_key_is_noted(api, keys, personas):
    key = ApiKey.objects.get(team=personas.team)
    assert key.last_used_at is None

    api.get(BALANCE, key=keys.team)

    key.refresh_from_db()
    assert key.last_used_at is not None


def test_the_audit_trail_names_the_key_that_acted(api, keys, personas):
    api.post(PACKS, {"reference": "PO-AUDIT", "tokens": 5}, key=keys.reseller)

    event = AuditEvent.objects.get(action="pack.recorded")
    key = ApiKey.objects.get(reseller=personas.team.reseller)
    assert event.actor is None
    assert event.actor_email == f"API key “tests” ({key.prefix}…), integration"


def test_pages_outside_the_api_still_need_a_sign_in(client):
    response = client.get("/teams/own-team/")

    assert response.status_code == 302
    assert "/auth/login/" in response["Location"]


# --- Throttling ----------------------------------------------------------------------------------


def test_too_many_requests_for_one_key_are_429_with_retry_after(api, keys, settings):
    settings.FLEX_API_THROTTLE_RATE = "3/minute"
    cache.clear()
    statuses = [api.get(BALANCE, key=keys.team).status_code for _ in range(3)]
    response = api.get(BALANCE, key=keys.team)

    assert statuses == [200, 200, 200]
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert error_of(response)["code"] == "throttled"
    # Another key has its own allowance.
    assert api.get(BALANCE, key=keys.reseller).status_code == 200


def test_a_throttle_cache_that_fails_lets_requests_through(api, keys, monkeypatch):
    from accounts.authentication import ApiKeyRateThrottle

    def broken(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(ApiKeyRateThrottle.cache, "get", broken)

    assert api.get(BALANCE, key=keys.team).status_code == 200


# --- The error shape for anything a client can send ----------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/api/v1/nope", "/api/v1/teams/own-team/unknown", "/api/v1/teams/", "/api/v1/", "/api/", "/api/v2/rates"],
)
def test_unknown_urls_under_api_are_a_json_404(api, keys, path):
    response = api.get(path, key=keys.team)

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_a_method_an_endpoint_does_not_take_is_405_in_the_error_shape(api, keys):
    response = api.delete("/api/v1/rates", key=keys.team)

    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        '{"events": [',
        "NaN",
        '{"events": [{"id": NaN}]}',
        '{"events": Infinity}',
        "\udcff",
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 50_000 + "1" + "}" * 50_000,
    ],
    ids=["truncated", "unclosed", "nan", "nan-inside", "infinity", "bad-utf8", "deep-lists", "deep-objects"],
)
def test_malformed_json_is_400_malformed(api, keys, body):
    response = api.post(EVENTS, body=body.encode("utf-8", "surrogateescape"), key=keys.team)

    assert response.status_code == 400
    assert error_of(response)["code"] == "malformed"


def test_a_body_larger_than_the_limit_is_400(api, keys, settings):
    settings.FLEX_API_MAX_BODY_BYTES = 1000

    response = api.post(EVENTS, {"events": [{"id": "x" * 2000}]}, key=keys.team)

    assert response.status_code == 400
    assert "larger than" in error_of(response)["message"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_a_body_that_is_not_json_is_400(api, keys, content_type):
    response = api.post(PACKS, body="reference=PO-9&tokens=5", content_type=content_type, key=keys.reseller)

    assert response.status_code == 400
    assert error_of(response)["code"] == "unsupported_media_type"


def test_an_empty_body_names_the_missing_fields(api, keys):
    response = api.post(PACKS, body="", key=keys.reseller)

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {"reference", "tokens"}


@pytest.mark.parametrize(
    "body",
    [
        [],
        "a string",
        42,
        None,
        {"reference": ["PO"], "tokens": {"n": 5}},
        {"reference": "PO-1", "tokens": True},
        {"reference": "PO-1", "tokens": "five"},
        {"reference": "PO-1", "tokens": 1.5},
        {"reference": "PO-1", "tokens": 10**30},
        {"reference": "x" * 100_000, "tokens": 5},
        {"reference": "PO-\x00", "tokens": 5},
        {"reference": "PO-\ud800", "tokens": 5},
        {"reference": "PO-1", "tokens": 5, "price": "abc"},
        {"reference": "PO-1", "tokens": 5, "price": "1e400"},
        {"reference": "PO-1", "tokens": 5, "currency": "EURO"},
        {"reference": "PO-1", "tokens": 5, "purchased_at": "yesterday"},
        {"reference": "PO-1", "tokens": 5, "purchased_at": "0001-01-01T00:00:00+05:00"},
        {"reference": "PO-1", "tokens": 5, "purchased_at": "2026-01-01T00:00:00+25:00"},
        {"reference": "PO-1", "tokens": 5, "purchased_at": "2026-01-01T00:00:00-20:02"},
        {"reference": "PO-1", "tokens": 5, "purchased_at": "2026-01-01T00:00:00+00:53:28"},
        {"reference": "PO-1", "tokens": 5, "purchased_at": "1999-12-31T23:59:59Z"},
        {"reference": "PO-1", "tokens": 5, "purchased_at": 1767225600},
        {"reference": {"deep": [[[[{"x": None}]]]]}, "tokens": [[[]]]},
    ],
)
def test_wrong_types_and_junk_are_400_with_fields(api, keys, body):
    response = api.post(PACKS, body=json.dumps(body), key=keys.reseller)

    assert response.status_code == 400, response.content
    assert error_of(response)["code"] == "invalid"


def test_a_time_without_an_offset_is_400(api, keys):
    response = api.post(
        PACKS, {"reference": "PO-N", "tokens": 5, "purchased_at": "2026-01-05T10:00:00"}, key=keys.reseller
    )

    assert response.status_code == 400
    assert "offset" in error_of(response)["fields"]["purchased_at"]


def test_unknown_fields_are_ignored(api, keys):
    response = api.post(PACKS, {"reference": "PO-X", "tokens": 5, "colour": "blue"}, key=keys.reseller)

    assert response.status_code == 201


def test_an_accept_header_for_something_else_still_gets_json(api, keys):
    response = api.get(BALANCE, key=keys.team, headers={"Accept": "text/html"})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


def test_times_are_answered_with_an_offset(api, keys, pack):
    body = api.get(BALANCE, key=keys.team).json()

    purchased_at = body["packs"][0]["purchased_at"]
    assert purchased_at.endswith(("+01:00", "+02:00"))  # Europe/Berlin, the team's zone
    assert datetime.fromisoformat(purchased_at) == pack.purchased_at


def test_an_unexpected_failure_is_a_json_500(api, keys, monkeypatch, client):
    from billing import selectors

    def broken(**kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(selectors, "team_balance", broken)
    client.raise_request_exception = False

    response = api.get(BALANCE, key=keys.team)

    assert response.status_code == 500
    assert error_of(response)["code"] == "server_error"


@pytest.mark.parametrize("megabytes", [3, 3.9])
def test_a_body_up_to_the_documented_limit_is_read(api, keys, settings, megabytes):
    padding = "x" * int(megabytes * 1024 * 1024)
    body = json.dumps({"events": [{"id": "pad", "user": padding}]})
    assert len(body) < settings.FLEX_API_MAX_BODY_BYTES

    response = api.post("/api/v1/teams/own-team/usage-events", body=body, key=keys.team)

    assert response.status_code == 200
    assert response.json()["results"][0]["error"]["fields"]["user"] == "At most 254 characters."


def test_a_body_over_the_documented_limit_gets_the_documented_error(api, keys, settings):
    body = json.dumps({"events": [{"id": "pad", "user": "x" * settings.FLEX_API_MAX_BODY_BYTES}]})

    response = api.post("/api/v1/teams/own-team/usage-events", body=body, key=keys.team)

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "malformed"
    assert f"larger than {settings.FLEX_API_MAX_BODY_BYTES} bytes" in error["message"]
