"""Single events through gunicorn: 16 clients posting one event per call, against the same
16 clients inserting the raw rows (issue 14, goals 2 and 3).

    .venv/bin/python bench/single_events.py [--runs 3] [--calls 150] [--clients 16] [--teams 1,2,4]
    BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432 (the server; the default shown)

PostgreSQL only. The script makes a scratch database of its own (``flexadmin_bench_single_``
and a random suffix), migrates it, and drops it at the end. Through the services it makes
four teams, each with 16 members holding Flex, a pack of a million tokens and a team API key.
Then it starts gunicorn with the project's ``gunicorn.conf.py`` (its workers and threads, as
``make run`` and the Procfile serve) on a free port, in a process group of its own, and stops
exactly that group at the end. No Redis: the low-balance check after a charge runs in the
request, as the default installation does. The API throttle is lifted for the run.

Each run measures, in an order that rotates from run to run:

- **N teams** (1, 2 and 4): the clients are threads of this process, each with its own
  keep-alive HTTP connection, split evenly over N teams; each sends ``--calls`` events,
  one per ``POST /api/v1/teams/{slug}/usage-events`` (three in four are per-result jobs,
  charged 5 tokens each; one in four is an AutoCAD session, charged once a day per member).
  Events/s are the calls answered divided by the wall time from the first call to the last
  answer; the latency is each call's, from sending to the whole answer read.
- **raw**: the same client threads, each with its own psycopg connection, each call one
  transaction inserting the rows one charged event writes (the usage event, its charge and
  its ledger entry, with the columns ``log_usage`` writes) into copies of those tables
  (``CREATE TABLE ... (LIKE ... INCLUDING ALL)``: same columns, indexes and checks, no
  foreign keys), so the raw rows never touch the ledger.

- **floor**: the same client threads and connections, each call ``GET /api/v1/rates`` with
  the team's key (the API's cheapest call: the key checked, two small tables read, no
  transaction of its own). What no event can beat through this server on this machine: the
  web stack's own cost per call.

Threads, not processes, for the clients: an HTTP call and a psycopg call both spend their
wait outside the GIL, and the client's own CPU per call (0.1 to 0.2 ms) is a small share of
the 2 ms or more a call takes; the raw baseline uses the same threads, so both sides carry
the same client cost on the same 2 cores.

It prints each run, then min / median / max over the runs of events/s, p50 and p95, and the
ratio of each to the raw baseline. At the end it checks that every event was answered,
stored once and charged once, that nothing is left in the queue of waiting events, and that
``billing.selectors.ledger_violations`` finds nothing. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report_data  # bench/ is not a package: its folder is on the path (its Django set-up is shared)

ROOT = Path(__file__).resolve().parents[1]
MAX_TEAMS = 4
USERS = 16
RAW = "raw"
FLOOR = "floor"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="alternating runs (default 3)")
    parser.add_argument("--calls", type=int, default=150, help="calls per client and measurement (default 150)")
    parser.add_argument("--clients", type=int, default=16, help="client threads (default 16)")
    parser.add_argument("--teams", default="1,2,4", help="team counts to measure, at most 4 (default 1,2,4)")
    args = parser.parse_args()
    args.team_counts = [int(n) for n in args.teams.split(",")]
    if not all(1 <= n <= MAX_TEAMS for n in args.team_counts):
        parser.error(f"--teams: counts between 1 and {MAX_TEAMS}")
    return args


def main() -> None:
    args = parse_args()
    server = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432").rstrip("/")
    name = f"flexadmin_bench_single_{uuid.uuid4().hex[:8]}"
    _admin(server, f'CREATE DATABASE "{name}"')
    try:
        os.environ["DATABASE_URL"] = f"{server}/{name}"
        report_data.setup_django(throwaway_ok=False)
        run(args, database_url=os.environ["DATABASE_URL"])
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        _admin(server, f'DROP DATABASE IF EXISTS "{name}"')


def _admin(server: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(sql)


# --- Set-up --------------------------------------------------------------------------------------


def make_teams(tag: str) -> list[dict]:
    """Four teams with 16 members holding Flex, a pack and an API key each, through the services."""
    from accounts import services as accounts
    from billing import services as billing

    reseller = accounts.create_reseller(name=f"Bench reseller {tag}", slug=f"single-{tag}")
    now = datetime.now(UTC)
    teams = []
    for t in range(MAX_TEAMS):
        slug = f"single-{tag}-{t}"
        team = accounts.create_team(
            reseller=reseller,
            name=f"Single events {tag} {t}",
            slug=slug,
            plan="premium",
            time_zone="Europe/Berlin",
            contract_start=date(now.year - 1, 1, 1),
            contract_end=date(now.year + 2, 12, 31),
        )
        admin = accounts.invite_user(
            team=team, email=f"admin-{slug}@bench.example", role="primary_admin", actor=None, notify=False
        ).user
        emails = []
        for n in range(USERS):
            user = accounts.invite_user(team=team, email=f"user{n}-{slug}@bench.example", actor=admin, notify=False)
            billing.assign_flex(team=team, user=user.user, products="all", actor=admin, at=now - timedelta(days=2))
            emails.append(user.user.email)
        billing.record_purchase(
            team=team, reference=f"SINGLE-{t}", tokens=1_000_000, purchased_at=now - timedelta(days=1), now=now
        )
        _, secret = accounts.create_api_key(team=team, name="bench", actor=None)
        teams.append({"slug": slug, "pk": team.pk, "key": secret, "emails": emails})
    return teams


def make_raw_tables() -> None:
    """Copies of the tables one charged event writes: same columns, indexes and checks."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("billing_usageevent", "billing_charge", "billing_ledgerentry"):
            cursor.execute(f"CREATE TABLE bench_raw_{table[8:]} (LIKE {table} INCLUDING ALL)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """gunicorn with the project's gunicorn.conf.py, in a process group of its own: stopped
    by that group (SIGTERM, then SIGKILL), never by a name."""

    def __init__(self, database_url: str, log: Path) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "DEBUG": "0",
            "SECRET_KEY": uuid.uuid4().hex * 2,
            "ALLOWED_HOSTS": "127.0.0.1",
            "EMAIL_URL": "dummymail://",
            "LOG_LEVEL": "WARNING",
            "FLEX_API_THROTTLE_RATE": "1000000/second",  # the clients send far more than a key may
        }
        env.pop("REDIS_URL", None)  # in-process jobs: the low-balance check runs in the request
        self.log = open(log, "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "flexadmin.wsgi", "-c", "gunicorn.conf.py"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited with {self.process.returncode}; see {log}")
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"gunicorn did not answer within 60 s; see {log}")

    def cpu_seconds(self) -> float:
        """CPU time of the master and its workers so far (workers that were replaced are
        counted in the master's children's time)."""
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                pid, group = int(stat.parent.name), int(fields[2])
                if group == self.process.pid:
                    ticks += int(fields[11]) + int(fields[12])  # utime, stime
                    if pid == self.process.pid:
                        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()


# --- The clients -----------------------------------------------------------------------------------


def event(team: dict, client: int, call: int, tag: str) -> dict:
    """A per-result job (5 tokens) that just ran: reported as it happens, so in time order."""
    return {
        "id": f"{tag}-{client}-{call}",
        "user": team["emails"][client % USERS],
        "product": "cfd-simulation",
        "variant": "simple",
        "quantity": 1,
        "started_at": datetime.now(UTC).isoformat(),
    }


class HttpClient:
    """One keep-alive connection; reconnects (and sends the same event again, as a client
    should: the id makes it safe) when gunicorn closes it, e.g. when a worker is replaced."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.retries = 0

    def post(self, path: str, key: str, body: bytes) -> dict:
        return self.call("POST", path, key, body)["results"][0]

    def call(self, method: str, path: str, key: str, body: bytes | None = None) -> dict | list:
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        for attempt in range(5):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                if response.status != 200:
                    raise RuntimeError(f"{response.status}: {data[:500]!r}")
                return json.loads(data)
            except (http.client.RemoteDisconnected, ConnectionError, http.client.CannotSendRequest):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                self.retries += 1
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")


def run_clients(args: argparse.Namespace, work, clients: list) -> tuple[float, list[float]]:
    """Run ``work(n, client)`` in one thread per client, all started together; returns the
    wall time and every call's latency."""
    latencies: list[list[float]] = [[] for _ in clients]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(clients) + 1)

    def body(n: int) -> None:
        try:
            barrier.wait()
            for call in range(args.calls):
                started = time.perf_counter()
                work(n, call, clients[n])
                latencies[n].append(time.perf_counter() - started)
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=body, args=(n,), daemon=True) for n in range(len(clients))]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        raise errors[0]
    return wall, [v for values in latencies for v in values]


