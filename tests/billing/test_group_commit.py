"""Single events charged together (group commit, ``billing.services.group_commit``).

These run on any database: the events other requests queued are written here as those
requests would have left them, and the call under test is the leader that charges them.
The race itself (threads on PostgreSQL) is in tests/services/test_group_commit.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Count

from billing import services
from billing.models import PendingEvent, UsageEvent
from billing.selectors import ledger_violations
from billing.services import group_commit

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def job(personas):
    def _job(event_id: str, minutes_ago: int = 30, **fields) -> dict:
        return {
            "id": event_id,
            "user": personas.member.email,
            "product": "cfd-simulation",
            "variant": "simple",
            "quantity": 1,
            "started_at": (NOW - timedelta(minutes=minutes_ago)).isoformat(),
            **fields,
        }

    return _job


def queue(team, *events: dict) -> list[PendingEvent]:
    """Events other requests queued while someone else led."""
    return [PendingEvent.objects.create(team=team, event=event) for event in events]


def test_a_single_event_gets_the_result_a_batch_of_one_gets(team, buy, job):
    buy(100)
    result = services.log_event(team=team, event=job("solo"), now=NOW)
    assert result == {**UsageEvent.objects.get(event_id="solo").result, "replayed": False}
    assert (result["status"], result["tokens"], result["replayed"]) == ("charged", "5.00", False)
    assert services.log_event(team=team, event=job("solo"), now=NOW) == {**result, "replayed": True}
    assert PendingEvent.objects.count() == 0


def test_the_leader_charges_every_waiting_event_in_one_batch_and_answers_each(team, buy, job):
    buy(100)
    waiting = queue(team, job("w1", 10), job("w2", 40), job("w3", 20))
    own = services.log_event(team=team, event=job("own", 30), now=NOW)
    assert own["status"] == "charged"
    for row in waiting:
        row.refresh_from_db()
        stored = UsageEvent.objects.get(event_id=row.event["id"])
        assert row.result == {**stored.result, "replayed": False}
        assert row.result["status"] == "charged"
    # One batch: one charging transaction (one received_at) for the four events.
    assert UsageEvent.objects.values("received_at").annotate(n=Count("id")).get()["n"] == 4
    assert ledger_violations(now=NOW) == []


def test_waiting_events_are_priced_in_time_order_and_answered_as_they_arrived(team, buy, job):
    buy(12)  # two 5-token jobs, not three
    waiting = queue(team, job("late", 10), job("early", 50))
    own = services.log_event(team=team, event=job("middle", 30), now=NOW)
    results = {row.event["id"]: row.result for row in PendingEvent.objects.filter(pk__in=[w.pk for w in waiting])}
    # In time order the earliest two are paid, whatever the order they arrived in.
    assert results["early"]["status"] == "charged"
    assert own["status"] == "charged"
    assert (results["late"]["status"], results["late"]["reason"]) == ("denied", "insufficient_balance")


def test_the_same_id_waiting_twice_is_charged_once_for_the_first_to_arrive(team, buy, job):
    buy(100)
    [first] = queue(team, job("twice", 30))
    again = services.log_event(team=team, event=job("twice", 30), now=NOW)
    first.refresh_from_db()
    assert first.result["replayed"] is False
    assert again == {**first.result, "replayed": True}
    assert UsageEvent.objects.filter(event_id="twice").count() == 1


def test_a_malformed_event_is_answered_at_once_and_queued_nowhere(team, buy, job):
    buy(100)
    [waiting] = queue(team, job("w1"))
    result = services.log_event(team=team, event=job("bad", started_at="yesterday"), now=NOW)
    assert (result["status"], result["error"]["code"]) == ("error", "invalid")
    waiting.refresh_from_db()
    assert waiting.result is None  # nobody led: the waiting event waits for its own request
    assert not UsageEvent.objects.exists()


def test_a_rule_error_of_one_waiting_event_does_not_fail_the_others(team, buy, job):
    buy(100)
    [stranger, fine] = queue(team, job("stranger", user="nobody@elsewhere.example"), job("fine"))
    own = services.log_event(team=team, event=job("own"), now=NOW)
    stranger.refresh_from_db()
    fine.refresh_from_db()
    assert (stranger.result["status"], stranger.result["error"]["code"]) == ("error", "unknown_user")
    assert fine.result["status"] == own["status"] == "charged"


def test_a_batch_that_fails_charges_the_leaders_event_alone_and_leaves_the_others_waiting(team, buy, job, monkeypatch):
    buy(100)
    [waiting] = queue(team, job("poison"))
    charge = group_commit.log_usage_locked

    def failing_with_poison(*, team, events, now):
        if any(e["id"] == "poison" for e in events):
            raise RuntimeError("a bug that only this event brings out")
        return charge(team=team, events=events, now=now)

    monkeypatch.setattr(group_commit, "log_usage_locked", failing_with_poison)
    own = services.log_event(team=team, event=job("own"), now=NOW)
    assert own["status"] == "charged"
    waiting.refresh_from_db()
    assert waiting.result is None
    assert list(UsageEvent.objects.values_list("event_id", flat=True)) == ["own"]
    assert ledger_violations(now=NOW) == []


def test_a_single_event_through_the_api_is_charged_by_group_commit(client, personas, team, buy, job):
    from accounts.services import create_api_key

    buy(100)
    [waiting] = queue(team, job("queued-earlier"))
    _, secret = create_api_key(team=team, name="product", actor=None)
    response = client.post(
        f"/api/v1/teams/{team.slug}/usage-events",
        {"events": [job("via-api", 1, started_at=(datetime.now(UTC) - timedelta(minutes=1)).isoformat())]},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 200
    [result] = response.json()["results"]
    assert (result["id"], result["status"]) == ("via-api", "charged")
    waiting.refresh_from_db()
    assert waiting.result is not None  # charged in the same batch
