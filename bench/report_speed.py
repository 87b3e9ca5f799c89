"""How fast the usage reports answer on a big team, against the SQL they issue and a raw GROUP BY.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/flexadmin_bench_reports \\
        .venv/bin/python bench/report_speed.py --team SLUG [--runs 25] [--warmup 3] [--ranges 12m,30d]
    DATABASE_URL=... .venv/bin/python bench/report_speed.py --events 50000    # generates a team first

``--team`` is a team made by bench/report_data.py (1,000,000 charged events over the last
year); without it the script generates one with ``--events`` events (default 20,000: a quick
run). Without DATABASE_URL it uses a throwaway SQLite file (generated team only).

For each range (``12m``: the last 12 completed months, ``30d``: the past 30 days, as
reporting/ranges.py resolves them on the team's today) it measures, alternating in one loop
so that a busy moment of the machine hits all of them alike:

- every report page (Summary, By Product, the top product's drill-down, By User, the top
  person's drill-down, Denials) through Django's test Client, signed in as the team's primary
  admin, and the usage API (``group_by`` product, user and day) with a team key;
- ``sql``: the statements that page issued (captured once with CaptureQueriesContext), sent
  again one after the other on the same connection with a plain cursor, rows fetched;
- ``raw``: the equivalent GROUP BY over the charges and usage events themselves (what a
  report would cost without the rollup), the baseline issue 14 asks for;
- ``empty``: Summary and By User for a week without usage (before the generated year): the
  page's cost around a report that reads nothing (the shell, the filters, the template).

It prints, per page and range, the median and p95 of each (milliseconds), the ratio of the
page to its SQL and of the raw GROUP BY to the page, and whether the page meets issue 11's
goals at 12 months (p95 <= 300 ms, p95 <= 3x its SQL's p95) and issue 14's goal 4 at both
(p95 <= 150 ms, <= 2x its SQL, >= 20x faster than the raw GROUP BY). DEBUG is off while timing (no
query log). The test Client keeps one database connection; a server without persistent
connections also opens one per request (printed apart). See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report_data  # bench/ is not a package: its folder is on the path

GOAL_P95_MS = 300
GOAL_RATIO = 3
# Issue 14, goal 4, for 12 months and 30 days: p95 <= 150 ms, <= 2x its SQL, >= 20x the raw GROUP BY.
GOAL4_P95_MS, GOAL4_RATIO, GOAL4_RAW = 150, 2, 20
EMPTY = "empty"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--team", help="slug of a team made by bench/report_data.py")
    parser.add_argument("--events", type=int, default=20_000, help="without --team: charged events to generate")
    parser.add_argument("--runs", type=int, default=25, help="timed runs of each page (default 25)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    parser.add_argument(
        "--raw-runs", type=int, help="time the raw GROUP BYs (seconds each on a big team) in this many runs only"
    )
    parser.add_argument("--ranges", default="12m,30d", help="range keys, comma-separated (default 12m,30d)")
    args = parser.parse_args()
    if args.raw_runs is not None and args.raw_runs < 1:
        parser.error("--raw-runs must be at least 1")
    if args.runs < 2:
        parser.error("--runs must be at least 2")
    return args


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (p95 of 25 runs is the 24th fastest)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))
    return ordered[int(rank) - 1]


@dataclass
class Target:
    """One page or API call in one range, with what it is measured against."""

    name: str
    range_key: str
    url: str
    headers: dict
    raw: list  # (sql, params) of the equivalent GROUP BY over the events
    period: object = None
    sql: list[str] = field(default_factory=list)  # what the page issued
    page_ms: list[float] = field(default_factory=list)
    sql_ms: list[float] = field(default_factory=list)
    raw_ms: list[float] = field(default_factory=list)


def main() -> None:
    args = parse_args()
    throwaway = report_data.setup_django(throwaway_ok=not args.team)
    try:
        run(args)
    finally:
        report_data.remove_throwaway(throwaway)


def run(args: argparse.Namespace) -> None:
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import Membership, Role, Team

    call_command("migrate", verbosity=0, interactive=False)
    print(f"database: {report_data.database_label()}, {os.cpu_count()} cores, load {_load()}")
    if args.team:
        team = Team.objects.get(slug=args.team)
        admin = Membership.objects.get(team=team, role=Role.PRIMARY_ADMIN).user
    else:
        generated = report_data.generate(events=args.events)
        team, admin = generated.team, generated.admin
    settings.DEBUG = False  # no query log while timing (the static storage stays the plain one)
    settings.FLEX_API_THROTTLE_RATE = "1000000/minute"  # the runs would otherwise reach the key's limit
    targets = build_targets(team, admin, [key.strip() for key in args.ranges.split(",") if key.strip()])

    from django.test import Client

    page_client, api_client = Client(), Client()
    page_client.force_login(admin)
    clients = {True: api_client, False: page_client}

    def fetch(target: Target) -> None:
        response = clients[target.url.startswith("/api/")].get(target.url, headers=target.headers)
        if response.status_code != 200:
            raise SystemExit(f"{target.name} {target.range_key}: {response.status_code} from {target.url}")

    from django.test.utils import CaptureQueriesContext

    for target in targets:
        fetch(target)
        with CaptureQueriesContext(connection) as captured:
            fetch(target)
        target.sql = [query["sql"] for query in captured.captured_queries]
    check_totals(team, targets)
    for _ in range(args.warmup):
        for target in targets:
            fetch(target)
            replay(target.sql)
            replay_raw(target.raw)

    started = time.perf_counter()
    raw_runs = args.runs if args.raw_runs is None else min(args.raw_runs, args.runs)
    for run_number in range(args.runs):
        for target in targets:
            target.page_ms.append(timed(lambda t=target: fetch(t)))
            target.sql_ms.append(timed(lambda t=target: replay(t.sql)))
            if run_number < raw_runs:
                target.raw_ms.append(timed(lambda t=target: replay_raw(t.raw)))
    print(f"{args.runs} runs after {args.warmup} warm-up runs, {time.perf_counter() - started:.0f} s; load {_load()}")
    report(targets)
    connect = []
    for _ in range(10):
        connection.close()
        connect.append(timed(connection.ensure_connection))
    print(
        f"opening a database connection (paid per request without persistent connections): "
        f"median {statistics.median(connect):.1f} ms"
    )


def build_targets(team, admin, range_keys: list[str]) -> list[Target]:
    from django.urls import reverse
    from django.utils import timezone

    from accounts.services import create_api_key
    from reporting import selectors
    from reporting.ranges import resolve

    _, secret = create_api_key(team=team, name=f"report bench {timezone.now():%Y-%m-%d %H:%M:%S}", actor=None)
    api_headers = {"authorization": f"Bearer {secret}"}
    today = timezone.localtime(timezone.now(), team.tz).date()
    top_product = selectors.usage_by_product(team=team)[0]["product"]
    top_user = selectors.usage_by_user(team=team)[0]["user_id"]
    slug = team.slug
    targets = []
    for key in range_keys:
        period = resolve(key, today=today, contract_start=team.contract_start, contract_end=team.contract_end)
        start, end = period.start, period.end
        q = f"?range={key}"
        api = f"/api/v1/teams/{slug}/usage?start={start}&end={end}&group_by="
        raw = RawQueries(team, start, end)
        previous = period.previous()
        targets += [
            Target(
                "Summary",
                key,
                reverse("reporting:summary", args=[slug]) + q,
                {},
                [raw.totals(), raw.totals(previous.start, previous.end), raw.by_day_and_product()],
            ),
            Target("By Product", key, reverse("reporting:by-product", args=[slug]) + q, {}, [raw.by_product()]),
            Target(
                f"Product {top_product}",
                key,
                reverse("reporting:product-detail", args=[slug, top_product]) + q,
                {},
                [
                    raw.totals(product=top_product),
                    raw.by_day_and_product(product=top_product),
                    raw.by_user(product=top_product),
                ],
            ),
            Target("By User", key, reverse("reporting:by-user", args=[slug]) + q, {}, [raw.by_user()]),
            Target(
                f"User {top_user}",
                key,
                reverse("reporting:user-detail", args=[slug, top_user]) + q,
                {},
                [raw.totals(user_id=top_user), raw.weeks(top_user), raw.by_product(user_id=top_user)],
            ),
            Target("Denials", key, reverse("reporting:denials", args=[slug]) + q, {}, [raw.denials(), raw.reasons()]),
            Target("API product", key, api + "product", api_headers, [raw.by_product()]),
            Target("API user", key, api + "user", api_headers, [raw.by_user()]),
            Target("API day", key, api + "day", api_headers, [raw.by_day()]),
        ]
        for target in targets[-9:]:
            target.period = period
    # The floor: two pages over a week with no usage (before the generated year): what the
    # page costs around its report (the shell, the filters, the template) when the report
    # itself reads nothing.
    start = team.contract_start + timedelta(days=1)
    end, empty = start + timedelta(days=6), RawQueries(team, start, start + timedelta(days=6))
    q = f"?range=custom&start={start}&end={end}"
    targets += [
        Target("Summary", EMPTY, reverse("reporting:summary", args=[slug]) + q, {}, [empty.totals()]),
        Target("By User", EMPTY, reverse("reporting:by-user", args=[slug]) + q, {}, [empty.by_user()]),
    ]
    return targets


class RawQueries:
    """The reports' GROUP BYs over the charges (joined to their usage events) instead of the
    rollup: a charge's day is its time in the team's time zone, as the rollup's is."""

    def __init__(self, team, start, end) -> None:
        self.team, self.start, self.end = team, start, end

    def _charges(self, start=None, end=None, *, product=None, user_id=None):
        from django.db.models.functions import TruncDate

        from billing.models import Charge

        tz = self.team.tz
        start, end = start or self.start, end or self.end
        rows = Charge.objects.filter(event__team=self.team)
        if start is not None:
            rows = rows.filter(at__gte=datetime.combine(start, clock.min, tzinfo=tz))
        if end is not None:
            rows = rows.filter(at__lt=datetime.combine(end + timedelta(days=1), clock.min, tzinfo=tz))
        if product:
            rows = rows.filter(event__product=product)
        if user_id is not None:
            rows = rows.filter(event__user_id=user_id)
        return rows.annotate(local_day=TruncDate("at", tzinfo=tz))

    @staticmethod
    def _amounts() -> dict:
        from django.db.models import Count, Q, Sum

        return {
            "raw_tokens": Sum("tokens"),
            "raw_credits": Sum("cloud_credits"),
            "raw_charges": Count("id", filter=Q(status="charged")),
            "raw_denials": Count("id", filter=Q(status="denied")),
        }

    @staticmethod
    def _sql(queryset) -> tuple[str, tuple]:
        return queryset.query.sql_with_params()

    def totals(self, start=None, end=None, **filters):
        from django.db.models import Count, Q

        charged = Q(status="charged")
        return self._sql(
            self._charges(start, end, **filters)
            .order_by()
            .values("event__team_id")
            .annotate(
                **self._amounts(),
                products=Count("event__product", filter=charged, distinct=True),
                users=Count("event__user_id", filter=charged, distinct=True),
            )
        )

    def by_day_and_product(self, **filters):
        return self._sql(
            self._charges(**filters).order_by().values("local_day", "event__product").annotate(**self._amounts())
        )

    def by_day(self):
        from django.db.models import Count, Q

        charged = Q(status="charged")
        return self._sql(
            self._charges()
            .order_by()
            .values("local_day")
            .annotate(
                **self._amounts(),
                users=Count("event__user_id", filter=charged, distinct=True),
                products=Count("event__product", filter=charged, distinct=True),
            )
        )

    def by_product(self, **filters):
        from django.db.models import Count, Q

        return self._sql(
            self._charges(**filters)
            .order_by()
            .values("event__product")
            .annotate(**self._amounts(), users=Count("event__user_id", filter=Q(status="charged"), distinct=True))
        )

    def by_user(self, **filters):
        from django.db.models import Count, Max, Q

        charged = Q(status="charged")
        return self._sql(
            self._charges(**filters)
            .order_by()
            .values("event__user_id", "event__user__email", "event__user__first_name", "event__user__last_name")
            .annotate(
                **self._amounts(),
                products=Count("event__product", filter=charged, distinct=True),
                days=Count("local_day", filter=charged, distinct=True),
                last_used=Max("local_day", filter=charged),
            )
        )

    def weeks(self, user_id: int):
        from django.db.models import Count
        from django.db.models.functions import TruncWeek

        return self._sql(
            self._charges(user_id=user_id)
            .filter(status="charged")
            .order_by()
            .annotate(week=TruncWeek("local_day"))
            .values("week", "event__product")
            .annotate(days=Count("local_day", distinct=True), **self._amounts())
        )

    def denials(self):
        from django.db.models import Count

        return self._sql(
            self._charges()
            .filter(status="denied")
            .order_by()
            .values("local_day", "event__product", "event__user_id", "event__user__email")
            .annotate(count=Count("id"))
        )

    def reasons(self):
        from django.db.models import Count

        return self._sql(
            self._charges()
            .filter(status="denied")
            .order_by()
            .values("event__product", "reason")
            .annotate(count=Count("id"))
        )


