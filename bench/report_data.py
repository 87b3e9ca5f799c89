"""A benchmark team with a year of usage: 1,000,000 charged events by default.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/flexadmin_bench_reports \\
        .venv/bin/python bench/report_data.py [--events N] [--users 200] [--days 365] [--no-check]

Builds ONE Premium team through the services, the way a real installation gets its data:
members (``invite_user``), Flex assignments (``assign_flex``), a token pack at the start of
each month sized to that month's usage (``record_purchase``), and the usage itself charged in
historical batches of 1,000 through ``billing.services.log_usage``, in time order (as the
CSV import does). So events, charges, windows, ledger entries and rollups are written by the
code that writes them in production, and ``check_ledger`` comes out clean. It ends with the
expiry job (``expire_packs``: the oldest packs may have passed their year) and, unless
``--no-check``, ``billing.selectors.ledger_check`` (every team in the database: use a
scratch one). Progress goes to stderr; the last line on stdout is the team's slug.

The shape: ``--days`` days up to yesterday (the team's days, Europe/Berlin), ``--users``
members. On a weekday 90% of the members work, at the weekend 10%. A member has one to three
daily products (AutoCAD, Revit, Inventor, Civil 3D, Navisworks) launched at the same minute
every working day (so every launch opens a new 24-hour window and is charged once), and one
to three per-result cloud services (CFD simulation with its variants, generative design,
design automation, final-quality rendering): every job is charged. Daily launches are about
10% of the charged events; the jobs fill the rest, so that exactly ``--events`` events are
charged. On top of those, about 1% more that are not charged: relaunches inside an open
window and free standard renders (no charge), launches and jobs of five members whose Flex
covers two products only (denied, not assigned), and a few jobs on the first morning, before
the first pack was bought (denied, insufficient balance).

Other benchmarks reuse it: ``generate(events=...)`` returns the team, its primary admin and
the counts (see bench/report_speed.py).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH = 1000
TIME_ZONE = "Europe/Berlin"
DAILY = {"autocad": 7, "revit": 10, "inventor": 8, "civil-3d": 10, "navisworks": 6}
DAILY_WEIGHTS = {"autocad": 5, "revit": 4, "inventor": 2, "civil-3d": 2, "navisworks": 1}
JOBS = {"cfd-simulation": 4, "generative-design": 1, "design-automation": 4, "cloud-rendering-final": 3}
CFD_VARIANTS = {"simple": Decimal(5), "moderate": Decimal(10), "complex": Decimal(35)}
RESTRICTED = 5  # members whose Flex covers two products only
RESTRICTED_PRODUCTS = ["autocad", "design-automation"]
DAILY_SHARE = 0.10  # of the charged events, at most: daily launches
FIRST_NAMES = ["Alex", "Sam", "Robin", "Kim", "Jo", "Chris", "Pat", "Lee", "Max", "Nico", "Toni", "Andrea"]
LAST_NAMES = ["Meyer", "Schmidt", "Rossi", "Dubois", "Novak", "Berg", "Jensen", "Silva", "Kowalski", "Weber"]


@dataclass
class Member:
    user: object
    email: str
    daily: list[str]  # daily products launched on a working day
    jobs: list[str]  # per-result services used
    job_weights: list[int]
    launch: dict[str, int]  # minute of the day (UTC) each daily product is launched
    weight: float  # how busy the member is, relative to the others
    restricted: bool = False


@dataclass
class Generated:
    """What ``generate`` made: the team, its primary admin, and what happened to the events."""

    team: object
    admin: object
    first_day: date
    last_day: date
    outcomes: Counter = field(default_factory=Counter)  # status -> events
    reasons: Counter = field(default_factory=Counter)  # denial reason -> events
    packs: int = 0
    tokens_bought: int = 0
    seconds: float = 0.0

    @property
    def slug(self) -> str:
        return self.team.slug


def setup_django(*, throwaway_ok: bool) -> str | None:
    """Point Django at DATABASE_URL (or, when ``throwaway_ok``, a SQLite file in /tmp that
    the caller deletes); returns that file's name."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flexadmin.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    throwaway = None
    if not os.environ.get("DATABASE_URL"):
        if not throwaway_ok:
            raise SystemExit("Set DATABASE_URL to a scratch database (see the docstring).")
        handle, throwaway = tempfile.mkstemp(prefix="flexadmin-bench-", suffix=".sqlite3", dir="/tmp")
        os.close(handle)
        os.environ["DATABASE_URL"] = f"sqlite:///{throwaway}"
    import django

    django.setup()
    from django.conf import settings

    # No mail leaves a benchmark. The first month's pack passes its year on the day the run
    # ends, so recording it already finds the balance low (0 tokens) and would send the team
    # a low-balance alert (printed on the console by default) before any usage is charged.
    settings.EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
    return throwaway


