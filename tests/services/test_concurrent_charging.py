"""Many requests charging one team at the same moment, on PostgreSQL.

log_usage locks the team row (select_for_update) before it reads packs, windows and known
ids, so concurrent batches run one after the other: tokens are never spent twice, a
balance never goes negative (domain.md "Paying") and an id sent by several clients at once
is charged once ("the same id twice is charged once"). SQLite has no row locks, so this
only means something on PostgreSQL.
"""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from billing import services
from billing.models import EntryKind, LedgerEntry, TokenPack, UsageEvent
from tests.factories import MembershipFactory, ResellerFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.services

THREADS = 16
EVENTS_PER_THREAD = 12
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)  # after every event: imported as history
DAY0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)
# 200 tokens in all, against some 570 tokens of distinct events: most are refused.
PACKS = [
    ("RACE-1", 40, datetime(2026, 1, 10, tzinfo=UTC)),
    ("RACE-2", 60, datetime(2026, 2, 1, tzinfo=UTC)),
    ("RACE-3", 100, datetime(2026, 3, 1, tzinfo=UTC)),
]


@pytest.fixture
def on_postgresql(transactional_db, django_db_serialized_rollback):
    """Committed data (the threads have their own connections) and the rate sheet.

    The rate sheet comes from a data migration; a transactional test ends with a flush, and
    the serialized rollback puts the migrated rows back before this test starts.
    """
    if connection.vendor != "postgresql":
        pytest.skip(
            f"Concurrent charging needs PostgreSQL's row locks; DATABASE_URL points at {connection.vendor}. "
            "Run with DATABASE_URL=postgres://... (CI does, with FLEX_REQUIRE_SERVICES=1)."
        )


@pytest.fixture
def race_team(on_postgresql):
    team = TeamFactory(slug="race", reseller=ResellerFactory(slug="race-reseller"))
    admin = UserFactory(email="admin@race.example")
    MembershipFactory(user=admin, team=team, role="primary_admin")
    users = []
    for n in range(4):
        user = UserFactory(email=f"user{n}@race.example")
        MembershipFactory(user=user, team=team)
        services.assign_flex(team=team, user=user, products="all", actor=admin, at=datetime(2026, 1, 1, tzinfo=UTC))
        users.append(user)
    for reference, tokens, at in PACKS:
        services.record_purchase(team=team, reference=reference, tokens=tokens, purchased_at=at, now=at, actor=admin)
    return team, users


def event_pool(users) -> list[dict]:
    """Distinct events worth far more than the 200 tokens the packs hold."""
    pool = []
    for day in range(6):
        for n, user in enumerate(users):
            start = DAY0 + timedelta(days=day, hours=n)
            product = "autocad" if (day + n) % 2 else "revit"
            pool.append(
                {
                    "id": f"d{day}-u{n}-{product}",
                    "user": user.email,
                    "product": product,
                    "started_at": start.isoformat(),
                    "ended_at": (start + 3 * H).isoformat(),
                }
            )
            # A relaunch a little later: inside the window when it is charged after the launch.
            pool.append(
                {
                    "id": f"d{day}-u{n}-{product}-again",
                    "user": user.email,
                    "product": product,
                    "started_at": (start + 4 * H).isoformat(),
                    "ended_at": (start + 5 * H).isoformat(),
                }
            )
            pool.append(
                {
                    "id": f"d{day}-u{n}-cfd",
                    "user": user.email,
                    "product": "cfd-simulation",
                    "variant": ["simple", "moderate", "complex"][(day + n) % 3],
                    "quantity": 1,
                    "started_at": (start + 2 * H).isoformat(),
                }
            )
    return pool


def test_concurrent_batches_never_spend_a_token_twice_nor_charge_an_id_twice(race_team):
    team, users = race_team
    pool = event_pool(users)
    rng = random.Random(20260615)
    # Every thread sends a different overlapping slice of the pool, in its own order, and
    # one of its events twice; most ids are sent by several threads at once.
    batches = []
    for _ in range(THREADS):
        batch = [dict(e) for e in rng.sample(pool, EVENTS_PER_THREAD)]
        batch.append(dict(batch[0]))
        batches.append(batch)
    sent = {e["id"] for batch in batches for e in batch}
    demand = _demand(pool, sent)
    assert demand > sum(tokens for _, tokens, _ in PACKS), "the threads must ask for more than the packs hold"

    barrier = threading.Barrier(THREADS, timeout=30)
    results: dict[int, list[dict]] = {}
    errors: list[BaseException] = []

    def send(n: int) -> None:
        try:
            barrier.wait()
            results[n] = services.log_usage(team=team, events=batches[n], now=NOW, historical=True)
        except BaseException as error:  # reported by the main thread
            errors.append(error)
        finally:
            connection.close()  # each thread opened its own connection

    threads = [threading.Thread(target=send, args=(n,), name=f"charger-{n}") for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a charging thread hung (deadlock?)"
    assert errors == []
    assert len(results) == THREADS

    # Every id exists once.
    stored = {e.event_id: e for e in UsageEvent.objects.filter(team=team)}
    assert set(stored) == sent
    assert UsageEvent.objects.filter(team=team).count() == len(sent)

    # Every id was charged once: all answers for it are the stored first outcome, and only
    # the one that charged it says replayed false.
    answers: dict[str, list[dict]] = defaultdict(list)
    for batch_results in results.values():
        for result in batch_results:
            assert result["status"] != "error", result
            answers[result["id"]].append(result)
    for event_id, given in answers.items():
        assert [r["replayed"] for r in given].count(False) == 1, (event_id, given)
        assert all({**r, "replayed": False} == stored[event_id].result for r in given), event_id
    assert any(len(given) > 2 for given in answers.values()), "ids must be sent by several threads"

    # The tokens charged are exactly the tokens drawn from packs.
    charged = UsageEvent.objects.filter(team=team).aggregate(total=Sum("tokens"))["total"]
    drawn = LedgerEntry.objects.filter(team=team, kind=EntryKind.USAGE, pack__isnull=False).aggregate(
        total=Sum("amount")
    )["total"]
    assert charged == -drawn > 0

    # Every pack's remaining is the sum of its entries, never negative, never overdrawn.
    for pack in TokenPack.objects.filter(team=team):
        entries = pack.entries.aggregate(total=Sum("amount"))["total"]
        usage = -(pack.entries.filter(kind=EntryKind.USAGE).aggregate(total=Sum("amount"))["total"] or Decimal(0))
        assert pack.remaining == entries, pack.reference
        assert 0 <= pack.remaining <= pack.tokens, pack.reference
        assert usage <= pack.tokens, f"{pack.reference} paid {usage} of {pack.tokens}"

    # The balance ran out under contention: someone was refused for it.
    denied = UsageEvent.objects.filter(team=team, status="denied", reason="insufficient_balance")
    assert denied.exists()
    assert charged <= sum(tokens for _, tokens, _ in PACKS)

    from billing.selectors import ledger_violations

    assert ledger_violations(now=NOW) == []


def _demand(pool: list[dict], ids: set[str]) -> Decimal:
    """What the sent events would cost with no balance limit (windows ignored: an upper bound
    of daily charges, so count only the launches, not the relaunches)."""
    price = {"autocad": 7, "revit": 10, "simple": 5, "moderate": 10, "complex": 35}
    total = Decimal(0)
    for event in pool:
        if event["id"] in ids and not event["id"].endswith("-again"):
            total += price[event.get("variant") or event["product"]]
    return total
