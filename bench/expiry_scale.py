"""How fast the pack expiry job closes 10,000 due packs among 100,000 across 1,000 teams.

    createdb -h 127.0.0.1 -U postgres flexadmin_bench_expiry
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/flexadmin_bench_expiry .venv/bin/python bench/expiry_scale.py

PostgreSQL only (the baseline is one PostgreSQL statement); point it at a scratch database:
the run migrates it and leaves its teams and packs behind (under a fresh prefix).

Set-up, in SQL: 1,000 teams of one reseller, 100 packs each with their purchase entries;
10 packs of every team are past their expiry (90 of them holding tokens), the others valid
for months. Then, alternating (``--runs`` times each), with the due packs reopened in
between so every run does the same work:

- ``expire_packs``: ``billing.services.expire_packs`` (what the Celery job calls), its
  Python memory peak (tracemalloc) for a tenth of the teams due and for all of them, and a
  second run straight after, which has nothing left to do;
- ``baseline``: one set-based statement doing the same work: a CTE that locks the due
  packs, inserts their expiry entries and closes them.

It prints min/median/max of each and the ratio. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import charge_batches as batches  # bench/ is not a package: its folder is on the path

TEAMS = 1_000
PACKS = 100  # per team
DUE = 10  # per team
NOW = datetime(2026, 6, 1, tzinfo=UTC)

BASELINE = """
WITH due AS (
    SELECT id, team_id, remaining, expires_at FROM billing_tokenpack
    WHERE expired_at IS NULL AND expires_at <= %(now)s
    ORDER BY id FOR UPDATE
), entries AS (
    INSERT INTO billing_ledgerentry (team_id, pack_id, kind, amount, at, note, created_at)
    SELECT team_id, id, 'expiry', -remaining, expires_at, 'Expired unused', %(now)s FROM due WHERE remaining > 0
)
UPDATE billing_tokenpack AS pack SET remaining = 0, expired_at = %(now)s FROM due WHERE pack.id = due.id
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="alternating runs of each (default 3)")
    return parser.parse_args()


def build(prefix: str) -> None:
    """The teams, packs and purchase entries, and a table of the due packs to reopen them from."""
    from django.db import connection

    from accounts.models import Reseller

    reseller = Reseller.objects.create(name=f"Expiry bench {prefix}", slug=f"expiry-{prefix}")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO accounts_team (name, slug, plan, time_zone, contract_start, contract_end, report_names,
                                       reseller_id, created_at)
            SELECT 'Bench ' || n, %(prefix)s || '-' || n, 'standard', 'UTC', DATE '2024-01-01', DATE '2028-12-31',
                   true, %(reseller)s, now()
            FROM generate_series(1, %(teams)s) AS n
            """,
            {"prefix": prefix, "reseller": reseller.pk, "teams": TEAMS},
        )
        # Pack p of team n: the first DUE expired (minutes apart by team, so that a tenth of
        # the teams can be due alone), the rest valid; every 10th due pack is already spent.
        cursor.execute(
            """
            INSERT INTO billing_tokenpack (team_id, reseller_id, reference, tokens, remaining, currency,
                                           purchased_at, expires_at, created_at)
            SELECT team.id, %(reseller)s, team.slug || '-' || p, 100 + p, CASE WHEN p = 1 THEN 0 ELSE 100 + p END,
                   '', expiry - INTERVAL '1 year', expiry, now()
            FROM accounts_team AS team
            CROSS JOIN generate_series(1, %(packs)s) AS p
            CROSS JOIN LATERAL (
                SELECT CASE WHEN p <= %(due)s THEN %(now)s - (team.id %% %(teams)s) * INTERVAL '1 minute'
                            ELSE %(now)s + (p || ' days')::interval END AS expiry
            ) AS t
            WHERE team.reseller_id = %(reseller)s
            """,
            {"reseller": reseller.pk, "packs": PACKS, "due": DUE, "now": NOW, "teams": TEAMS},
        )
        cursor.execute(
            """
            INSERT INTO billing_ledgerentry (team_id, pack_id, kind, amount, at, note, created_at)
            SELECT team_id, id, 'purchase', tokens, purchased_at, '', now() FROM billing_tokenpack
            WHERE reseller_id = %(reseller)s
            """,
            {"reseller": reseller.pk},
        )
        cursor.execute(
            """
            INSERT INTO billing_ledgerentry (team_id, pack_id, kind, amount, at, note, created_at)
            SELECT team_id, id, 'usage', -tokens, purchased_at + INTERVAL '1 day', '', now() FROM billing_tokenpack
            WHERE reseller_id = %(reseller)s AND remaining = 0
            """,
            {"reseller": reseller.pk},
        )
        cursor.execute(
            "CREATE TABLE bench_due AS SELECT id, remaining FROM billing_tokenpack"
            " WHERE reseller_id = %(reseller)s AND expires_at <= %(now)s",
            {"reseller": reseller.pk, "now": NOW},
        )
        cursor.execute("ANALYZE")


def reopen() -> None:
    """Undo an expiry run: the due packs hold what they held, their expiry entries go. The
    ledger's append-only trigger is bypassed for that one statement (a superuser's
    ``session_replication_role``): a scratch database only."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(
            "DELETE FROM billing_ledgerentry WHERE kind = 'expiry' AND pack_id IN (SELECT id FROM bench_due)"
        )
        cursor.execute("SET session_replication_role = origin")
        cursor.execute(
            "UPDATE billing_tokenpack AS pack SET remaining = due.remaining, expired_at = NULL"
            " FROM bench_due AS due WHERE pack.id = due.id"
        )
        cursor.execute("VACUUM ANALYZE billing_tokenpack")
        cursor.execute("VACUUM ANALYZE billing_ledgerentry")


