"""Charging speed against the database's own speed: log_usage vs raw executemany vs COPY.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/flexadmin_bench \
        .venv/bin/python bench/charge_speed.py [--runs R] [--batches B]

Needs PostgreSQL (COPY); point DATABASE_URL at a scratch database: the run migrates it and
leaves two teams and their rows behind (under a fresh slug, so runs don't collide).

Set-up as ``bench/charge_batches.py``: a team of 40 members with Flex and 4 without, two
packs, and batches of 1,000 events (one day of usage each, the realistic mix of that
script). Each run charges B batches through ``billing.services.log_usage`` and, alternating
with them batch by batch, writes the same rows twice more into a second team, as the
database's own speed:

- **executemany**: the usage events, charges and ledger entries one batch wrote, as plain
  tuples, through ``cursor.executemany`` of an ``INSERT`` (a plain psycopg 3 cursor:
  server-side binding, pipelined; Django's client-side binding cursor is slower);
- **COPY**: the same rows through ``COPY ... FROM STDIN`` (psycopg 3).

Both take their ids from the tables' sequences first (one query per table, as the charges
and entries need the events' and charges' ids) and run in a transaction of their own, commit
included, as ``log_usage`` does. The rows are read back from what ``log_usage`` wrote
before timing starts; the events get new ids (the client's) so they are new rows. The order
of the three writers rotates from batch to batch. Each run prints events/s for each and the
ratios; the summary gives min / median / max over the runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import charge_batches  # bench/ is not a package: its folder is on the path
import report_data

MODES = ("log_usage", "executemany", "copy")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="alternating runs (default 5)")
    parser.add_argument("--batches", type=int, default=4, help="1,000-event batches per writer and run (default 4)")
    return parser.parse_args()


def main() -> None:
    charge_batches.run_on_database(run, parse_args())


def captured_rows(team, event_ids: list[str]) -> dict:
    """What log_usage wrote for these events (events, charges, ledger entries), as tuples
    in the columns it writes, with the ids that link them."""
    from billing.models import Charge, LedgerEntry, UsageEvent
    from billing.services.usage import CHARGE_COLUMNS, ENTRY_COLUMNS, EVENT_COLUMNS

    events = list(UsageEvent.objects.filter(team=team, event_id__in=event_ids).values_list("id", *EVENT_COLUMNS))
    pks = [row[0] for row in events]
    charges = list(Charge.objects.filter(event_id__in=pks).values_list("id", *CHARGE_COLUMNS))
    entries = list(LedgerEntry.objects.filter(event_id__in=pks).values_list(*ENTRY_COLUMNS))
    return {"events": events, "charges": charges, "entries": entries}


def raw_write(rows: dict, *, team_id: int, pack_id: int, prefix: str, copy: bool) -> None:
    """The rows as a raw writer would store them: ids from the sequences, then one
    executemany (or COPY) per table, in one transaction."""
    import psycopg
    from django.db import connection, transaction
    from psycopg.types.json import Jsonb

    from billing.services.usage import CHARGE_COLUMNS, ENTRY_COLUMNS, EVENT_COLUMNS

    tables = [
        ("billing_usageevent", EVENT_COLUMNS),
        ("billing_charge", CHARGE_COLUMNS),
        ("billing_ledgerentry", ENTRY_COLUMNS),
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        # psycopg's own cursor: server-side binding, executemany pipelined (Django's cursor
        # binds on the client side and is slower at this).
        raw = psycopg.Cursor(connection.connection)
        ids = {}
        for table, key in (("billing_usageevent", "events"), ("billing_charge", "charges")):
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, len(rows[key])]
            )
            ids[key] = dict(zip((row[0] for row in rows[key]), (row[0] for row in cursor.fetchall()), strict=True))
        events = [
            (ids["events"][r[0]], team_id, prefix + r[2], *r[3:14], Jsonb(r[14]), None, r[16], Jsonb(r[17]))
            for r in rows["events"]
        ]
        charges = [(ids["charges"][r[0]], ids["events"][r[1]], *r[2:]) for r in rows["charges"]]
        entries = [
            (team_id, pack_id, None, *r[3:6], ids["events"][r[6]], ids["charges"][r[7]], *r[8:])
            for r in rows["entries"]
        ]
        for (table, columns), data in zip(tables, (events, charges, entries), strict=True):
            names = ", ".join(("id", *columns) if data is not entries else columns)
            if copy:
                with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as stream:
                    for row in data:
                        stream.write_row(row)
            else:
                marks = ", ".join(["%s"] * len(data[0]))
                raw.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", data)


def run(args: argparse.Namespace) -> None:
    from django.core.management import call_command
    from django.db import connection

    from billing import services
    from billing.models import TokenPack

    if connection.vendor != "postgresql":
        sys.exit("charge_speed.py measures PostgreSQL (COPY): set DATABASE_URL to a scratch PostgreSQL database.")
    call_command("migrate", verbosity=0, interactive=False)
    print(f"database: {report_data.database_label()}")
    slug = uuid.uuid4().hex[:8]
    team, assigned, unassigned = charge_batches.make_team(slug)
    other, _, _ = charge_batches.make_team(f"{slug}-raw")
    other_pack = TokenPack.objects.filter(team=other).order_by("id").first()
    size = 1000
    total = args.runs * args.batches
    batches = [charge_batches.make_batch(b, size, assigned, unassigned) for b in range(total + 1)]
    now = charge_batches.START + timedelta(days=total + 3)
    # A first batch warms the caches (rates, connection) and gives the raw writers their rows.
    services.log_usage(team=team, events=batches[0], now=now, historical=True)
    rows = captured_rows(team, [e["id"] for e in batches[0]])
    written = len(rows["events"])  # events stored per batch (retries inside it are replayed)
    print(
        f"per batch: {size} events sent, {written} stored, {len(rows['charges'])} charges, "
        f"{len(rows['entries'])} ledger entries"
    )
    per_run: dict[str, list[float]] = {mode: [] for mode in MODES}
    ratios: dict[str, list[float]] = {"executemany": [], "copy": []}
    cpu_share: list[float] = []
    for number in range(args.runs):
        seconds = dict.fromkeys(MODES, 0.0)
        cpu = 0.0  # this process's CPU time in log_usage: Python, psycopg's client side
        for b in range(args.batches):
            index = number * args.batches + b
            order = MODES[index % 3 :] + MODES[: index % 3]
            for mode in order:
                started, cpu_started = time.perf_counter(), time.process_time()
                if mode == "log_usage":
                    services.log_usage(team=team, events=batches[index + 1], now=now, historical=True)
                    cpu += time.process_time() - cpu_started
                else:
                    prefix, copy = f"{mode}{index}-", mode == "copy"
                    raw_write(rows, team_id=other.pk, pack_id=other_pack.pk, prefix=prefix, copy=copy)
                seconds[mode] += time.perf_counter() - started
        speed = {mode: args.batches * size / seconds[mode] for mode in MODES}
        cpu_share.append(cpu / seconds["log_usage"])
        for mode in MODES:
            per_run[mode].append(speed[mode])
        for mode in ratios:
            ratios[mode].append(speed["log_usage"] / speed[mode])
        print(
            f"run {number + 1}: log_usage {speed['log_usage']:,.0f} events/s, executemany "
            f"{speed['executemany']:,.0f}/s, COPY {speed['copy']:,.0f}/s; ratio "
            f"{ratios['executemany'][-1]:.2f}x executemany, {ratios['copy'][-1]:.2f}x COPY; "
            f"log_usage spent {cpu_share[-1]:.0%} of its time on this process's CPU"
        )

    def spread(values: list[float], fmt: str) -> str:
        return " / ".join(format(v, fmt) for v in (min(values), statistics.median(values), max(values)))

    print(f"summary over {args.runs} runs of {args.batches} x {size} events each (min / median / max):")
    print(f"  log_usage:   {spread(per_run['log_usage'], ',.0f')} events/s")
    print(f"  executemany: {spread(per_run['executemany'], ',.0f')} events/s (sent events, same rows)")
    print(f"  COPY:        {spread(per_run['copy'], ',.0f')} events/s")
    print(f"  log_usage / executemany: {spread(ratios['executemany'], '.2f')}")
    print(f"  log_usage / COPY:        {spread(ratios['copy'], '.2f')}")
    print(f"  log_usage on this process's CPU: {spread([100 * c for c in cpu_share], '.0f')} % of its time")


if __name__ == "__main__":
    main()
