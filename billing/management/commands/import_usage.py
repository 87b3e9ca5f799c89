"""Import usage events from a CSV file through the real charging code (api.md, "Commands").

    python manage.py import_usage FILE.csv --team SLUG [--historical] [--skip-invalid]

Columns (header row required, in any order): id, user, product, variant, started_at,
ended_at, quantity. variant, ended_at and quantity may be empty (or left out).

Every row is validated before anything is charged: one bad row stops the import with a
list of every bad line, unless ``--skip-invalid`` (then the good rows are imported and the
skipped lines listed). Events are charged in time order, in batches of up to 1000, through
``billing.services.log_usage``, which follows the live rules (docs/charging.md,
"Re-pricing"): each pack pays only while it was valid, and one the expiry job has already
closed still pays for usage from before its expiry. ``--historical`` replays events of any
age and closes the packs that expired between batches, as the schedule would have.
Ids already imported are replayed (charged once), so a failed import can simply be re-run.

Memory does not grow with the file: the first pass checks the rows a few thousand at a time
and keeps the good ones as sorted runs of ``RUN_ROWS`` rows, spilled to a temporary folder
when the file is longer; the second pass merges the runs into time order and charges them
(bench/import_stream.py measures it).
"""

from __future__ import annotations

import csv
import heapq
import pickle
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import islice
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import reset_queries
from django.utils import timezone

from accounts.models import Team
from accounts.selectors import team_members_by_email
from billing import services
from billing.events import MAX_BATCH, ParsedEvent, read_event, rule_problems
from billing.rates import RateBook
from core.money import ZERO, fmt

COLUMNS = ("id", "user", "product", "variant", "started_at", "ended_at", "quantity")
REQUIRED_COLUMNS = ("id", "user", "product", "started_at")
# Rows checked together (one query for their members); and rows sorted in memory at a time:
# a longer file is sorted in runs of this size written to a temporary folder, then merged.
CHECK_ROWS = 2_000
RUN_ROWS = 20_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# A good row on its way to the charging code: (start in microseconds since the epoch, line, event).
Ready = tuple[int, int, dict]


@dataclass
class Row:
    """One data line of the file; ``event`` is what could be read, ``errors`` what is wrong."""

    line: int
    values: dict[str, str]
    event: ParsedEvent | None = None
    errors: list[str] = field(default_factory=list)

    def raw(self) -> dict:
        """The line as an event for ``billing.events``: empty cells are left out."""
        return {name: value for name, value in self.values.items() if value}


@dataclass
class Scan:
    """What the first pass over the file found: counts, and the good rows
    as sorted runs (the last one in memory, the others spilled to disk)."""

    rows: int = 0
    bad: int = 0
    good: int = 0
    run: list[Ready] = field(default_factory=list)
    spilled: list[Path] = field(default_factory=list)

    def add(self, row: Row, spill: Path) -> None:
        started_at = row.event.started_at
        self.run.append((_micros(started_at), row.line, row.raw()))
        self.good += 1
        if len(self.run) >= RUN_ROWS:
            self.close_run(spill, keep=False)

    def close_run(self, spill: Path, *, keep: bool = True) -> None:
        """Sort the run in memory; write it to disk unless it is the last and may stay."""
        self.run.sort(key=lambda ready: ready[:2])
        if keep and not self.spilled:
            return
        if not self.run:
            return
        path = spill / f"run-{len(self.spilled):05d}.pickle"
        with path.open("wb") as handle:
            for ready in self.run:
                pickle.dump(ready, handle, pickle.HIGHEST_PROTOCOL)
        self.spilled.append(path)
        self.run = []

    def in_time_order(self) -> Iterator[Ready]:
        """Every good row by (start, line): the runs merged, one row of each in memory."""
        if not self.spilled:
            return iter(self.run)
        return heapq.merge(*(_load(path) for path in self.spilled), key=lambda ready: ready[:2])