def app(now: datetime) -> tuple[float, int]:
    """expire_packs: seconds and packs closed."""
    from billing.services import expire_packs

    started = time.perf_counter()
    closed = expire_packs(now=now)
    return time.perf_counter() - started, closed


def memory(now: datetime) -> tuple[int, float]:
    """expire_packs under tracemalloc (slower, so not timed): packs closed, Python memory peak in MiB."""
    from billing.services import expire_packs

    tracemalloc.start()
    closed = expire_packs(now=now)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return closed, peak


def baseline() -> tuple[float, int]:
    from django.db import connection, transaction

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(BASELINE, {"now": NOW})
        closed = cursor.rowcount
    return time.perf_counter() - started, closed


def spread(values: list[float], digits: int = 2) -> str:
    low, middle, high = min(values), statistics.median(values), max(values)
    return f"min {low:.{digits}f}, median {middle:.{digits}f}, max {high:.{digits}f}"


def run(args: argparse.Namespace) -> None:
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit("Set DATABASE_URL to a scratch PostgreSQL database: the baseline is a PostgreSQL statement.")
    call_command("migrate", verbosity=0, interactive=False)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_due")
    prefix = uuid.uuid4().hex[:8]
    started = time.perf_counter()
    build(prefix)
    print(
        f"built {TEAMS:,} teams, {TEAMS * PACKS:,} packs, {TEAMS * DUE:,} due in {time.perf_counter() - started:.1f} s"
    )
    tenth = NOW - timedelta(minutes=TEAMS * 9 // 10)  # the teams whose due packs expired by then
    ours, theirs, again, small, large = [], [], [], [], []
    for number in range(args.runs):
        reopen()
        seconds, closed = app(NOW)
        assert closed == TEAMS * DUE, closed
        ours.append(seconds)
        started = time.perf_counter()
        assert app(NOW)[1] == 0
        again.append(time.perf_counter() - started)
        reopen()
        seconds, closed = baseline()
        assert closed == TEAMS * DUE, closed
        theirs.append(seconds)
        reopen()
        closed, peak = memory(tenth)  # the last tenth of the teams
        small.append(peak)
        closed_rest, peak = memory(NOW)  # the other nine tenths
        assert closed + closed_rest == TEAMS * DUE, (closed, closed_rest)
        large.append(peak)
        print(
            f"run {number + 1}: expire_packs {ours[-1]:.2f} s, baseline {theirs[-1]:.2f} s "
            f"({ours[-1] / theirs[-1]:.1f}x); second run {again[-1]:.3f} s; memory peak {small[-1]:.1f} MiB "
            f"({closed:,} packs due), {large[-1]:.1f} MiB ({closed_rest:,})"
        )
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    print(f"expire_packs, {TEAMS * DUE:,} due: {spread(ours)} s")
    print(f"baseline statement:          {spread(theirs)} s")
    print(f"ratio:                       {spread(ratios, 1)} x")
    print(f"second run (nothing due):    {spread(again, 3)} s")
    print(f"memory peak, {TEAMS * DUE // 10:,} due:   {spread(small, 1)} MiB")
    print(f"memory peak, {TEAMS * DUE * 9 // 10:,} due:   {spread(large, 1)} MiB")


def main() -> None:
    batches.run_on_database(run, parse_args())


if __name__ == "__main__":
    main()
