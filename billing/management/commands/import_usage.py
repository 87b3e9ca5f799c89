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
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts.models import Team
from accounts.selectors import team_members_by_email
from billing import services
from billing.events import MAX_BATCH, ParsedEvent, read_event, rule_problems
from billing.rates import RateBook
from core.money import ZERO, fmt

COLUMNS = ("id", "user", "product", "variant", "started_at", "ended_at", "quantity")
REQUIRED_COLUMNS = ("id", "user", "product", "started_at")


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
        rows = self._read(path)
        self._validate(rows, team=team)
        bad = [row for row in rows if row.errors]
        if bad and not options["skip_invalid"]:
            for row in bad:
                self.stdout.write(f"line {row.line}: {' '.join(row.errors)}")
            raise CommandError(
                f"{len(bad)} of {len(rows)} rows in {path.name} are invalid; nothing was imported. "
                "Fix them, or pass --skip-invalid to import the other rows."
            )
        for row in bad:
            self.stdout.write(f"Skipped line {row.line}: {' '.join(row.errors)}")
        good = [row for row in rows if not row.errors]
        errors = self._import(good, team=team, historical=options["historical"], batch_size=batch_size, bad=len(bad))
        if errors:
            noun = "event was" if errors == 1 else "events were"
            raise CommandError(f"{errors} {noun} not imported (see the lines above); the others were.")

    # Reading and validating ---------------------------------------------------------------------

    def _read(self, path: Path) -> list[Row]:
        try:
            # utf-8-sig: spreadsheets often start the file with a byte order mark.
            with path.open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.reader(handle)
                header = next(reader, None)
                if header is None:
                    raise CommandError(f"{path} is empty; a header row is required: {','.join(COLUMNS)}.")
                columns = self._check_header([name.strip().lower() for name in header])
                rows = []
                for cells in reader:
                    if not any(cell.strip() for cell in cells):
                        continue
                    row = Row(line=reader.line_num, values={name: "" for name in COLUMNS})
                    if len(cells) > len(columns):
                        row.errors.append(f"{len(cells)} values, but the header has {len(columns)} columns.")
                    for name, cell in zip(columns, cells, strict=False):
                        row.values[name] = cell.strip()
                    rows.append(row)
                return rows
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

    def _import(self, rows: list[Row], *, team: Team, historical: bool, batch_size: int, bad: int) -> int:
        """Charge the rows in time order; print per-event errors and the summary; return the errors."""
        # Time order: windows and pack validity depend on it (domain.md, "Jobs").
        rows = sorted(rows, key=lambda row: (row.event.started_at, row.line))
        counts: Counter[str] = Counter()
        tokens = credits = ZERO
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            results = services.log_usage(team=team, events=[row.raw() for row in batch], historical=historical)
            for row, result in zip(batch, results, strict=True):
                if result["status"] == "error":
                    counts["errors"] += 1
                    error = result["error"]
                    details = "; ".join(f"{name}: {text}" for name, text in error.get("fields", {}).items())
                    self.stdout.write(
                        f"line {row.line}: event {row.values['id']}: {error['message']}"
                        + (f" ({details})" if details else "")
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
                batch_end = min(batch[-1].event.started_at, timezone.now())
                services.expire_packs(now=batch_end)
                services.expire_cloud_credits(now=batch_end)
            self._progress(start + len(batch), len(rows))
        mode = "historical replay" if historical else "live"
        skipped = f", {bad} invalid rows skipped" if bad else ""
        self.stdout.write(
            f"Imported {len(rows)} events into {team.slug} ({mode}{skipped}): "
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