def _micros(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (no float rounding)."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _load(path: Path) -> Iterator[Ready]:
    """Read back a run written by :meth:`Scan.close_run` (our own file, in our own temporary folder)."""
    with path.open("rb") as handle:
        while True:
            try:
                yield pickle.load(handle)  # noqa: S301 - written by this process a moment ago
            except EOFError:
                return


def batched(items: Iterable[Ready], size: int) -> Iterator[list[Ready]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class Command(BaseCommand):
    help = (
        "Charge usage events from a CSV file (id,user,product,variant,started_at,ended_at,quantity) "
        "for one team. Validates every row first; --historical replays events of any age in time order."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The CSV file, with a header row.")
        parser.add_argument("--team", required=True, help="The team's slug.")
        parser.add_argument(
            "--historical",
            action="store_true",
            help="Replay events of any age (migration, demo data); packs expire on time between batches.",
        )
        parser.add_argument(
            "--skip-invalid", action="store_true", help="Import the valid rows and list the invalid ones skipped."
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=MAX_BATCH,
            help=f"Events per batch (1 to {MAX_BATCH}; default {MAX_BATCH}).",
        )

    def handle(self, *args, **options) -> None:
        team = Team.objects.filter(slug=options["team"]).first()
        if team is None:
            raise CommandError(f"There is no team with the slug “{options['team']}”.")
        batch_size = options["batch_size"]
        if not 1 <= batch_size <= MAX_BATCH:
            raise CommandError(f"--batch-size must be between 1 and {MAX_BATCH}.")
        path = Path(options["file"])
        with tempfile.TemporaryDirectory(prefix="import_usage-") as spill:
            scan = self._scan(path, team=team, skip_invalid=options["skip_invalid"], spill=Path(spill))
            if scan.bad and not options["skip_invalid"]:
                raise CommandError(
                    f"{scan.bad} of {scan.rows} rows in {path.name} are invalid; nothing was imported. "
                    "Fix them, or pass --skip-invalid to import the other rows."
                )
            errors = self._import(scan, team=team, historical=options["historical"], batch_size=batch_size)
        if errors:
            noun = "event was" if errors == 1 else "events were"
            raise CommandError(f"{errors} {noun} not imported (see the lines above); the others were.")

    # Reading and validating ---------------------------------------------------------------------

    def _scan(self, path: Path, *, team: Team, skip_invalid: bool, spill: Path) -> Scan:
        """Check every row (nothing is charged yet), print each bad one, and keep the good ones
        in time order: sorted runs of ``RUN_ROWS`` rows, spilled to ``spill`` when the file is
        longer, so memory does not grow with the file."""
        scan = Scan()
        pending: list[Row] = []
        for row in self._read(path):
            pending.append(row)
            if len(pending) == CHECK_ROWS:
                self._check(pending, team=team, skip_invalid=skip_invalid, scan=scan, spill=spill)
                pending = []
        self._check(pending, team=team, skip_invalid=skip_invalid, scan=scan, spill=spill)
        scan.close_run(spill)
        return scan

    def _check(self, rows: list[Row], *, team: Team, skip_invalid: bool, scan: Scan, spill: Path) -> None:
        self._validate(rows, team=team)
        for row in rows:
            scan.rows += 1
            if row.errors:
                scan.bad += 1
                self.stdout.write(f"{'Skipped line' if skip_invalid else 'line'} {row.line}: {' '.join(row.errors)}")
            else:
                scan.add(row, spill)
        if scan.rows and scan.rows % (CHECK_ROWS * 25) < len(rows):
            self.stderr.write(f"checked {scan.rows} rows")

    def _read(self, path: Path) -> Iterator[Row]:
        try:
            # utf-8-sig: spreadsheets often start the file with a byte order mark.
            with path.open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.reader(handle)
                header = next(reader, None)
                if header is None:
                    raise CommandError(f"{path} is empty; a header row is required: {','.join(COLUMNS)}.")
                columns = self._check_header([name.strip().lower() for name in header])
                for cells in reader:
                    if not any(cell.strip() for cell in cells):
                        continue
                    row = Row(line=reader.line_num, values={name: "" for name in COLUMNS})
                    if len(cells) > len(columns):
                        row.errors.append(f"{len(cells)} values, but the header has {len(columns)} columns.")
                    for name, cell in zip(columns, cells, strict=False):
                        row.values[name] = cell.strip()
                    yield row
        except FileNotFoundError:
            raise CommandError(f"There is no file {path}.") from None
        except (IsADirectoryError, PermissionError) as error:
            raise CommandError(f"Can't read {path}: {error.strerror}.") from None
        except UnicodeDecodeError:
            raise CommandError(f"{path} is not UTF-8 text; save it as CSV (UTF-8).") from None
        except csv.Error as error:
            raise CommandError(f"{path} is not a readable CSV file: {error}.") from None

    def _check_header(self, columns: list[str]) -> list[str]:
        problems = []
        missing = [name for name in REQUIRED_COLUMNS if name not in columns]
        if missing:
            problems.append(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}.")
        unknown = [name for name in columns if name not in COLUMNS]
        if unknown:
            problems.append(f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}.")
        repeated = sorted({name for name in columns if columns.count(name) > 1 and name in COLUMNS})
        if repeated:
            problems.append(f"repeated column{'s' if len(repeated) > 1 else ''} {', '.join(repeated)}.")
        if problems:
            self.stdout.write(f"line 1 (header): {' '.join(problems)} Expected: {','.join(COLUMNS)}.")
            raise CommandError("The header row is not valid; nothing was imported.")
        return columns

    def _validate(self, rows: list[Row], *, team: Team) -> None:
        """Check every row with the one usage-event validator (``billing.events``); the
        team's members and the rate sheet are read once for all rows. What depends on the
        moment of charging (an event too old for live use) is left to ``log_usage``."""
        now = timezone.now()
        shapes = []
        for row in rows:
            event, problems = read_event(row.line, row.raw())
            row.event = event
            row.errors += [problem.sentence for problem in problems]
            shapes.append({problem.field for problem in problems})
        members = team_members_by_email(team=team, emails={row.event.email for row in rows if row.event.email})
        rates = RateBook.load({row.event.product for row in rows if row.event.product})
        for row, unreadable in zip(rows, shapes, strict=True):
            problems = rule_problems(
                row.event,
                rates=rates,
                members=members,
                team_slug=team.slug,
                now=now,
                historical=True,
                unreadable=unreadable,
            )
            row.errors += [problem.sentence for problem in problems]

    # Charging ---------------------------------------------------------------------------------

    def _import(self, scan: Scan, *, team: Team, historical: bool, batch_size: int) -> int:
        """Charge the good rows in time order; print per-event errors and the summary; return the errors."""
        counts: Counter[str] = Counter()
        tokens = credits = ZERO
        done = 0
        for batch in batched(scan.in_time_order(), batch_size):
            results = services.log_usage(team=team, events=[raw for _, _, raw in batch], historical=historical)
            for (_, line, raw), result in zip(batch, results, strict=True):
                if result["status"] == "error":
                    counts["errors"] += 1
                    error = result["error"]
                    details = "; ".join(f"{name}: {text}" for name, text in error.get("fields", {}).items())
                    self.stdout.write(
                        f"line {line}: event {raw['id']}: {error['message']}" + (f" ({details})" if details else "")
                    )
                elif result.get("replayed"):
                    counts["replayed"] += 1
                else:
                    counts[result["status"]] += 1
                    tokens += Decimal(result["tokens"])
                    credits += Decimal(result["cloud_credits"])
            if historical:
                # Close what expired before the next batch's events, so the replay (and the
                # expiry entries) see each pack expire on time. Never beyond the real now.
                batch_end = min(EPOCH + timedelta(microseconds=batch[-1][0]), timezone.now())
                services.expire_packs(now=batch_end)
                services.expire_cloud_credits(now=batch_end)
            done += len(batch)
            self._progress(done, scan.good)
            reset_queries()  # with DEBUG on, Django keeps every statement: not for a million rows
        mode = "historical replay" if historical else "live"
        skipped = f", {scan.bad} invalid rows skipped" if scan.bad else ""
        self.stdout.write(
            f"Imported {scan.good} events into {team.slug} ({mode}{skipped}): "
            f"{counts['charged']} charged, {counts['no_charge']} no charge, {counts['denied']} denied, "
            f"{counts['replayed']} replayed, {counts['errors']} errors; "
            f"{fmt(tokens)} tokens and {fmt(credits)} cloud credits charged."
        )
        return counts["errors"]

    def _progress(self, done: int, total: int) -> None:
        line = f"{done}/{total} events ({done * 100 // total}%)"
        if self.stderr.isatty():
            self.stderr.write(f"\r{line}", ending="\n" if done == total else "")
        else:
            self.stderr.write(line)
