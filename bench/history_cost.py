"""Whether reads on the charging path cost what the history costs: a team with a handful of
events against a team with 1,000,000 (issue 14, goal 0).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/flexadmin_bench_reports \\
        .venv/bin/python bench/history_cost.py --team SLUG [--runs 30]

``--team`` is a team made by bench/report_data.py (a million charged events over a year);
the script makes a small one beside it with the same generator (``--small`` events, default
10). For each team it times, alternating so that a busy moment hits both alike:

- ``balance``: ``billing.selectors.team_balance`` (the Balances page, the API, the planner);
- ``low-balance check``: ``billing.alerts.low_balance_check`` (run after every charged live
  event: in the request without Redis, as a task with it);
- ``data as of``: ``reporting.selectors.last_processed_at`` (every report);
- ``charged event`` and ``uncharged event``: one live event through ``log_usage`` with the
  balance check it requests run in the same process (no broker): a per-result job (charged)
  and a relaunch inside an open window (no charge).

It prints the min / median / max and p95 of each, and the ratios: big team against small, and a charged
event against an uncharged one on the big team (the goal: within 2x). It buys a pack for
each team first so that the charged events are paid. See docs/benchmarks.md.
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

import report_data  # bench/ is not a package: its folder is on the path


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--team", required=True, help="slug of a team made by bench/report_data.py")
    parser.add_argument("--small", type=int, default=10, help="charged events of the small team (default 10)")
    parser.add_argument("--runs", type=int, default=30, help="timed runs of each (default 30)")
    return parser.parse_args()


def spread(values: list[float]) -> str:
    return f"{min(values):.1f} / {statistics.median(values):.1f} / {max(values):.1f}"


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


class Probe:
    """The measured reads and writes of one team."""

    def __init__(self, team) -> None:
        from accounts import services as accounts
        from billing import services

        self.team = team
        now = time_now()
        tag = uuid.uuid4().hex[:8]
        services.record_purchase(team=team, reference=f"HISTORY-{tag}", tokens=1_000_000, purchased_at=now, now=now)
        self.member = accounts.invite_user(
            team=team, email=f"history-{tag}@bench.example", actor=None, notify=False, consented=True
        ).user
        services.assign_flex(team=team, user=self.member, products="all", actor=None, at=now - timedelta(days=1))
        self.count = 0
        # A session the relaunches fall inside: its 24-hour window stays open for the whole run.
        self.opened = now - timedelta(minutes=30)
        self._log("autocad", self.opened)

    def _log(self, product: str, start, **fields) -> dict:
        from billing.services import log_usage

        self.count += 1
        event = {"id": f"history-{uuid.uuid4().hex}", "user": self.member.email, "product": product}
        event["started_at"] = start.isoformat()
        if product == "autocad":
            event["ended_at"] = (start + timedelta(minutes=5)).isoformat()
        event.update(fields)
        [result] = log_usage(team=self.team, events=[event])
        return result

    def balance(self) -> None:
        from billing.selectors import team_balance

        team_balance(team=self.team)

    def check(self) -> None:
        from billing.alerts import low_balance_check

        low_balance_check(team=self.team)

    def as_of(self) -> None:
        from reporting.selectors import last_processed_at

        last_processed_at(team=self.team)

    def charged(self) -> None:
        result = self._log("design-automation", time_now() - timedelta(minutes=1), quantity="0.5")
        assert result["status"] == "charged", result

    def uncharged(self) -> None:
        result = self._log("autocad", time_now() - timedelta(minutes=1))  # in order, inside the open window
        assert result["status"] == "no_charge", result


def time_now():
    from django.utils import timezone

    return timezone.now()


def run(args: argparse.Namespace) -> None:
    from django.conf import settings
    from django.core.management import call_command

    from accounts.models import Team

    call_command("migrate", verbosity=0, interactive=False)
    settings.DEBUG = False
    print(f"database: {report_data.database_label()}, load {report_data_load()}")
    big = Team.objects.get(slug=args.team)
    small = report_data.generate(events=args.small, users=20, days=7, progress=lambda *_: None).team
    probes = {"small": Probe(small), "big": Probe(big)}
    names = ("balance", "check", "as_of", "charged", "uncharged")
    labels = {
        "balance": "balance",
        "check": "low-balance check",
        "as_of": "data as of",
        "charged": "charged event",
        "uncharged": "uncharged event",
    }
    timings = {(size, name): [] for size in probes for name in names}
    for _ in range(args.runs):
        for name in names:
            for size, probe in probes.items():
                started = time.perf_counter()
                getattr(probe, name)()
                timings[size, name].append((time.perf_counter() - started) * 1000)
    from billing.models import UsageEvent

    events = {size: UsageEvent.objects.filter(team=probe.team).count() for size, probe in probes.items()}
    print(f"{args.runs} runs; events: small team {events['small']:,}, big team {events['big']:,}")
    print(
        f"{'':20} {'small min / median / max':>26} {'small p95':>10} {'big min / median / max':>26} "
        f"{'big p95':>9} {'big/small':>10}"
    )
    for name in names:
        small_ms, big_ms = timings["small", name], timings["big", name]
        print(
            f"{labels[name]:20} {spread(small_ms):>26} {p95(small_ms):10.1f} {spread(big_ms):>26} {p95(big_ms):9.1f} "
            f"{statistics.median(big_ms) / statistics.median(small_ms):9.2f}x"
        )
    charged, uncharged = timings["big", "charged"], timings["big", "uncharged"]
    ratio = statistics.median(charged) / statistics.median(uncharged)
    print(
        f"big team, charged / uncharged event: median {ratio:.2f}x, "
        f"p95 {p95(charged) / p95(uncharged):.2f}x (goal: within 2x)"
    )


def report_data_load() -> str:
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


def main() -> None:
    args = parse_args()
    throwaway = report_data.setup_django(throwaway_ok=False)
    try:
        run(args)
    finally:
        report_data.remove_throwaway(throwaway)


if __name__ == "__main__":
    main()
