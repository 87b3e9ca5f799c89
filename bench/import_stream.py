"""How fast ``import_usage`` charges a CSV file, and whether its memory grows with the file.

    .venv/bin/python bench/import_stream.py [--events N] [--runs R]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/flexadmin_bench .venv/bin/python bench/import_stream.py

Without DATABASE_URL it uses a throwaway SQLite file in /tmp (deleted afterwards); with it,
point it at a scratch database (the run migrates it and leaves its teams behind, under fresh
slugs). Each run, alternating so that a busy moment of the machine hits both alike:

- ``baseline``: the events charged by calling ``billing.services.log_usage`` directly, in
  batches of 1,000 already in memory (``historical=True``): the batch charging speed;
- ``import``: the same kind of events written to a CSV file and imported by
  ``manage.py import_usage FILE --team SLUG --historical`` in a child process that reports
  its resident memory after start-up and at its peak (``VmRSS`` and ``VmHWM`` in
  /proc: ``ru_maxrss`` would carry the parent's peak across ``exec``); once with a quarter of
  the file and once with all of it, so a memory that grows with the file shows.

The events are bench/charge_batches.py's: one day of a 40-person team per 1,000 events
(sessions, relaunches, CFD jobs, members without Flex, retried ids). It prints events/s of
both, the import's ratio to the baseline, and the memory growth of the two file sizes.
See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import charge_batches as batches  # bench/ is not a package: its folder is on the path

ROOT = batches.report_data.ROOT
COLUMNS = ["id", "user", "product", "variant", "started_at", "ended_at", "quantity"]

# The child: start Django, note the resident memory, import, print the peak (both in KiB).
CHILD = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flexadmin.settings")
import django
django.setup()
from django.core.management import call_command
from billing.management.commands import import_usage  # loaded before the start figure
def status(name):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(name))
start = status("VmRSS:")
call_command("import_usage", sys.argv[1], "--team", sys.argv[2], "--historical", stdout=open(os.devnull, "w"))
print(start, status("VmHWM:"))
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=40_000, help="events in the full file (default 40,000)")
    parser.add_argument("--runs", type=int, default=3, help="alternating runs (default 3)")
    args = parser.parse_args()
    if not 4_000 <= args.events <= 280_000:
        parser.error("--events must be between 4,000 and 280,000 (one day per 1,000 events, inside a year)")
    return args


def events_for(count: int, assigned, unassigned) -> list[dict]:
    days = count // 1000
    return [event for day in range(days) for event in batches.make_batch(day, 1000, assigned, unassigned)]


def write_csv(path: Path, events: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for event in events:
            writer.writerow({name: event.get(name, "") for name in COLUMNS})


def baseline(count: int) -> float:
    """Events per second of log_usage itself on batches already in memory."""
    from billing.services import log_usage

    team, assigned, unassigned = batches.make_team(uuid.uuid4().hex[:8])
    events = events_for(count, assigned, unassigned)
    now = batches.START + timedelta(days=count // 1000 + 2)
    started = time.perf_counter()
    for first in range(0, len(events), 1000):
        log_usage(team=team, events=events[first : first + 1000], now=now, historical=True)
    return len(events) / (time.perf_counter() - started)


def imported(count: int, folder: Path) -> tuple[float, float]:
    """Events per second of import_usage in a child process, and its memory growth in MiB."""
    team, assigned, unassigned = batches.make_team(uuid.uuid4().hex[:8])
    path = folder / f"{team.slug}.csv"
    write_csv(path, events_for(count, assigned, unassigned))
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), team.slug],
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"import_usage failed:\n{done.stderr[-2000:]}")
    start_kib, peak_kib = (int(value) for value in done.stdout.split()[-2:])
    path.unlink()
    return count / elapsed, (peak_kib - start_kib) / 1024


def spread(values: list[float], unit: str, digits: int = 0) -> str:
    low, middle, high = min(values), statistics.median(values), max(values)
    return f"min {low:,.{digits}f}, median {middle:,.{digits}f}, max {high:,.{digits}f} {unit}"


def main() -> None:
    batches.run_on_database(run, parse_args())


def run(args: argparse.Namespace) -> None:
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0, interactive=False)
    print(f"database: {connection.vendor} ({connection.settings_dict['NAME']}), {os.cpu_count()} cores")
    quarter = args.events // 4 // 1000 * 1000
    print(f"{args.runs} alternating runs; files of {quarter:,} and {args.events:,} events")
    base, speed, small, large = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="flexadmin-import-") as folder:
        for number in range(args.runs):
            base.append(baseline(args.events))
            rate, growth = imported(args.events, Path(folder))
            speed.append(rate)
            large.append(growth)
            small.append(imported(quarter, Path(folder))[1])
            print(
                f"run {number + 1}: log_usage {base[-1]:,.0f} events/s; import {rate:,.0f} events/s "
                f"({rate / base[-1]:.2f}x); memory growth {small[-1]:.1f} MiB ({quarter:,} events), "
                f"{large[-1]:.1f} MiB ({args.events:,} events)"
            )
    ratios = [rate / b for rate, b in zip(speed, base, strict=True)]
    print(f"baseline log_usage: {spread(base, 'events/s')}")
    print(f"import_usage:       {spread(speed, 'events/s')}")
    print(f"ratio import/log_usage: {spread(ratios, 'x', 2)}")
    print(f"memory growth, {quarter:,} events: {spread(small, 'MiB', 1)}")
    print(f"memory growth, {args.events:,} events: {spread(large, 'MiB', 1)}")


if __name__ == "__main__":
    main()
