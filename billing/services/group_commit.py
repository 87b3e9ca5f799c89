"""Group commit: single events that arrive together for one team are charged together.

Products report usage as it happens, one event per call. Charged one call at a time, each
call is a whole charging transaction under the team's lock (some 18 queries and a commit),
so concurrent calls of one team queue behind each other. ``log_event`` instead lets the
request that holds the team's lock charge every event waiting for that team in one
``log_usage`` batch (docs/charging.md, "Single events: group commit"):

1. The event's shape is checked first (``billing.events.parse_event``): a malformed event
   is answered at once and queued nowhere, so it can't spoil anyone else's.
2. The request tries to *lead* without waiting: on PostgreSQL, the team's leadership is a
   transaction-level advisory lock (``pg_try_advisory_xact_lock``). The leader takes the
   team's lock (``lock_team``, as every service that moves tokens does), reads the events
   waiting for the team (``PendingEvent`` rows, oldest first, locked), and charges them with
   its own as one batch (``log_usage_locked``): the arrival order is the batch's input order
   (the first copy of an id is the event, later copies replay it), pricing is in time
   order, and every rule, the re-pricing and the query bound hold as for any batch. It
   writes each waiting event's result on its row, then commits: one transaction for all.
3. When another request leads, this one queues its event (a ``PendingEvent`` row, committed
   at once so that a leader in any gunicorn process sees it) and waits for the leader's
   transaction to end, without polling: the leader also holds a second advisory lock, the
   *busy* lock, which the waiting requests take shared, all at once, when it is let go.
   Then its row has a result (read, the row deleted, answered), or it was queued too late
   for that leader and it tries to lead in turn. (Waiting on the leadership lock itself
   would make the waiters' brief shared holds fail each other's attempts to lead.)

Why it holds:
- *Charged once.* An event is charged only in a leader's transaction, under the team's
  lock, and that transaction writes its row's result; a row with a result is never charged
  again. A leader that dies rolls back: the rows are still waiting, unanswered, and the next
  leader takes them. Ids are stored once per team as ever, so a replayed id (or two copies
  waiting together) gets the first outcome with ``replayed: true``.
- *One event's failure is its own.* Rule errors (an unknown user, no rate) are results, as in
  any batch. Should a batch raise, the leader rolls back to a savepoint and charges its own
  event alone; the others stay queued for their own requests (so a poisonous event fails
  only its own call).
- *No deadlock.* The advisory lock is taken before the team's lock, and nothing that holds
  the team's lock waits for the advisory one. Two teams whose ids share an advisory key
  (above 2**31) would only wait for each other, never charge each other's events.

SQLite has no row or advisory locks, and its transactions already run one at a time
(``transaction_mode=IMMEDIATE``): there every call leads at once and charges its event
with whatever waits (nothing, unless a PostgreSQL-style queue was left behind), by the same
code. So does a call made inside a transaction: its queued row would be invisible to other
leaders until that transaction commits, so it leads, waiting for the advisory lock if it must.
"""

from __future__ import annotations

import contextlib
import json
import logging
from datetime import datetime, timedelta

from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Team
from accounts.services import lock_team
from billing.events import EVENT_FIELDS, MAX_BATCH, EventError, parse_event
from billing.models import PendingEvent
from billing.services.usage import log_usage_locked

logger = logging.getLogger(__name__)

# Advisory-lock namespaces (the first key; the team's id is the second): the leadership,
# and the busy lock the leader holds while it charges, which waiting requests wait for.
LEAD_LOCK = 1_401_614
BUSY_LOCK = 1_401_615
# A row whose result nobody read (its request died after queuing) is removed this long after.
STALE = timedelta(minutes=10)


def log_event(*, team: Team, event: dict, now: datetime | None = None) -> dict:
    """Charge one live event, together with the events of the same team that arrive at the
    same time, and return its result: the result ``log_usage(team=team, events=[event])``
    gives, as if the events charged with it in the same batch had been sent with it."""
    try:
        parse_event(0, event)
    except EventError as error:
        return error.as_result(event.get("id") if isinstance(event, dict) else None)
    event = {name: event[name] for name in EVENT_FIELDS if name in event}
    if connection.in_atomic_block:
        with transaction.atomic():
            _take_lead(team, wait=True)
            return _lead(team, now=now, own_event=event)
    # The team is quiet more often than not: lead at once, with nothing queued.
    with transaction.atomic():
        if _take_lead(team, wait=False):
            return _lead(team, now=now, own_event=event)
    queued = PendingEvent.objects.create(team=team, event=event)
    try:
        while True:
            _wait_for_leader(team)
            result = _take_result(queued)
            if result is not None:
                return result
            with transaction.atomic():
                if _take_lead(team, wait=False):
                    result = _lead(team, now=now, own_pk=queued.pk)
            if result is not None:
                return result
            # Not charged yet: another request leads (or more than a batch was waiting).
    except BaseException:
        # Not answered (an error, or the call was cut short): take it off the queue unless a
        # leader charged it meanwhile (a retry of the call replays that outcome).
        with contextlib.suppress(DatabaseError):
            PendingEvent.objects.filter(pk=queued.pk, result__isnull=True).delete()
        raise