def replay(statements: list[str]) -> None:
    """The page's statements again, as they were sent (parameters already in the text)."""
    from django.db import connection

    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)
            if cursor.description is not None:
                cursor.fetchall()


def replay_raw(queries: list[tuple[str, tuple]]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for sql, params in queries:
            cursor.execute(sql, params)
            cursor.fetchall()


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def check_totals(team, targets: list[Target]) -> None:
    """The raw GROUP BY and the rollup agree (else the baseline would measure something else)."""
    from django.db import connection

    from reporting import selectors

    for target in targets:
        if target.name != "By Product":
            continue
        with connection.cursor() as cursor:
            sql, params = target.raw[0]
            cursor.execute(sql, params)
            columns = [c.name for c in cursor.description]
            raw = sum((Decimal(row[columns.index("raw_tokens")] or 0) for row in cursor.fetchall()), Decimal(0))
        period = target.period
        rollup = sum(
            (row["tokens"] for row in selectors.usage_by_product(team=team, start=period.start, end=period.end)),
            Decimal(0),
        )
        if raw != rollup:
            raise SystemExit(f"{target.range_key}: the raw events say {raw} tokens, the rollup {rollup}")
        print(f"{target.range_key} ({period.start} to {period.end}): {rollup:,} tokens, rollup and raw events agree")


def report(targets: list[Target]) -> None:
    header = (
        f"{'report':<22}{'range':>6}{'page med':>10}{'page p95':>10}{'sql med':>9}{'sql p95':>9}{'queries':>8}"
        f"{'page/sql':>9}{'raw med':>9}{'raw p95':>9}{'raw/page':>9}  issue 11 / goal 4"
    )
    print(header)
    print("-" * len(header))
    for t in targets:
        page_med, page_p95 = statistics.median(t.page_ms), percentile(t.page_ms, 0.95)
        sql_med, sql_p95 = statistics.median(t.sql_ms), percentile(t.sql_ms, 0.95)
        raw_med, raw_p95 = statistics.median(t.raw_ms), percentile(t.raw_ms, 0.95)
        ratio = page_p95 / sql_p95
        goal = ""
        if t.range_key == "12m":
            ok = page_p95 <= GOAL_P95_MS and ratio <= GOAL_RATIO
            goal = "ok" if ok else "MISSED"
        if t.range_key != EMPTY:
            missed = [
                part
                for part, ok in (
                    (f"{GOAL4_P95_MS} ms", page_p95 <= GOAL4_P95_MS),
                    (f"{GOAL4_RATIO}x sql", ratio <= GOAL4_RATIO),
                    (f"{GOAL4_RAW}x raw", raw_p95 / page_p95 >= GOAL4_RAW),
                )
                if not ok
            ]
            goal = f"{goal or '-'} / " + ("ok" if not missed else "missed " + ", ".join(missed))
        print(
            f"{t.name:<22}{t.range_key:>6}{page_med:>10.1f}{page_p95:>10.1f}{sql_med:>9.1f}{sql_p95:>9.1f}"
            f"{len(t.sql):>8}{ratio:>8.2f}x{raw_med:>9.1f}{raw_p95:>9.1f}{raw_p95 / page_p95:>8.1f}x  {goal}"
        )
    print(
        "times in ms; page/sql = page p95 / its SQL's p95 (goal <= 3x); raw/page = raw GROUP BY p95 / page p95; "
        f"issue 11 (12m only): page p95 <= {GOAL_P95_MS} ms and page/sql <= {GOAL_RATIO}x; issue 14 goal 4: "
        f"page p95 <= {GOAL4_P95_MS} ms, page/sql <= {GOAL4_RATIO}x, raw/page >= {GOAL4_RAW}x; "
        f"'{EMPTY}': a week without usage (the page around an empty report)"
    )


def _load() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


if __name__ == "__main__":
    main()