def remove_throwaway(throwaway: str | None) -> None:
    if throwaway:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(throwaway + suffix).unlink(missing_ok=True)


def database_label() -> str:
    from django.db import connection

    label = connection.vendor
    if label == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("show server_version")
            label += " " + cursor.fetchone()[0].split()[0]
    else:
        import sqlite3

        label += " " + sqlite3.sqlite_version
    return f"{label} ({connection.settings_dict['NAME']})"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- Set-up ----------------------------------------------------------------------------------------


def _make_team(run: str, *, users: int, first_day: date, rng: random.Random):
    from accounts import services as accounts
    from billing import services as billing

    reseller = accounts.create_reseller(name=f"Report bench reseller {run}", slug=f"rbench-{run}")
    team = accounts.create_team(
        reseller=reseller,
        name=f"Report bench {run}",
        slug=f"rbench-{run}",
        plan="premium",
        time_zone=TIME_ZONE,
        contract_start=first_day - timedelta(days=400),
        contract_end=first_day + timedelta(days=3 * 365),
    )
    admin = accounts.invite_user(
        team=team,
        email=f"admin-{run}@bench.example",
        role="primary_admin",
        first_name="Bench",
        last_name="Admin",
        actor=None,
        notify=False,
        consented=True,
    ).user
    assigned_at = datetime.combine(first_day - timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    members = []
    daily_codes, daily_weights = list(DAILY_WEIGHTS), list(DAILY_WEIGHTS.values())
    for n in range(users):
        first, last = FIRST_NAMES[n % len(FIRST_NAMES)], LAST_NAMES[(n // len(FIRST_NAMES)) % len(LAST_NAMES)]
        user = accounts.invite_user(
            team=team,
            email=f"user{n:03d}-{run}@bench.example",
            first_name=first,
            last_name=f"{last} {n}",
            actor=admin,
            notify=False,
            consented=True,
        ).user
        restricted = n >= users - RESTRICTED
        billing.assign_flex(
            team=team, user=user, products=RESTRICTED_PRODUCTS if restricted else "all", actor=admin, at=assigned_at
        )
        if restricted:
            daily, jobs = ["autocad"], ["design-automation"]
        else:
            daily = _pick(rng, daily_codes, daily_weights, rng.choice([1, 1, 2, 2, 3]))
            jobs = _pick(rng, list(JOBS), list(JOBS.values()), rng.choice([1, 2, 2, 3]))
        members.append(
            Member(
                user=user,
                email=user.email,
                daily=daily,
                jobs=jobs,
                job_weights=[JOBS[code] for code in jobs],
                launch={code: 7 * 60 + rng.randrange(240) for code in daily},
                weight=rng.choice([0.3, 0.6, 1.0, 1.0, 1.5, 2.5]),
                restricted=restricted,
            )
        )
    return team, admin, members


def _pick(rng: random.Random, codes: list[str], weights: list[int], count: int) -> list[str]:
    chosen: list[str] = []
    while len(chosen) < count:
        code = rng.choices(codes, weights)[0]
        if code not in chosen:
            chosen.append(code)
    return chosen


# --- The plan: who works on which day, what they launch, how many jobs they run ---------------------


@dataclass
class WorkDay:
    member: Member
    launches: list[str]
    jobs: int = 0


def _plan(members: list[Member], days: list[date], *, charged: int, rng: random.Random) -> dict[date, list[WorkDay]]:
    """Working days, their daily launches and their number of jobs: exactly ``charged``
    charged events in all (each launch opens a window, each job is charged)."""
    plan: dict[date, list[WorkDay]] = {}
    for day in days:
        share = 0.9 if day.weekday() < 5 else 0.1
        plan[day] = [WorkDay(m, list(m.daily)) for m in members if rng.random() < share]
    work_days = [w for day in days for w in plan[day]]
    if not work_days:
        raise SystemExit("No working days: give more --days or --users.")
    launches = sum(len(w.launches) for w in work_days)
    keep = min(1.0, DAILY_SHARE * charged / launches) if launches else 0.0
    for w in work_days:
        # Thinned for small runs; a member keeps a fixed launch minute, so a launch a day or
        # more after the last one always opens a new window.
        w.launches = [code for code in w.launches if rng.random() < keep]
    launches = sum(len(w.launches) for w in work_days)
    if launches > charged:  # tiny runs: drop launches until they fit
        for w in work_days:
            while w.launches and launches > charged:
                w.launches.pop()
                launches -= 1
    jobs = charged - launches
    total_weight = sum(w.member.weight for w in work_days)
    cumulative, given = 0.0, 0
    for w in work_days:
        cumulative += w.member.weight
        upto = math.floor(jobs * cumulative / total_weight + 1e-9)
        w.jobs, given = upto - given, upto
    work_days[-1].jobs += jobs - given
    return plan


def _day_events(day: date, index: int, work: list[WorkDay], rng: random.Random) -> list[tuple[dict, Decimal]]:
    """One day's events in time order, each with what it will cost (0: not charged)."""
    midnight = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    events: list[tuple[datetime, dict, Decimal]] = []
    seq = 0

    def add(at: datetime, event: dict, cost: Decimal) -> None:
        nonlocal seq
        event["id"] = f"d{index}-{seq}"
        event["started_at"] = at.isoformat()
        seq += 1
        events.append((at, event, cost))

    for w in work:
        email = w.member.email
        for code in w.launches:
            start = midnight + timedelta(minutes=w.member.launch[code])
            end = start + timedelta(minutes=rng.randrange(60, 9 * 60))
            add(start, {"user": email, "product": code, "ended_at": end.isoformat()}, Decimal(DAILY[code]))
            if rng.random() < 0.03:  # a relaunch inside the open window: no charge
                again = start + timedelta(minutes=rng.randrange(10, 120))
                add(
                    again,
                    {"user": email, "product": code, "ended_at": (again + timedelta(hours=1)).isoformat()},
                    Decimal(0),
                )
        for _ in range(w.jobs):
            at = midnight + timedelta(hours=7, seconds=rng.randrange(12 * 3600))
            code = rng.choices(w.member.jobs, w.member.job_weights)[0]
            event, cost = _job(code, email, rng)
            add(at, event, cost)
        if rng.random() < 0.02:  # a free standard render: no charge
            at = midnight + timedelta(hours=8, seconds=rng.randrange(8 * 3600))
            add(at, {"user": email, "product": "cloud-rendering", "quantity": 1}, Decimal(0))
        if w.member.restricted and rng.random() < 0.5:  # outside their Flex: denied, not assigned
            at = midnight + timedelta(hours=9, seconds=rng.randrange(6 * 3600))
            if rng.random() < 0.5:
                add(at, {"user": email, "product": "revit", "ended_at": (at + timedelta(hours=2)).isoformat()}, 0)
            else:
                add(at, {"user": email, "product": "cfd-simulation", "variant": "simple", "quantity": 1}, 0)
    events.sort(key=lambda item: item[0])
    return [(event, Decimal(cost)) for _, event, cost in events]


def _job(code: str, email: str, rng: random.Random) -> tuple[dict, Decimal]:
    if code == "cfd-simulation":
        variant = rng.choices(list(CFD_VARIANTS), [6, 3, 1])[0]
        quantity = rng.choice([1, 1, 1, 2])
        return {"user": email, "product": code, "variant": variant, "quantity": quantity}, CFD_VARIANTS[
            variant
        ] * quantity
    if code == "generative-design":
        return {"user": email, "product": code, "quantity": 1}, Decimal(11)
    if code == "design-automation":
        hours = Decimal(rng.choice(["0.25", "0.5", "1", "1.5", "2", "3"]))
        return {"user": email, "product": code, "quantity": str(hours)}, (2 * hours).quantize(Decimal("0.01"))
    renders = rng.choice([1, 2, 4, 8, 12])
    return {"user": email, "product": code, "quantity": renders}, Decimal("1.50") * renders


# --- Charging --------------------------------------------------------------------------------------


def generate(
    *,
    events: int = 1_000_000,
    users: int = 200,
    days: int = 365,
    today: date | None = None,
    seed: int = 11,
    progress=_stderr,
) -> Generated:
    """Build the team and charge its year; see the module's docstring. ``today`` defaults to
    today (UTC): the usage covers the ``days`` days before it."""
    from django.utils import timezone

    from billing import services as billing

    if events < 1 or users < RESTRICTED + 1 or days < 1:
        raise SystemExit(f"Give --events >= 1, --users >= {RESTRICTED + 1} and --days >= 1.")
    started = time.perf_counter()
    rng = random.Random(seed)
    today = today or timezone.now().date()
    dates = [today - timedelta(days=days - n) for n in range(days)]
    run = uuid.uuid4().hex[:8]
    team, admin, members = _make_team(run, users=users, first_day=dates[0], rng=rng)
    plan = _plan(members, dates, charged=events, rng=rng)
    result = Generated(team=team, admin=admin, first_day=dates[0], last_day=dates[-1])
    progress(f"team {team.slug}: {users} members, {days} days ({dates[0]} to {dates[-1]}), {events:,} charged events")

    # A few jobs on the first morning, before the first pack: denied, insufficient balance.
    first_midnight = datetime.combine(dates[0], datetime.min.time(), tzinfo=UTC)
    assigned = [m for m in members if not m.restricted]
    early = [
        {
            "id": f"early-{n}",
            "user": assigned[n % len(assigned)].email,
            "product": "generative-design",
            "quantity": 1,
            "started_at": (first_midnight + timedelta(hours=5, minutes=n)).isoformat(),
        }
        for n in range(10)
    ]
    now = timezone.now()
    _charge(team, early, now, result)

    available = Decimal(0)
    pending: list[dict] = []
    done, last_report = 0, time.perf_counter()
    total_expected = events * 1.01
    month: list[tuple[date, list[tuple[dict, Decimal]]]] = []
    # Usage is made a month at a time: the month's pack is bought at its start (the first
    # day's 06:00 UTC, before any launch), sized to what the month will spend.
    for day_index, day in enumerate(dates):
        month.append((day, _day_events(day, day_index, plan[day], rng)))
        if day_index < len(dates) - 1 and dates[day_index + 1].month == day.month:
            continue
        needed = sum((cost for _, day_events in month for _, cost in day_events), Decimal(0)) - available
        if needed > 0:
            tokens = int(math.ceil(float(needed) * 1.02 / 1000) * 1000)
            bought_at = datetime.combine(month[0][0], datetime.min.time(), tzinfo=UTC) + timedelta(hours=6)
            billing.record_purchase(
                team=team, reference=f"RB-{run}-{day:%Y-%m}", tokens=tokens, purchased_at=bought_at, now=now
            )
            available += tokens
            result.packs += 1
            result.tokens_bought += tokens
        for event_day, day_events in month:
            for event, cost in day_events:
                pending.append(event)
                available -= cost
                if len(pending) == BATCH:
                    _charge(team, pending, now, result)
                    done += len(pending)
                    pending = []
                    if time.perf_counter() - last_report > 10:
                        last_report = time.perf_counter()
                        rate = done / (last_report - started)
                        progress(
                            f"  {done:,} events charged through {event_day}, {rate:,.0f} events/s, "
                            f"about {max(0.0, (total_expected - done) / rate):,.0f} s to go"
                        )
        month = []
    if pending:
        _charge(team, pending, now, result)
        done += len(pending)
    # The oldest packs may have passed their year meanwhile: the expiry job closes them.
    billing.expire_packs(now=timezone.now())
    result.seconds = time.perf_counter() - started
    progress(
        f"done: {done + len(early):,} events in {result.seconds:,.0f} s "
        f"({(done + len(early)) / result.seconds:,.0f}/s); "
        + ", ".join(f"{status} {count:,}" for status, count in sorted(result.outcomes.items()))
        + f"; {result.packs} packs, {result.tokens_bought:,} tokens bought"
    )
    if result.outcomes["charged"] != events:
        raise SystemExit(f"expected {events:,} charged events, got {result.outcomes['charged']:,}")
    return result


def _charge(team, events: list[dict], now: datetime, result: Generated) -> None:
    from billing.services import log_usage

    for outcome in log_usage(team=team, events=events, now=now, historical=True):
        result.outcomes[outcome["status"]] += 1
        if outcome["status"] == "denied":
            result.reasons[outcome["reason"]] += 1
        elif outcome["status"] == "error":
            raise SystemExit(f"an event was refused: {outcome['error']}")


def check(progress=_stderr) -> None:
    """``billing.selectors.ledger_check`` over the whole database; exits on a violation."""
    from billing.selectors import ledger_check

    started = time.perf_counter()
    report = ledger_check()
    progress(
        f"ledger check: {report.entries:,} entries, {report.packs} packs, "
        f"{len(report.violations)} violations ({time.perf_counter() - started:.1f} s)"
    )
    if report.violations:
        for line in report.violations[:20]:
            progress(f"  {line}")
        raise SystemExit("the ledger check found violations")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="charged events (default 1,000,000)")
    parser.add_argument("--users", type=int, default=200, help="members (default 200)")
    parser.add_argument("--days", type=int, default=365, help="days of usage up to yesterday (default 365)")
    parser.add_argument("--seed", type=int, default=11, help="random seed (default 11)")
    parser.add_argument("--no-check", action="store_true", help="skip the ledger check at the end")
    args = parser.parse_args()
    setup_django(throwaway_ok=False)
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    _stderr(f"database: {database_label()}")
    generated = generate(events=args.events, users=args.users, days=args.days, seed=args.seed)
    if not args.no_check:
        check()
    print(generated.slug)


if __name__ == "__main__":
    main()
