"""Packs and cloud credits (reseller key), balance, ledger and rates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing import services as billing_services
from billing.models import CloudCreditBalance, LedgerEntry, TokenPack
from tests.api.conftest import error_of
from tests.factories import TeamFactory

PACKS = "/api/v1/teams/own-team/packs"
CREDITS = "/api/v1/teams/own-team/cloud-credits"
BALANCE = "/api/v1/teams/own-team/balance"
LEDGER = "/api/v1/teams/own-team/ledger"


def iso(moment: datetime) -> str:
    return moment.isoformat()


# --- POST packs ---------------------------------------------------------------------------------


def test_a_reseller_records_a_pack_201(api, keys, personas):
    bought = (timezone.now() - timedelta(days=2)).replace(microsecond=0)
    response = api.post(
        PACKS,
        {"reference": "PO-1001", "tokens": 1000, "purchased_at": iso(bought), "price": "2500.00", "currency": "eur"},
        key=keys.reseller,
    )

    assert response.status_code == 201
    body = response.json()
    assert body == {
        "reference": "PO-1001",
        "team": "own-team",
        "tokens": "1000.00",
        "remaining": "1000.00",
        "price": "2500.00",
        "currency": "EUR",
        "purchased_at": body["purchased_at"],
        "expires_at": body["expires_at"],
        "status": "active",
    }
    assert datetime.fromisoformat(body["purchased_at"]) == bought
    pack = TokenPack.objects.get(reference="PO-1001")
    assert (pack.team, pack.tokens, pack.recorded_by) == (personas.team, 1000, None)


def test_purchased_at_defaults_to_now(api, keys):
    before = timezone.now()
    body = api.post(PACKS, {"reference": "PO-NOW", "tokens": 10}, key=keys.reseller).json()

    assert before <= datetime.fromisoformat(body["purchased_at"]) <= timezone.now()


def test_the_same_pack_again_answers_200_with_the_first(api, keys):
    data = {"reference": "PO-1002", "tokens": 500, "purchased_at": iso(timezone.now() - timedelta(days=1))}
    first = api.post(PACKS, data, key=keys.reseller)
    again = api.post(PACKS, data, key=keys.reseller)
    without_time = api.post(PACKS, {"reference": "PO-1002", "tokens": 500}, key=keys.reseller)

    assert (first.status_code, again.status_code, without_time.status_code) == (201, 200, 200)
    assert again.json() == first.json() == without_time.json()
    assert TokenPack.objects.filter(reference="PO-1002").count() == 1
    assert LedgerEntry.objects.filter(pack__reference="PO-1002").count() == 1


def test_the_same_reference_with_other_data_is_409(api, keys):
    api.post(PACKS, {"reference": "PO-1003", "tokens": 500}, key=keys.reseller)

    response = api.post(PACKS, {"reference": "PO-1003", "tokens": 600}, key=keys.reseller)

    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "conflict"
    assert "reference" in error["fields"]


def test_a_reference_of_the_resellers_other_team_is_409(api, keys, personas):
    TeamFactory(slug="sister", reseller=personas.team.reseller)
    api.post("/api/v1/teams/sister/packs", {"reference": "PO-1004", "tokens": 5}, key=keys.reseller)

    response = api.post(PACKS, {"reference": "PO-1004", "tokens": 5}, key=keys.reseller)

    assert response.status_code == 409


def test_a_purchase_outside_the_contract_is_refused_422(api, keys, personas):
    personas.team.contract_start = timezone.now().date() - timedelta(days=30)
    personas.team.save()
    before_contract = timezone.now() - timedelta(days=60)

    response = api.post(
        PACKS, {"reference": "PO-OLD", "tokens": 5, "purchased_at": iso(before_contract)}, key=keys.reseller
    )

    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "refused"
    assert "outside the contract" in error["fields"]["purchased_at"]
    assert not TokenPack.objects.filter(reference="PO-OLD").exists()


def test_a_purchase_in_the_future_is_refused_422(api, keys):
    later = timezone.now() + timedelta(days=3)

    response = api.post(PACKS, {"reference": "PO-F", "tokens": 5, "purchased_at": iso(later)}, key=keys.reseller)

    assert response.status_code == 422
    assert "future" in error_of(response)["fields"]["purchased_at"]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"tokens": 5}, "reference"),
        ({"reference": "PO", "tokens": 0}, "tokens"),
        ({"reference": "PO", "tokens": -5}, "tokens"),
        ({"reference": "  ", "tokens": 5}, "reference"),
        ({"reference": "PO", "tokens": 5, "purchased_at": "2026-01-05T10:00:00"}, "purchased_at"),
        ({"reference": "PO", "tokens": 5, "price": "-1.00"}, "price"),
        ({"reference": "PO", "tokens": 5, "price": "1.005"}, "price"),
        ({"reference": "PO", "tokens": 5, "currency": "E1R"}, "currency"),
    ],
)
def test_malformed_packs_are_400(api, keys, data, field):
    response = api.post(PACKS, data, key=keys.reseller)

    assert response.status_code == 400
    assert field in error_of(response)["fields"]


def test_a_team_key_cannot_record_packs(api, keys):
    response = api.post(PACKS, {"reference": "PO-T", "tokens": 5}, key=keys.team)

    assert response.status_code == 403
    assert not TokenPack.objects.exists()


def test_packs_of_another_team_are_404(api, keys):
    assert api.post(PACKS, {"reference": "PO-O", "tokens": 5}, key=keys.other_reseller).status_code == 404
    assert api.post(PACKS, {"reference": "PO-O", "tokens": 5}, key=keys.other_team).status_code == 404
    assert (
        api.post("/api/v1/teams/other-team/packs", {"reference": "PO-O", "tokens": 5}, key=keys.reseller).status_code
        == 404
    )
    assert (
        api.post("/api/v1/teams/no-such-team/packs", {"reference": "PO-O", "tokens": 5}, key=keys.reseller).status_code
        == 404
    )
    assert not TokenPack.objects.exists()


# --- GET packs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["team", "reseller"])
def test_team_and_reseller_keys_read_the_packs(api, keys, pack, who):
    response = api.get(PACKS, key=getattr(keys, who))

    assert response.status_code == 200
    assert [(p["reference"], p["tokens"], p["status"]) for p in response.json()] == [("PO-1", "1000.00", "active")]


def test_packs_of_another_team_cannot_be_read(api, keys, pack):
    assert api.get(PACKS, key=keys.other_team).status_code == 404
    assert api.get(PACKS, key=keys.other_reseller).status_code == 404


# --- POST cloud-credits -----------------------------------------------------------------------------


def test_a_reseller_records_legacy_cloud_credits_201(api, keys, personas):
    response = api.post(CREDITS, {"credits": "500", "granted_at": "2022-06-01T00:00:00Z"}, key=keys.reseller)

    assert response.status_code == 201
    body = response.json()
    assert (body["team"], body["credits"], body["remaining"]) == ("own-team", "500.00", "500.00")
    assert datetime.fromisoformat(body["expires_at"]) == datetime(2023, 3, 29, tzinfo=UTC)
    assert CloudCreditBalance.objects.get(team=personas.team).credits == Decimal("500.00")


def test_cloud_credits_granted_now_default_to_now_before_a_later_cutoff(api, keys, settings):
    settings.FLEX_CLOUD_CREDITS_EXPIRE_AT = timezone.now() + timedelta(days=30)

    response = api.post(CREDITS, {"credits": 12.5}, key=keys.reseller)

    assert response.status_code == 201
    assert response.json()["credits"] == "12.50"


def test_cloud_credits_after_the_cutoff_are_refused_422(api, keys):
    response = api.post(CREDITS, {"credits": "500"}, key=keys.reseller)

    assert response.status_code == 422
    assert "cutoff" in error_of(response)["fields"]["credits"]


@pytest.mark.parametrize("credits", ["0", "-3", "abc", "1.001", None, [], True])
def test_malformed_credits_are_400(api, keys, credits):
    response = api.post(CREDITS, {"credits": credits, "granted_at": "2022-06-01T00:00:00Z"}, key=keys.reseller)

    assert response.status_code == 400
    assert "credits" in error_of(response)["fields"]


def test_a_team_key_cannot_grant_cloud_credits(api, keys):
    assert api.post(CREDITS, {"credits": "5", "granted_at": "2022-06-01T00:00:00Z"}, key=keys.team).status_code == 403


def test_cloud_credits_of_another_team_are_404(api, keys):
    data = {"credits": "5", "granted_at": "2022-06-01T00:00:00Z"}
    assert api.post(CREDITS, data, key=keys.other_reseller).status_code == 404
    assert api.post(CREDITS, data, key=keys.other_team).status_code == 404


# --- GET balance -------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["team", "reseller"])
def test_the_balance_in_the_shape_of_api_md(api, keys, pack, who):
    response = api.get(BALANCE, key=getattr(keys, who))

    assert response.status_code == 200
    body = response.json()
    assert body["team"] == "own-team"
    assert body["tokens"] == {"available": "1000.00", "purchased": "1000.00", "used": "0.00", "expired": "0.00"}
    assert body["cloud_credits"]["available"] == "0.00"
    assert datetime.fromisoformat(body["cloud_credits"]["expires_at"]) == datetime(2023, 3, 29, tzinfo=UTC)
    assert [set(p) for p in body["packs"]] == [
        {"reference", "tokens", "remaining", "purchased_at", "expires_at", "status"}
    ]
    assert body["packs"][0]["remaining"] == "1000.00"


def test_the_balance_of_another_team_is_404(api, keys, pack):
    assert api.get(BALANCE, key=keys.other_team).status_code == 404
    assert api.get(BALANCE, key=keys.other_reseller).status_code == 404


# --- GET ledger --------------------------------------------------------------------------------------


def test_the_ledger_is_paginated_with_amounts_as_strings(api, keys, personas, django_assert_max_num_queries):
    now = timezone.now()
    for n in range(5):
        billing_services.record_purchase(team=personas.team, reference=f"L-{n}", tokens=10 + n, purchased_at=now)

    with django_assert_max_num_queries(4):  # key, count, page (and at most one touch of the key)
        first = api.get(LEDGER + "?page_size=2", key=keys.team)
    second = api.get(LEDGER + "?page_size=2&page=3", key=keys.team)

    assert first.status_code == 200
    body = first.json()
    assert body["count"] == 5 and body["previous"] is None and "page=2" in body["next"]
    assert body["results"][0] == {
        "id": body["results"][0]["id"],
        "at": body["results"][0]["at"],
        "kind": "purchase",
        "amount": "10.00",
        "unit": "tokens",
        "pack": "L-0",
        "event": None,
        "note": "",
        "created_at": body["results"][0]["created_at"],
    }
    assert [e["pack"] for e in second.json()["results"]] == ["L-4"]


def test_a_page_past_the_end_is_404(api, keys):
    response = api.get(LEDGER + "?page=9", key=keys.team)

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_the_ledger_needs_the_teams_own_key(api, keys):
    assert api.get(LEDGER, key=keys.reseller).status_code == 403
    assert api.get(LEDGER, key=keys.other_team).status_code == 404
    assert api.get(LEDGER, key=keys.other_reseller).status_code == 404


# --- GET rates -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["team", "reseller", "other_team"])
def test_any_key_reads_the_rates_in_force(api, keys, who):
    response = api.get("/api/v1/rates", key=getattr(keys, who))

    assert response.status_code == 200
    rates = {rate["code"]: rate for rate in response.json()}
    assert rates["autocad"] == {
        "code": "autocad",
        "name": "AutoCAD",
        "charge_type": "daily",
        "tokens": "7.00",
        "variants": [],
        "unit": "day",
        "cloud_credit_eligible": False,
        "grace_minutes": 5,
        "effective_from": "2022-03-29T00:00:00Z",
    }
    assert rates["cfd-simulation"]["variants"] == [
        {"code": "simple", "tokens": "5.00"},
        {"code": "moderate", "tokens": "10.00"},
        {"code": "complex", "tokens": "35.00"},
    ]
    assert rates["cloud-rendering"]["charge_type"] == "free"


def test_rates_show_the_row_in_force_not_a_future_one(api, keys):
    from billing.models import Rate

    autocad = Rate.objects.get(code="autocad")
    Rate.objects.create(
        code="autocad",
        name="AutoCAD",
        charge_type="daily",
        tokens=Decimal("8"),
        effective_from=timezone.now() - timedelta(days=1),
    )
    Rate.objects.create(
        code="autocad",
        name="AutoCAD",
        charge_type="daily",
        tokens=Decimal("9"),
        effective_from=timezone.now() + timedelta(days=9),
    )

    rates = {r["code"]: r for r in api.get("/api/v1/rates", key=keys.team).json()}

    assert rates["autocad"]["tokens"] == "8.00"
    assert autocad.tokens == Decimal("7.00")


def test_rates_need_a_key(api):
    assert api.get("/api/v1/rates").status_code == 401
