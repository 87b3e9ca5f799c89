"""POST usage-events, POST usage-events/{id}/refund, GET usage (the reports)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Membership, Role
from billing import services as billing_services
from billing.models import LedgerEntry, TokenPack, UsageEvent, UsageRollup
from tests.api.conftest import error_of
from tests.factories import UserFactory

EVENTS = "/api/v1/teams/own-team/usage-events"
USAGE = "/api/v1/teams/own-team/usage"
MEMBER = "member@own.example"
H = timedelta(hours=1)


def ago(hours: float):
    return timezone.now() - timedelta(hours=hours)


def daily(event_id: str, start, hours: float = 2, user: str = MEMBER, product: str = "autocad") -> dict:
    return {
        "id": event_id,
        "user": user,
        "product": product,
        "started_at": start.isoformat(),
        "ended_at": (start + timedelta(hours=hours)).isoformat(),
    }


def job(event_id: str, start, user: str = MEMBER, variant: str = "moderate", quantity=1) -> dict:
    return {
        "id": event_id,
        "user": user,
        "product": "cfd-simulation",
        "variant": variant,
        "quantity": quantity,
        "started_at": start.isoformat(),
    }


def refund_url(event_id: str, team: str = "own-team") -> str:
    return f"/api/v1/teams/{team}/usage-events/{event_id}/refund"


# --- POST usage-events ------------------------------------------------------------------------------


def test_a_batch_is_charged_and_answered_in_order(api, keys, assigned, pack):
    start = ago(10)
    response = api.post(EVENTS, {"events": [job("j-1", start), daily("d-1", start)]}, key=keys.team)

    assert response.status_code == 200
    first, second = response.json()["results"]
    assert (first["id"], first["status"], first["tokens"], first["replayed"]) == ("j-1", "charged", "10.00", False)
    assert second == {
        "id": "d-1",
        "status": "charged",
        "reason": "",
        "tokens": "7.00",
        "cloud_credits": "0.00",
        "charges": [
            {
                "at": start.isoformat(),
                "status": "charged",
                "reason": "",
                "tokens": "7.00",
                "cloud_credits": "0.00",
                "draws": [{"pack": "PO-1", "tokens": "7.00"}],
            }
        ],
        "replayed": False,
    }
    pack.refresh_from_db()
    assert pack.remaining == Decimal("983.00")


def test_one_bad_event_gets_its_own_error_and_the_others_go_on(api, keys, assigned, pack):
    events = [
        daily("ok-1", ago(5)),
        {"id": "bad-1", "user": MEMBER, "product": "autocad", "started_at": "2026-01-01T10:00:00"},
        daily("old-1", ago(100)),
        job("who-1", ago(5), user="nobody@own.example"),
        daily("ok-2", ago(3), product="revit"),
    ]

    results = api.post(EVENTS, {"events": events}, key=keys.team).json()["results"]

    assert [(r["id"], r["status"]) for r in results] == [
        ("ok-1", "charged"),
        ("bad-1", "error"),
        ("old-1", "error"),
        ("who-1", "error"),
        ("ok-2", "charged"),
    ]
    assert results[1]["error"]["fields"] == {"started_at": "A time zone offset is required."}
    assert results[2]["error"]["code"] == "event_too_old"
    assert results[3]["error"]["code"] == "unknown_user"
    assert set(UsageEvent.objects.values_list("event_id", flat=True)) == {"ok-1", "ok-2"}


def test_denials_are_results_not_errors(api, keys, personas, pack):
    results = api.post(EVENTS, {"events": [daily("n-1", ago(5))]}, key=keys.team).json()["results"]

    assert (results[0]["status"], results[0]["reason"]) == ("denied", "not_assigned")


@pytest.mark.parametrize(
    "junk",
    [
        None,
        42,
        "event",
        [1, 2],
        {},
        {"id": {"nested": ["junk"]}, "user": [], "product": {}},
        {"id": "x" * 10_000, "user": "y" * 100_000, "product": "z" * 100_000},
        {"id": "nul\x00", "user": MEMBER, "product": "autocad", "started_at": "2026-01-01T00:00:00Z"},
        {"id": "s-1", "user": "a\ud800@own.example", "product": "autocad", "started_at": "2026-01-01T00:00:00Z"},
        {"id": "s-2", "user": MEMBER, "product": "autocad\x00", "started_at": "2026-01-01T00:00:00Z"},
        {"id": "t-1", "user": MEMBER, "product": "autocad", "started_at": "0001-01-01T00:00:00+05:00"},
        {"id": "t-2", "user": MEMBER, "product": "autocad", "started_at": "9999-12-31T23:59:59-05:00"},
        {"id": "t-3", "user": MEMBER, "product": "autocad", "started_at": "2026-02-30T00:00:00Z"},
        {"id": "t-4", "user": MEMBER, "product": "autocad", "started_at": "2026-01-01T00:00:00+25:00"},
        {"id": "t-5", "user": MEMBER, "product": "autocad", "started_at": "0668-03-17T05:48:59.856-20:02"},
        {"id": "t-6", "user": MEMBER, "product": "autocad", "started_at": "2026-01-01T00:00:00+00:53:28"},
        {
            "id": "q-1",
            "user": MEMBER,
            "product": "cfd-simulation",
            "started_at": "2026-01-01T00:00:00Z",
            "quantity": "1e999",
        },
        {
            "id": "q-2",
            "user": MEMBER,
            "product": "cfd-simulation",
            "started_at": "2026-01-01T00:00:00Z",
            "quantity": "sNaN",
        },
        {
            "id": "q-3",
            "user": MEMBER,
            "product": "cfd-simulation",
            "started_at": "2026-01-01T00:00:00Z",
            "quantity": 1e308,
        },
        {"id": True, "user": MEMBER, "product": "autocad"},
        {
            "id": "v-1",
            "user": MEMBER,
            "product": "cfd-simulation",
            "variant": ["x"],
            "started_at": "2026-01-01T00:00:00Z",
        },
    ],
)
def test_junk_events_get_error_results_never_a_500(api, keys, assigned, pack, junk):
    response = api.post(EVENTS, {"events": [junk, daily("fine", ago(2))]}, key=keys.team)

    assert response.status_code == 200, response.content
    bad, fine = response.json()["results"]
    assert bad["status"] == "error" and bad["error"]["code"] == "invalid" and bad["replayed"] is False
    assert fine["status"] == "charged"


@pytest.mark.parametrize(
    "body", [{}, {"events": []}, {"events": "all"}, {"events": {"id": 1}}, {"events": None}, {"events": [{}] * 1001}]
)
def test_a_batch_of_no_events_or_more_than_1000_is_400(api, keys, body):
    response = api.post(EVENTS, body, key=keys.team)

    assert response.status_code == 400
    assert "events" in error_of(response)["fields"]


def test_a_reseller_key_cannot_report_usage(api, keys, assigned, pack):
    assert api.post(EVENTS, {"events": [daily("r-1", ago(2))]}, key=keys.reseller).status_code == 403
    assert not UsageEvent.objects.exists()


def test_usage_of_another_team_is_404(api, keys, assigned, pack):
    assert api.post(EVENTS, {"events": [daily("o-1", ago(2))]}, key=keys.other_team).status_code == 404
    assert api.post(EVENTS, {"events": [daily("o-1", ago(2))]}, key=keys.other_reseller).status_code == 404
    assert not UsageEvent.objects.exists()


# --- 1,000 events, bounded queries, and a resend that charges nothing -------------------------------


@pytest.fixture
def crowd(personas, pack):
    """Twenty assigned members and 20,000 more tokens."""
    emails = []
    for n in range(20):
        user = UserFactory(email=f"crowd{n}@own.example")
        Membership.objects.create(user=user, team=personas.team, role=Role.MEMBER)
        billing_services.assign_flex(team=personas.team, user=user, products="all", actor=None, at=ago(24 * 30))
        emails.append(user.email)
    billing_services.record_purchase(team=personas.team, reference="PO-BIG", tokens=20_000, purchased_at=ago(24 * 3))
    return emails


def thousand_events(emails: list[str]) -> list[dict]:
    events = []
    for n in range(1000):
        user = emails[n % len(emails)]
        start = ago(40) + timedelta(minutes=2 * n)
        kind = n % 4
        if kind == 0:
            events.append(daily(f"b-{n}", start, hours=1, user=user, product="autocad"))
        elif kind == 1:
            events.append(daily(f"b-{n}", start, hours=3, user=user, product="revit"))
        elif kind == 2:
            events.append(job(f"b-{n}", start, user=user, variant=["simple", "moderate", "complex"][n % 3]))
        else:
            events.append({**job(f"b-{n}", start, user=user), "product": "generative-design", "variant": ""})
    return events


def batch_query_limit() -> int:
    """PostgreSQL writes each kind of row of a batch in one statement. SQLite caps the
    parameters of a statement, so Django splits a bulk insert of 1,000 rows into chunks:
    more statements, still a fixed bound for the largest batch."""
    return 22 if connection.vendor == "postgresql" else 50


def test_a_batch_of_1000_events_takes_a_bounded_number_of_queries(api, keys, crowd, django_assert_max_num_queries):
    events = thousand_events(crowd)

    with django_assert_max_num_queries(batch_query_limit()) as first_run:
        first = api.post(EVENTS, {"events": events}, key=keys.team)
    remaining_after_first = sorted(TokenPack.objects.values_list("remaining", flat=True))
    entries_after_first = LedgerEntry.objects.count()
    rollups_after_first = list(UsageRollup.objects.order_by("id").values_list("tokens", "charges"))

    with django_assert_max_num_queries(15) as second_run:
        again = api.post(EVENTS, {"events": events}, key=keys.team)

    assert first.status_code == again.status_code == 200
    first_results, again_results = first.json()["results"], again.json()["results"]
    assert len(first_results) == 1000
    assert {r["status"] for r in first_results} == {"charged", "no_charge"}
    assert sum(Decimal(r["tokens"]) for r in first_results) > 0
    # The resend returns the first outcomes, replayed, and charges nothing.
    assert all(r["replayed"] for r in again_results)
    assert [{**r, "replayed": False} for r in again_results] == first_results
    assert sorted(TokenPack.objects.values_list("remaining", flat=True)) == remaining_after_first
    assert LedgerEntry.objects.count() == entries_after_first
    assert list(UsageRollup.objects.order_by("id").values_list("tokens", "charges")) == rollups_after_first
    assert UsageEvent.objects.count() == 1000
    print(
        f"\n1,000-event batch on {connection.vendor}: {len(first_run.captured_queries)} queries; "
        f"resent: {len(second_run.captured_queries)}"
    )


def test_the_query_count_does_not_grow_with_the_batch_on_postgresql(api, keys, crowd):
    events = thousand_events(crowd)
    counts = []
    for size, offset in ((10, 0), (990, 10)):
        batch = events[offset : offset + size]
        with CaptureQueriesContext(connection) as queries:
            assert api.post(EVENTS, {"events": batch}, key=keys.team).status_code == 200
        # The key's last-use touch happens at most once a minute, whatever the batch: not counted.
        counts.append(len([q for q in queries.captured_queries if '"accounts_apikey"' not in q["sql"]]))

    if connection.vendor == "postgresql":
        assert counts[1] == counts[0], counts
    else:
        assert counts[1] <= batch_query_limit(), counts


# --- POST refund ------------------------------------------------------------------------------------


def test_a_per_result_job_is_refunded_and_a_second_refund_replays(api, keys, assigned, pack):
    api.post(EVENTS, {"events": [job("job/7", ago(3), quantity=2)]}, key=keys.team)

    response = api.post(refund_url("job/7"), key=keys.team)
    again = api.post(refund_url("job/7"), key=keys.team)

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["refunded_tokens"], body["forfeited_tokens"], body["replayed"]) == (
        "job/7",
        "20.00",
        "0.00",
        False,
    )
    assert again.status_code == 200 and again.json()["replayed"] is True
    pack.refresh_from_db()
    assert pack.remaining == Decimal("1000.00")


def test_refunding_a_daily_product_is_refused_422(api, keys, assigned, pack):
    api.post(EVENTS, {"events": [daily("day-1", ago(3))]}, key=keys.team)

    response = api.post(refund_url("day-1"), key=keys.team)

    assert response.status_code == 422
    assert error_of(response)["code"] == "not_refundable"


def test_refunding_an_unknown_event_is_404(api, keys):
    for event_id in ("nope", "x" * 300, "a%00b"):
        response = api.post(refund_url(event_id), key=keys.team)
        assert response.status_code == 404
        assert error_of(response)["code"] == "not_found"


def test_refunds_need_the_teams_own_key(api, keys, assigned, pack):
    api.post(EVENTS, {"events": [job("job-9", ago(3))]}, key=keys.team)

    assert api.post(refund_url("job-9"), key=keys.reseller).status_code == 403
    assert api.post(refund_url("job-9"), key=keys.other_team).status_code == 404
    assert api.post(refund_url("job-9"), key=keys.other_reseller).status_code == 404
    assert UsageEvent.objects.get(event_id="job-9").refund is None


# --- GET usage ------------------------------------------------------------------------------------------


@pytest.fixture
def usage(api, keys, assigned, pack, personas):
    api.post(
        EVENTS,
        {"events": [daily("u-1", ago(30)), daily("u-2", ago(5), product="revit"), job("u-3", ago(4))]},
        key=keys.team,
    )
    return UsageRollup.objects.filter(team=personas.team)


def test_usage_by_product_reads_the_rollups(api, keys, usage, django_assert_max_num_queries):
    with django_assert_max_num_queries(5):  # key (+ touch), rows, names, last processed
        response = api.get(USAGE + "?group_by=product", key=keys.team)

    assert response.status_code == 200
    body = response.json()
    assert body["group_by"] == "product" and body["start"] is None and body["end"] is None
    assert body["rows"] == [
        {
            "product": "cfd-simulation",
            "name": "CFD cloud simulation",
            "tokens": "10.00",
            "cloud_credits": "0.00",
            "users": 1,
            "charges": 1,
            "denials": 0,
        },
        {
            "product": "revit",
            "name": "Revit",
            "tokens": "10.00",
            "cloud_credits": "0.00",
            "users": 1,
            "charges": 1,
            "denials": 0,
        },
        {
            "product": "autocad",
            "name": "AutoCAD",
            "tokens": "7.00",
            "cloud_credits": "0.00",
            "users": 1,
            "charges": 1,
            "denials": 0,
        },
    ]
    assert body["last_processed_at"] is not None


def test_product_is_the_default_grouping(api, keys, usage):
    assert api.get(USAGE, key=keys.team).json()["group_by"] == "product"


def test_usage_by_day_in_the_teams_days(api, keys, usage, personas):
    body = api.get(USAGE + "?group_by=day", key=keys.team).json()

    days = [date.fromisoformat(row["day"]) for row in body["rows"]]
    assert days == sorted(set(days))
    assert sum(Decimal(row["tokens"]) for row in body["rows"]) == Decimal("27.00")
    berlin_day = timezone.localtime(ago(30), personas.team.tz).date()
    assert days[0] == berlin_day


def test_usage_between_dates(api, keys, usage):
    today = timezone.localdate()
    body = api.get(
        f"{USAGE}?group_by=day&start={today + timedelta(days=5)}&end={today + timedelta(days=9)}", key=keys.team
    ).json()

    assert body["rows"] == []
    assert body["start"] == str(today + timedelta(days=5))


def test_by_user_is_refused_403_premium_required_for_a_standard_team(api, keys, usage):
    response = api.get(USAGE + "?group_by=user", key=keys.team)

    assert response.status_code == 403
    assert error_of(response)["code"] == "premium_required"


def test_by_user_for_a_premium_team(api, keys, usage, personas):
    personas.team.plan = "premium"
    personas.team.save()

    response = api.get(USAGE + "?group_by=user", key=keys.team)

    assert response.status_code == 200
    (row,) = response.json()["rows"]
    assert (row["user"], row["name"], row["tokens"], row["products"], row["charges"]) == (
        MEMBER,
        "Mia Member",
        "27.00",
        3,
        3,
    )
    assert row["last_used"] is not None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("group_by=month", "group_by"),
        ("start=yesterday", "start"),
        ("end=2026-02-30", "end"),
        ("start=2026-03-10&end=2026-03-01", "end"),
        ("start=%00", "start"),
    ],
)
def test_malformed_usage_queries_are_400(api, keys, query, field):
    response = api.get(f"{USAGE}?{query}", key=keys.team)

    assert response.status_code == 400
    assert field in error_of(response)["fields"]


def test_usage_needs_the_teams_own_key(api, keys, usage):
    assert api.get(USAGE, key=keys.reseller).status_code == 403
    assert api.get(USAGE, key=keys.other_team).status_code == 404
    assert api.get(USAGE, key=keys.other_reseller).status_code == 404


def test_a_team_without_usage_has_empty_reports(api, keys):
    body = api.get(USAGE, key=keys.team).json()

    assert (body["rows"], body["last_processed_at"]) == ([], None)


@pytest.mark.parametrize(
    ("field", "value"),
    [("variant", "v" * 65), ("product", "p" * 65), ("id", "i" * 101), ("variant", "sim\nple"), ("user", "a\tb@x.io")],
)
def test_an_over_long_or_control_character_field_is_that_events_error_and_the_batch_goes_on(
    api, keys, assigned, pack, field, value
):
    bad = {**job("bad-1", ago(2)), field: value}

    response = api.post(EVENTS, {"events": [bad, daily("fine-1", ago(2))]}, key=keys.team)

    assert response.status_code == 200
    first, second = response.json()["results"]
    assert (first["status"], first["error"]["code"]) == ("error", "invalid")
    assert field in first["error"]["fields"]
    assert second["status"] == "charged"
    assert set(UsageEvent.objects.values_list("event_id", flat=True)) == {"fine-1"}
