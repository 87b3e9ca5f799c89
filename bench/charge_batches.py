"""How fast log_usage charges batches, and how many queries a batch costs.

    .venv/bin/python bench/charge_batches.py [--events N] [--batches B]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/flexadmin_bench .venv/bin/python bench/charge_batches.py

Without DATABASE_URL it uses a throwaway SQLite file in /tmp (deleted afterwards). With
DATABASE_URL it uses that database: point it at a scratch one, because the run migrates it
and leaves its team, users and events behind (under a fresh slug, so runs don't collide).

Set-up goes through the services (reseller, team, members, Flex assignments, packs), then
B batches of N events each are charged one after the other through
``billing.services.log_usage``, as the historical import does. A batch is a realistic mix:
AutoCAD and Revit sessions of 40 users over one day (relaunches inside the window, some
sessions outliving it), CFD jobs with variants, members without Flex (denied), and ids
repeated inside the batch. Finally the first batch is sent again to time a replay. See
docs/benchmarks.md for measured numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report_data  # bench/ is not a package: its folder is on the path (its Django set-up is shared)

START = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)  # the first batch's day
PURCHASED = datetime(2026, 1, 1, tzinfo=UTC)
USERS = 40
UNASSIGNED = 4
H = timedelta(hours=1)
VARIANTS = ["simple", "moderate", "complex"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000, help="events per batch, 1 to 1000 (default 1000)")
    parser.add_argument("--batches", type=int, default=20, help="batches, one day of usage each (default 20)")
    args = parser.parse_args()
    if not 1 <= args.events <= 1000:
        parser.error("--events must be between 1 and 1000 (log_usage takes at most 1000 events)")
    if not 1 <= args.batches <= 300:
        parser.error("--batches must be between 1 and 300 (one day each, inside the packs' year)")
    return args


def make_team(run: str):
    """A team with 40 assigned members, 4 without Flex, and packs enough for every batch."""
    from accounts import services as accounts
    from billing import services as billing

    reseller = accounts.create_reseller(name=f"Bench reseller {run}", slug=f"bench-{run}")
    team = accounts.create_team(
        reseller=reseller,
        name=f"Bench team {run}",
        slug=f"bench-{run}",
        plan="premium",
        time_zone="Europe/Berlin",
        contract_start=date(2025, 1, 1),
        contract_end=date(2028, 12, 31),
    )
    admin = accounts.invite_user(
        team=team, email=f"admin-{run}@bench.example", role="primary_admin", actor=None, notify=False
    ).user
    assigned, unassigned = [], []
    for n in range(USERS + UNASSIGNED):
        user = accounts.invite_user(team=team, email=f"user{n}-{run}@bench.example", actor=admin, notify=False).user
        if n < USERS:
            billing.assign_flex(team=team, user=user, products="all", actor=admin, at=PURCHASED)
            assigned.append(user)
        else:
            unassigned.append(user)
    # Two packs: the smaller expires first and is spent first, then the big one.
    billing.record_purchase(team=team, reference="BENCH-1", tokens=5_000, purchased_at=PURCHASED, now=PURCHASED)
    billing.record_purchase(
        team=team, reference="BENCH-2", tokens=50_000_000, purchased_at=PURCHASED + H, now=PURCHASED + H
    )
    return team, assigned, unassigned


def make_batch(number: int, size: int, assigned, unassigned) -> list[dict]:
    """One day of usage (the day of batch ``number``), ``size`` events in time order."""
    day = START + timedelta(days=number)
    step = timedelta(hours=14) / size
    events: list[dict] = []
    for n in range(size):
        kind, at = n % 10, day + n * step
        event_id = f"b{number}-{n}"
        if kind == 9 and events:
            events.append(dict(events[-3]))  # a client retry inside the batch
        elif kind == 8:
            user = unassigned[n % len(unassigned)]
            events.append(_daily(event_id, user, "autocad", at, at + 2 * H))
        elif kind in (6, 7):
            user = assigned[n % len(assigned)]
            events.append(
                {
                    "id": event_id,
                    "user": user.email,
                    "product": "cfd-simulation",
                    "variant": VARIANTS[n % 3],
                    "quantity": 1 + n % 2,
                    "started_at": at.isoformat(),
                }
            )
        else:
            user = assigned[n % len(assigned)]
            length = 30 * H if n % 17 == 0 else 3 * H  # some sessions outlive their window
            events.append(_daily(event_id, user, "autocad" if kind % 2 else "revit", at, at + length))
    return events


def _daily(event_id: str, user, product: str, start: datetime, end: datetime) -> dict:
    return {
        "id": event_id,
        "user": user.email,
        "product": product,
        "started_at": start.isoformat(),
        "ended_at": end.isoformat(),
    }


class QueryCounter:
    """Counts statements sent to the database (an executemany counts once)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def timed(team, events: list[dict], now: datetime) -> tuple[float, int, list[dict]]:
    from django.db import connection

    from billing.services import log_usage

    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        started = time.perf_counter()
        results = log_usage(team=team, events=events, now=now, historical=True)
        elapsed = time.perf_counter() - started
    return elapsed, counter.count, results


def run_on_database(run, args: argparse.Namespace) -> None:
    """Set Django up on DATABASE_URL or a throwaway SQLite file, ``run(args)``, then delete the file."""
    throwaway = report_data.setup_django(throwaway_ok=True)
    try:
        run(args)
    finally:
        report_data.remove_throwaway(throwaway)


def main() -> None:
    run_on_database(run, parse_args())


def run(args: argparse.Namespace) -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    print(f"database: {report_data.database_label()}, {os.cpu_count()} cores")
    print(f"charging {args.batches} batches of {args.events} events ({args.batches * args.events} events)")

    team, assigned, unassigned = make_team(uuid.uuid4().hex[:8])
    batches = [make_batch(b, args.events, assigned, unassigned) for b in range(args.batches)]
    now = START + timedelta(days=args.batches + 2)
    seconds, queries, outcomes = [], [], {}
    for batch in batches:
        elapsed, count, results = timed(team, batch, now)
        seconds.append(elapsed)
        queries.append(count)
        for result in results:
            outcomes[result["status"]] = outcomes.get(result["status"], 0) + 1
    replay_seconds, replay_queries, replayed = timed(team, batches[0], now)
    assert all(r["replayed"] for r in replayed), "a re-sent batch must be replayed"

    total = sum(seconds)
    events = args.batches * args.events
    print(f"outcomes: {', '.join(f'{k} {v}' for k, v in sorted(outcomes.items()))}")
    print(f"total {total:.2f} s: {events / total:,.0f} events/s")
    print(
        f"per batch: median {statistics.median(seconds) * 1000:.0f} ms, max {max(seconds) * 1000:.0f} ms; "
        f"queries min {min(queries)}, median {statistics.median(queries):g}, max {max(queries)}"
    )
    print(
        f"replay of batch 1: {replay_seconds * 1000:.0f} ms ({args.events / replay_seconds:,.0f} events/s), "
        f"{replay_queries} queries"
    )


if __name__ == "__main__":
    main()
