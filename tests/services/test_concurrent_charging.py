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

# Usage net of the draws re-pricing gave back (docs/charging.md, "Re-pricing").
NET_USAGE = (EntryKind.USAGE, EntryKind.REPRICE)
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

    _run([threading.Thread(target=send, args=(n,), name=f"charger-{n}") for n in range(THREADS)])
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

    # The tokens charged are exactly the tokens drawn from packs (net of re-pricing), and
    # every pack's remaining is the sum of its entries, never negative, never overdrawn.
    charged = _assert_packs_sound(team)

    # The balance ran out under contention: someone was refused for it.
    denied = UsageEvent.objects.filter(team=team, status="denied", reason="insufficient_balance")
    assert denied.exists()
    assert charged <= sum(tokens for _, tokens, _ in PACKS)

    from billing.selectors import ledger_violations

    assert ledger_violations(now=NOW) == []


def _run(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung (deadlock?)"


def _assert_packs_sound(team) -> Decimal:
    """Tokens charged equal tokens drawn (net of re-pricing); every pack holds the sum of
    its entries, never negative, never overdrawn. Returns the tokens charged."""
    charged = UsageEvent.objects.filter(team=team).aggregate(total=Sum("tokens"))["total"]
    drawn = LedgerEntry.objects.filter(team=team, kind__in=NET_USAGE, pack__isnull=False).aggregate(
        total=Sum("amount")
    )["total"]
    assert charged == -drawn > 0
    for pack in TokenPack.objects.filter(team=team):
        entries = pack.entries.aggregate(total=Sum("amount"))["total"]
        usage = -(pack.entries.filter(kind__in=NET_USAGE).aggregate(total=Sum("amount"))["total"] or Decimal(0))
        assert pack.remaining == entries, pack.reference
        assert 0 <= pack.remaining <= pack.tokens, pack.reference
        assert usage <= pack.tokens, f"{pack.reference} paid {usage} of {pack.tokens}"
    return charged


def _demand(pool: list[dict], ids: set[str]) -> Decimal:
    """What the sent events would cost with no balance limit (windows ignored: an upper bound
    of daily charges, so count only the launches, not the relaunches)."""
    price = {"autocad": 7, "revit": 10, "simple": 5, "moderate": 10, "complex": 35}
    total = Decimal(0)
    for event in pool:
        if event["id"] in ids and not event["id"].endswith("-again"):
            total += price[event.get("variant") or event["product"]]
    return total


LIVE_NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def test_concurrent_late_and_in_order_batches_never_spend_a_token_twice(on_postgresql):
    """16 workers, live: half send in-order batches of recent events, half late batches of
    earlier ones (re-pricing what the others charged), while the expiry job closes a pack
    that expired in the middle of it all. Tokens are never spent twice, no pack goes
    negative, and the ledger check stays clean (docs/charging.md, "Re-pricing")."""
    team = TeamFactory(slug="late-race", reseller=ResellerFactory(slug="late-race-reseller"))
    users = []
    for n in range(4):
        user = UserFactory(email=f"late{n}@race.example")
        MembershipFactory(user=user, team=team, role="primary_admin" if n == 0 else "member")
        services.assign_flex(team=team, user=user, products="all", actor=None, at=datetime(2026, 1, 1, tzinfo=UTC))
        users.append(user)
    expiring_at = LIVE_NOW - 20 * H
    packs = [("LATE-EXPIRING", 30, expiring_at - timedelta(days=365)), ("LATE-MAIN", 150, LIVE_NOW - 30 * 24 * H)]
    for reference, tokens, at in packs:
        [pack, _] = services.record_purchase(team=team, reference=reference, tokens=tokens, purchased_at=at, now=at)
        if reference == "LATE-EXPIRING":
            assert pack.expires_at <= expiring_at + 24 * H
    rng = random.Random(20261313)

    def batch(n: int, late: bool) -> list[dict]:
        events = []
        for k in range(EVENTS_PER_THREAD):
            user = users[(n + k) % len(users)]
            # Late batches: 30 to 46 hours ago (around the expiry); in-order ones: the last 10 hours.
            start = LIVE_NOW - (rng.randint(30 * 60, 46 * 60) if late else rng.randint(60, 10 * 60)) * timedelta(
                minutes=1
            )
            if k % 3:
                product = ["autocad", "revit"][k % 2]
                events.append(
                    {
                        "id": f"w{n}-{k}",
                        "user": user.email,
                        "product": product,
                        "started_at": start.isoformat(),
                        "ended_at": min(start + rng.choice([1, 3, 25]) * H, LIVE_NOW).isoformat(),
                    }
                )
            else:
                events.append(
                    {
                        "id": f"w{n}-{k}",
                        "user": user.email,
                        "product": "cfd-simulation",
                        "variant": rng.choice(["simple", "moderate"]),
                        "started_at": start.isoformat(),
                    }
                )
        # Overlap: every worker also sends one event of its neighbour.
        events.append({**events[0], "id": f"w{(n + 1) % THREADS}-0"})
        return events

    batches = [batch(n, late=n % 2 == 1) for n in range(THREADS)]
    barrier = threading.Barrier(THREADS + 1, timeout=30)
    errors: list[BaseException] = []

    def send(n: int) -> None:
        try:
            barrier.wait()
            services.log_usage(team=team, events=batches[n], now=LIVE_NOW)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    def expire() -> None:
        try:
            barrier.wait()
            services.expire_packs(now=LIVE_NOW)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    _run([*(threading.Thread(target=send, args=(n,)) for n in range(THREADS)), threading.Thread(target=expire)])
    assert errors == []

    assert UsageEvent.objects.filter(team=team).count() == len({e["id"] for b in batches for e in b})
    charged = _assert_packs_sound(team)
    assert LedgerEntry.objects.filter(team=team, kind=EntryKind.REPRICE).exists(), "late batches re-priced"
    assert charged <= sum(tokens for _, tokens, _ in packs)
    from billing.selectors import ledger_violations

    assert ledger_violations(now=LIVE_NOW) == []