def measure_api(args, teams: list[dict], count: int, port: int, clients: list, tag: str, sent: dict) -> tuple:
    used = teams[:count]

    def work(n: int, call: int, client: HttpClient) -> None:
        team = used[n % count]
        payload, retries = event(team, n, call, tag), client.retries
        result = client.post(
            f"/api/v1/teams/{team['slug']}/usage-events", team["key"], json.dumps({"events": [payload]}).encode()
        )
        # A call sent again after a lost answer gets the first outcome, replayed.
        replay_ok = client.retries > retries
        if result.get("status") != "charged" or result["id"] != payload["id"] or (result["replayed"] and not replay_ok):
            raise AssertionError(f"unexpected result {result}")
        sent.setdefault(team["slug"], set()).add(payload["id"])

    return run_clients(args, work, clients)


def measure_floor(args, teams: list[dict], clients: list) -> tuple:
    def work(n: int, call: int, client: HttpClient) -> None:
        if not client.call("GET", "/api/v1/rates", teams[0]["key"]):
            raise AssertionError("GET /api/v1/rates answered no rates")

    return run_clients(args, work, clients)


def raw_rows(team: dict, n: int, call: int, tag: str) -> tuple[tuple, tuple, tuple]:
    """The rows one charged job writes, in the columns ``log_usage`` writes."""
    from decimal import Decimal

    from psycopg.types.json import Jsonb

    now = datetime.now(UTC)
    event_id, started = f"{tag}-{n}-{call}", now - timedelta(seconds=5)
    result = {"id": event_id, "status": "charged", "reason": "", "tokens": "5.00", "cloud_credits": "0.00"}
    event_row = (team["pk"], event_id, 1, "cfd-simulation", "simple", started, None, Decimal(1), "charged", "")
    event_row += (Decimal(5), Decimal(0), None, Jsonb(result), None, now, Jsonb([]))
    charge_row = (started, "charged", "", Decimal(5), Decimal(0), None)
    entry_row = (team["pk"], 1, None, "usage", Decimal(-5), started, "", now)
    return event_row, charge_row, entry_row


