"""Single events of one team posted at the same moment, on PostgreSQL: charged together
(group commit, ``billing.services.group_commit``), each exactly once, each call answered
with its own result, and nothing lost when a leader dies halfway.

Each thread is a request with its own connection, as gunicorn's threads and processes are.
SQLite runs one transaction at a time, so only PostgreSQL has a race to test.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import Count
from django.utils import timezone

from billing import services
from billing.models import PendingEvent, UsageEvent
from billing.selectors import ledger_violations
from billing.services import group_commit
from tests.factories import MembershipFactory, ResellerFactory, TeamFactory, UserFactory
from tests.services.test_concurrent_charging import _assert_packs_sound, _run, on_postgresql  # noqa: F401

pytestmark = pytest.mark.services

THREADS = 16
CALLS = 10
PRICE = {"simple": 5, "moderate": 10}


def _join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung"


def _thread(target, errors: list[BaseException], *args) -> threading.Thread:
    """A thread running ``target`` as a request would: its own connection, closed at the end,
    and any exception kept for the main thread to report."""

    def body() -> None:
        try:
            target(*args)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    return threading.Thread(target=body)


def make_team(slug: str, tokens: int):
    team = TeamFactory(slug=slug, reseller=ResellerFactory(slug=f"{slug}-reseller"))
    now = timezone.now()
    users = []
    for n in range(4):
        user = UserFactory(email=f"user{n}@{slug}.example")
        MembershipFactory(user=user, team=team, role="primary_admin" if n == 0 else "member")
        services.assign_flex(team=team, user=user, products="all", actor=None, at=now - timedelta(days=2))
        users.append(user)
    services.record_purchase(
        team=team, reference=f"{slug}-pack", tokens=tokens, purchased_at=now - timedelta(days=1), now=now
    )
    return team, users


def job(event_id: str, user, start, variant: str = "simple") -> dict:
    return {
        "id": event_id,
        "user": user.email,
        "product": "cfd-simulation",
        "variant": variant,
        "started_at": start.isoformat(),
    }


def test_single_events_posted_at_once_are_charged_together_each_exactly_once(on_postgresql):  # noqa: F811
    team, users = make_team("group", tokens=600)
    base = timezone.now() - timedelta(hours=1)
    calls: list[list[dict]] = []
    for n in range(THREADS):
        # Times interleave across threads, so batches arrive out of time order and re-price.
        calls.append(
            [
                job(
                    f"t{n}-{k}",
                    users[(n + k) % 4],
                    base + timedelta(seconds=k * THREADS + (n * 7) % THREADS),
                    "moderate" if (n + k) % 3 == 0 else "simple",
                )
                for k in range(CALLS)
            ]
        )
    # Every thread also sends its neighbour's first event, at the same time as the neighbour.
    for n in range(THREADS):
        calls[n].insert(1, dict(calls[(n + 1) % THREADS][0]))
    sent = {e["id"]: e for batch in calls for e in batch}
    assert sum(PRICE[e["variant"]] for e in sent.values()) > 600, "more asked for than the pack holds"

    barrier = threading.Barrier(THREADS, timeout=30)
    answers: dict[str, list[dict]] = defaultdict(list)
    errors: list[BaseException] = []

    def post(n: int) -> None:
        barrier.wait()
        for event in calls[n]:
            result = services.log_event(team=team, event=event)
            assert result["id"] == event["id"], (event, result)  # its own result
            answers[event["id"]].append(result)

    _run([_thread(post, errors, n) for n in range(THREADS)])
    assert errors == []

    stored = {e.event_id: e for e in UsageEvent.objects.filter(team=team)}
    assert set(stored) == set(sent)  # every event stored, none lost
    for event_id, given in answers.items():
        assert all(r["status"] in ("charged", "denied") for r in given), given
        # Charged once: one answer says so, every answer is the stored first outcome.
        assert [r["replayed"] for r in given].count(False) == 1, (event_id, given)
        assert all({**r, "replayed": False} == stored[event_id].result for r in given), event_id
    assert sum(len(given) for given in answers.values()) == sum(len(batch) for batch in calls)

    charged = _assert_packs_sound(team)
    assert charged <= 600
    assert UsageEvent.objects.filter(team=team, reason="insufficient_balance").exists()
    assert ledger_violations(now=timezone.now()) == []
    assert not PendingEvent.objects.exists()

    # Charged together: the events of one charging transaction share their received_at.
    transactions = UsageEvent.objects.filter(team=team).values("received_at").annotate(n=Count("id"))
    assert len(transactions) < len(stored) * 0.8, f"{len(transactions)} transactions for {len(stored)} events"
    assert max(t["n"] for t in transactions) > 1


def test_a_leader_that_dies_leaves_the_waiting_events_to_the_next_leader(on_postgresql):  # noqa: F811
    team, users = make_team("dying", tokens=100)
    now = timezone.now()
    doomed = job("doomed", users[0], now - timedelta(minutes=2))
    waiter = job("waiter", users[1], now - timedelta(minutes=3))
    leading, charged, stop = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, object] = {}
    errors: list[BaseException] = []

    def dying_leader() -> None:
        try:
            with transaction.atomic():
                assert group_commit._take_lead(team, wait=False)
                seen["pid"] = connection.connection.info.backend_pid
                leading.set()
                # Wait until the other request has queued its event, then charge it with ours.
                deadline = time.monotonic() + 30
                while not PendingEvent.objects.filter(team=team).exists() and time.monotonic() < deadline:
                    time.sleep(0.05)
                seen["result"] = group_commit._lead(team, now=None, own_event=doomed)
                seen["row"] = PendingEvent.objects.get(team=team).result
                charged.set()
                stop.wait(30)  # killed here, before its commit
        except DatabaseError as error:
            seen["killed"] = error
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    def waiting_request() -> None:
        seen["waiter"] = services.log_event(team=team, event=waiter)

    leader = threading.Thread(target=dying_leader)
    leader.start()
    assert leading.wait(30)
    follower = _thread(waiting_request, errors)
    follower.start()
    assert charged.wait(30), errors
    assert seen["row"]["status"] == "charged"  # the dying leader charged the waiting event too...
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [seen["pid"]])
    stop.set()
    _join([leader, follower])
    assert errors == []
    assert "killed" in seen

    # ...but its transaction rolled back: the waiting request led next and charged its event once.
    assert seen["waiter"]["status"] == "charged" and seen["waiter"]["replayed"] is False
    assert list(UsageEvent.objects.filter(team=team).values_list("event_id", flat=True)) == ["waiter"]
    assert not PendingEvent.objects.exists()
    # The dead leader's own call failed; its retry is charged now, once.
    retried = services.log_event(team=team, event=doomed)
    assert retried["status"] == "charged" and retried["replayed"] is False
    _assert_packs_sound(team)
    assert ledger_violations(now=timezone.now()) == []


def test_different_teams_lead_at_the_same_time(on_postgresql):  # noqa: F811
    """Leadership is per team: a team whose leader is busy does not hold another team's up."""
    first, first_users = make_team("first", tokens=100)
    second, second_users = make_team("second", tokens=100)
    now = timezone.now()
    holding, done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def busy_leader() -> None:
        with transaction.atomic():
            assert group_commit._take_lead(first, wait=False)
            holding.set()
            done.wait(30)

    thread = _thread(busy_leader, errors)
    thread.start()
    try:
        assert holding.wait(30)
        result = services.log_event(team=second, event=job("other-team", second_users[0], now))
        assert result["status"] == "charged"
        with transaction.atomic():
            assert not group_commit._take_lead(first, wait=False)  # the first team's is taken
    finally:
        done.set()
        _join([thread])
    assert errors == []
    assert services.log_event(team=first, event=job("first-team", first_users[0], now))["status"] == "charged"