def _take_lead(team: Team, *, wait: bool) -> bool:
    """The team's leadership for the current transaction (and its busy lock): True when
    this call leads."""
    if connection.vendor != "postgresql":
        return True  # one writing transaction at a time (SQLite): whoever runs, leads
    key = _lock_key(team)
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LEAD_LOCK, key])
        else:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [LEAD_LOCK, key])
            if not cursor.fetchone()[0]:
                return False
        # Waits only for requests that are just looking (a shared hold, let go at once).
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [BUSY_LOCK, key])
    return True


def _wait_for_leader(team: Team) -> None:
    """Return once the team's current leader, if any, has committed or rolled back."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        # In autocommit: taken once the leader has let go of it, and let go at once.
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", [BUSY_LOCK, _lock_key(team)])


def _lock_key(team: Team) -> int:
    return team.pk & 0x7FFFFFFF  # an int4 key


def _lead(team: Team, *, now: datetime | None, own_event: dict | None = None, own_pk: int | None = None) -> dict | None:
    """As the team's leader, in the current transaction: charge every waiting event of the
    team (oldest first) with ``own_event`` as one batch, answer each waiting row, and return
    this call's result (None when its row ``own_pk`` was beyond the batch)."""
    team = lock_team(team)
    waiting = Q(result__isnull=True)
    if own_pk is not None:
        waiting |= Q(pk=own_pk)  # its own row too, should another leader have answered it since
    rows = list(
        PendingEvent.objects.select_for_update()
        .filter(waiting, team=team)
        .order_by("pk")[: MAX_BATCH - (own_event is not None)]
    )
    own_row = next((row for row in rows if row.pk == own_pk), None)
    rows = [row for row in rows if row.result is None]
    events = [row.event for row in rows] + ([own_event] if own_event is not None else [])
    now = now or timezone.now()
    try:
        with transaction.atomic():  # a savepoint: a batch that fails leaves the others waiting
            results = log_usage_locked(team=team, events=events, now=now) if events else []
    except Exception:
        mine = [row for row in rows if row.pk == own_pk]
        if len(events) == 1 and (own_event is not None or mine):
            raise  # this call's own event, alone: its failure is its own
        logger.exception("Charging %s events of team %s together failed; charging one alone", len(events), team.pk)
        # Only this call's event; the others stay queued for their own requests to charge.
        rows = mine
        events = [own_event] if own_event is not None else [row.event for row in rows]
        results = log_usage_locked(team=team, events=events, now=now) if events else []
    for row, result in zip(rows, results, strict=False):
        row.result = result
    _answer([row for row in rows if row.pk != own_pk])
    if own_event is not None:
        return results[-1]
    if own_row is not None:
        own_row.delete()
        return own_row.result
    return None


def _answer(rows: list[PendingEvent]) -> None:
    """Write the waiting rows' results: one statement, run for every row (a pipeline on
    PostgreSQL), not a ``bulk_update``, whose CASE over the rows' JSON costs the leader some
    10 ms of its turn for 16 rows (5 for this, commit included)."""
    if not rows:
        return
    table = connection.ops.quote_name(PendingEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET result = %s WHERE id = %s",  # noqa: S608 (the model's own table name)
            [(json.dumps(row.result), row.pk) for row in rows],
        )


def _take_result(queued: PendingEvent) -> dict | None:
    """Its result, if a leader has written it, the row deleted in the same statement; with it
    go the team's answered rows nobody came back for (their request died after queuing)."""
    table = connection.ops.quote_name(PendingEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE result IS NOT NULL AND (id = %s OR (team_id = %s AND queued_at < %s)) "  # noqa: S608
            "RETURNING id, result",
            [queued.pk, queued.team_id, timezone.now() - STALE],
        )
        rows = cursor.fetchall()
    found = next((result for pk, result in rows if pk == queued.pk), None)
    return json.loads(found) if isinstance(found, str) else found