def measure_raw(args, teams: list[dict], database_url: str, conns: list, tag: str) -> tuple:
    from billing.services.usage import CHARGE_COLUMNS, EVENT_COLUMNS

    event_sql = (
        f"INSERT INTO bench_raw_usageevent ({', '.join(EVENT_COLUMNS)}) "
        f"VALUES ({', '.join(['%s'] * len(EVENT_COLUMNS))}) RETURNING id"
    )
    charge_sql = (
        f"INSERT INTO bench_raw_charge ({', '.join(CHARGE_COLUMNS)}) "
        f"VALUES ({', '.join(['%s'] * len(CHARGE_COLUMNS))}) RETURNING id"
    )
    entry_sql = (
        "INSERT INTO bench_raw_ledgerentry (team_id, pack_id, credit_balance_id, kind, amount, at, note, "
        "created_at, event_id, charge_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    )

    def work(n: int, call: int, conn) -> None:
        event_row, charge_row, entry_row = raw_rows(teams[0], n, call, tag)
        with conn.transaction(), conn.cursor() as cursor:
            event_pk = cursor.execute(event_sql, event_row).fetchone()[0]
            charge_pk = cursor.execute(charge_sql, (event_pk, *charge_row)).fetchone()[0]
            cursor.execute(entry_sql, (*entry_row, event_pk, charge_pk))

    return run_clients(args, work, conns)


# --- The run -----------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def spread(values: list[float], fmt: str) -> str:
    return " / ".join(format(v, fmt) for v in (min(values), statistics.median(values), max(values)))


def run(args: argparse.Namespace, *, database_url: str) -> None:
    import psycopg
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("single_events.py measures PostgreSQL: BENCH_POSTGRES must name a PostgreSQL server.")
    call_command("migrate", verbosity=0, interactive=False)
    print(f"database: {report_data.database_label()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    tag = uuid.uuid4().hex[:6]
    teams = make_teams(tag)
    make_raw_tables()
    connection.close()
    log = Path("/tmp") / f"flexadmin-bench-gunicorn-{tag}.log"
    server = Gunicorn(database_url, log)
    modes = [f"{n} team{'s' if n > 1 else ''}" for n in args.team_counts] + [FLOOR, RAW]
    figures: dict[str, dict[str, list[float]]] = {m: {"rate": [], "p50": [], "p95": [], "cpu": []} for m in modes}
    sent: dict[str, set[str]] = {}
    conns: list = []
    http_clients: list[HttpClient] = []
    try:
        print(f"gunicorn on port {server.port} (pid {server.process.pid}), log {log}; {args.clients} clients")
        http_clients = [HttpClient(server.port) for _ in range(args.clients)]
        conns = [psycopg.connect(database_url) for _ in range(args.clients)]
        # Warm-up: every worker thread answers a few calls, every client connection opens.
        warm = argparse.Namespace(calls=5)
        measure_api(warm, teams, MAX_TEAMS, server.port, http_clients, f"warm-{tag}", sent)
        measure_raw(warm, teams, database_url, conns, f"warm-{tag}")
        for number in range(args.runs):
            order = modes[number % len(modes) :] + modes[: number % len(modes)]
            line = []
            for mode in order:
                run_tag = f"r{number}-{mode.replace(' ', '')}-{tag}"
                cpu = server.cpu_seconds()
                if mode == RAW:
                    wall, latencies = measure_raw(args, teams, database_url, conns, run_tag)
                elif mode == FLOOR:
                    wall, latencies = measure_floor(args, teams, http_clients)
                    figures[mode]["cpu"].append((server.cpu_seconds() - cpu) / len(latencies) * 1000)
                else:
                    count = int(mode.split()[0])
                    wall, latencies = measure_api(args, teams, count, server.port, http_clients, run_tag, sent)
                    figures[mode]["cpu"].append((server.cpu_seconds() - cpu) / len(latencies) * 1000)
                rate = len(latencies) / wall
                figures[mode]["rate"].append(rate)
                figures[mode]["p50"].append(pct(latencies, 0.50) * 1000)
                figures[mode]["p95"].append(pct(latencies, 0.95) * 1000)
                line.append(
                    f"{mode} {rate:,.0f}/s p50 {figures[mode]['p50'][-1]:.0f} p95 {figures[mode]['p95'][-1]:.0f} ms"
                )
            print(f"run {number + 1} (load {os.getloadavg()[0]:.1f}): " + "; ".join(line))
    finally:
        for conn in conns:
            conn.close()
        server.stop()
    retries = sum(c.retries for c in http_clients)

    calls = args.calls * args.clients
    print(
        f"summary over {args.runs} runs, {calls} calls per measurement, {args.clients} clients "
        f"(min / median / max; ratio: each run's figure over the same run's raw one):"
    )
    for mode in modes:
        f = figures[mode]
        text = f"  {mode:8} {spread(f['rate'], ',.0f')} events/s, p50 {spread(f['p50'], '.0f')} ms, "
        text += f"p95 {spread(f['p95'], '.0f')} ms"
        if mode != RAW:
            ratio = [a / b for a, b in zip(f["rate"], figures[RAW]["rate"], strict=True)]
            unit = "calls" if mode == FLOOR else "events"
            text += f"; {unit}/s {spread(ratio, '.2f')}x raw; gunicorn CPU {spread(f['cpu'], '.1f')} ms per call"
        print(text)
    print(f"  reconnects (a worker replaced after its max_requests, the call sent again): {retries}")
    verify(teams, sent)


def verify(teams: list[dict], sent: dict[str, set[str]]) -> None:
    """Every event stored once, nothing left waiting, the ledger clean; and how many events
    each charging transaction took (they share their ``received_at``)."""
    from django.db.models import Count
    from django.utils import timezone

    from billing.models import UsageEvent
    from billing.selectors import ledger_violations

    groups = events = 0
    for team in teams:
        stored = UsageEvent.objects.filter(team_id=team["pk"])
        ids = set(stored.values_list("event_id", flat=True))
        assert ids == sent.get(team["slug"], set()), f"{team['slug']}: stored events differ from those sent"
        events += len(ids)
        groups += stored.values("received_at").annotate(n=Count("id")).count()
    with contextlib.suppress(ImportError):
        from billing.models import PendingEvent

        left = PendingEvent.objects.count()
        assert left == 0, f"{left} events left waiting"
    violations = ledger_violations(now=timezone.now())
    assert violations == [], violations[:5]
    print(
        f"checked: {events:,} events stored once each, in {groups:,} charging transactions "
        f"({events / groups:.1f} events each); nothing left waiting; ledger_violations: none"
    )


if __name__ == "__main__":
    main()
