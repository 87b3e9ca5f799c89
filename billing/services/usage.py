"""Usage: charging a batch of events, and refunding a job.

``log_usage`` validates each event (``billing.events``), prices the batch in memory
(``billing.charging``) under the team's lock, then writes events, charges, windows,
ledger entries (``billing.ledger``) and the rollup (``billing.rollups``) with a fixed
number of bulk statements in the same transaction.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import DecimalField, OuterRef, Prefetch, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.audit import write_audit_event
from accounts.models import Team, User
from accounts.selectors import team_members_by_email
from accounts.services import lock_team
from billing.alerts import request_balance_check
from billing.charging import ChargeOutcome, Charger, Draw, Item, account_key, outcome_summary, same_outcomes, summarise
from billing.events import MAX_BATCH, EventError, ParsedEvent, parse_event
from billing.ledger import ledger_entry, ledger_fields
from billing.models import (
    Charge,
    ChargeType,
    CloudCreditBalance,
    EntryKind,
    EventStatus,
    FlexAssignment,
    LedgerEntry,
    TokenPack,
    UsageEvent,
    UsageWindow,
)
from billing.rates import RateBook
from billing.rollups import RollupDelta
from core.bulk import insert_rows, reserve_ids
from core.money import ZERO, fmt


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def _key(event: ParsedEvent) -> tuple[datetime, str]:
    return (event.started_at, event.id)


def _stored_items(*, team: Team, earliest: tuple[datetime, str]) -> list[Item]:
    """The team's stored events after ``earliest`` (start time, then id) with their current
    charges, draws and windows: one query, and three more when there are any."""
    usage = Prefetch("entries", queryset=LedgerEntry.objects.filter(kind=EntryKind.USAGE).order_by("id"))
    charges = Prefetch(
        "charges",
        queryset=Charge.objects.filter(superseded_at__isnull=True).select_related("window").prefetch_related(usage),
    )
    rows = (
        UsageEvent.objects.filter(team=team, started_at__gte=earliest[0])
        .select_related("user")
        .prefetch_related(charges)
    )
    items = []
    for row in rows:
        # Ids compare in Python: the database's collation may order text otherwise.
        if (row.started_at, row.event_id) <= earliest:
            continue
        event = ParsedEvent(
            index=-1,
            id=row.event_id,
            email=row.user.email,
            product=row.product,
            variant=row.variant,
            started_at=row.started_at,
            ended_at=row.ended_at,
            quantity=row.quantity,
            user=row.user,
        )
        items.append(Item(event=event, stored=row, pinned=row.refund is not None))
    return items


def _old_outcomes(item: Item, charger: Charger) -> None:
    """Read an item's current charges into ``ChargeOutcome``s; pin it if a pack that paid
    is no longer the team's (moved away: re-pricing must not give that team tokens)."""
    for charge in sorted(item.stored.charges.all(), key=lambda c: (c.at, c.pk)):
        draws = []
        for entry in charge.entries.all():
            key = ("pack", entry.pack_id) if entry.pack_id else ("credits", entry.credit_balance_id)
            account = charger.accounts.get(key)
            if account is None:
                item.pinned = True
                account = entry.pack if entry.pack_id else entry.credit_balance
            draws.append(Draw(account, -entry.amount))
        window = getattr(charge, "window", None)
        item.old.append(
            ChargeOutcome(
                at=charge.at,
                status=charge.status,
                reason=charge.reason,
                tokens=charge.tokens,
                credits=charge.cloud_credits,
                draws=draws,
                window=window,
                row=charge,
            )
        )


def _expired(team: Team, account: str) -> Coalesce:
    """What the expiry job took from a pack (``account="pack"``) or credit balance, net of
    reversals: a subquery over the team's expiry entries (a few per account, found by the
    (team, kind) index), never a sum over the account's usage entries, whose number grows
    with the history."""
    entries = (
        LedgerEntry.objects.filter(team=team, kind__in=[EntryKind.EXPIRY, EntryKind.EXPIRY_REVERSAL])
        .filter(**{account: OuterRef("pk")})
        .order_by()
        .values(account)
        .annotate(total=Sum("amount"))
        .values("total")
    )
    money = DecimalField(max_digits=14, decimal_places=2)
    return Coalesce(Subquery(entries, output_field=money), Value(ZERO), output_field=money)


def _load(*, charger: Charger, team: Team, events: list[ParsedEvent]) -> list[Item]:
    """Load the engine's state for a batch of valid new events, in a fixed number of
    queries, and return the stored events to re-price: the packs and credits that may pay
    (with what the expiry job took from closed ones), the assignments of every user
    involved, and the windows still open at the batch's earliest event."""
    earliest = min(_key(e) for e in events)
    stored = _stored_items(team=team, earliest=earliest)
    users = {e.user.pk for e in events} | {i.event.user.pk for i in stored}
    packs = list(
        TokenPack.objects.filter(team=team, expires_at__gt=earliest[0]).annotate(expired=_expired(team, "pack"))
    )
    credits = list(
        CloudCreditBalance.objects.filter(team=team, expires_at__gt=earliest[0]).annotate(
            expired=_expired(team, "credit_balance")
        )
    )
    charger.load(
        packs=packs,
        credits=credits,
        assignments=FlexAssignment.objects.filter(team=team, user_id__in=users),
        windows=[],
        expired={account_key(a): -a.expired for a in [*packs, *credits] if a.expired_at},
    )
    for item in stored:
        _old_outcomes(item, charger)
    stored_charges = {o.row.pk for item in stored for o in item.old}
    charger.fixed_windows = [
        w for w in UsageWindow.objects.filter(team=team, closes_at__gt=earliest[0]) if w.charge_id not in stored_charges
    ]
    return stored


def log_usage(*, team: Team, events: list[dict], now: datetime | None = None, historical: bool = False) -> list[dict]:
    """Charge a batch of usage events (1 to 1000) and return one result per event, in order.

    A bad event gets its own error result and does not stop the others. An id seen before
    (in an earlier batch or earlier in this one) returns the first outcome with
    ``replayed: true`` and charges nothing. ``historical`` (the import command) accepts
    events of any age. The batch is priced with the stored events after its earliest one,
    in time order: what that changes is re-priced with compensating entries and reported in
    ``repriced`` (docs/charging.md, "Re-pricing").
    """
    now = _now(now)
    if not isinstance(events, list) or not 1 <= len(events) <= MAX_BATCH:
        raise ValidationError({"events": f"Send between 1 and {MAX_BATCH} events."})
    results, parsed = _parse(events)
    if not parsed:
        return results
    with transaction.atomic():
        team = lock_team(team)
        _log_parsed(team=team, parsed=parsed, results=results, now=now, historical=historical)
    return results


def log_usage_locked(*, team: Team, events: list[dict], now: datetime) -> list[dict]:
    """``log_usage`` of live events (1 to 1000) for a caller that already holds the team's
    lock (``lock_team``) in its open transaction: group commit
    (``billing.services.group_commit``) charges the events waiting for a team this way."""
    results, parsed = _parse(events)
    if parsed:
        _log_parsed(team=team, parsed=parsed, results=results, now=now, historical=False)
    return results


def _parse(events: list) -> tuple[list[dict | None], list[ParsedEvent]]:
    """Each event's shape: a bad one gets its error result here, the others are parsed."""
    results: list[dict | None] = [None] * len(events)
    parsed: list[ParsedEvent] = []
    for index, raw in enumerate(events):
        try:
            parsed.append(parse_event(index, raw))
        except EventError as error:
            results[index] = error.as_result(raw.get("id") if isinstance(raw, dict) else None)
    return results, parsed


def _log_parsed(*, team: Team, parsed: list[ParsedEvent], results: list, now: datetime, historical: bool) -> None:
    """Charge the parsed events of a batch under the team's lock, filling in ``results``."""
    known = dict(
        UsageEvent.objects.filter(team=team, event_id__in={e.id for e in parsed}).values_list("event_id", "result")
    )
    # The same id twice in one batch: the first in input order is the event; later
    # copies replay its outcome (or repeat its error), whatever their times.
    first_index: dict[str, int] = {}
    for event in parsed:
        first_index.setdefault(event.id, event.index)
    copies: list[ParsedEvent] = []
    fresh: list[ParsedEvent] = []
    for event in parsed:
        if event.id in known:
            # Stable: the outcome first returned (re-pricings since are on the stored event).
            results[event.index] = {**known[event.id], "replayed": True}
        elif first_index[event.id] != event.index:
            copies.append(event)
        else:
            fresh.append(event)
    changes = Changes()
    if fresh:
        changes = _charge(team=team, events=fresh, now=now, historical=historical, results=results)
    for event in copies:
        first = results[first_index[event.id]]
        results[event.index] = {**first, "replayed": True} if first["status"] != "error" else {**first}
    if not historical and changes.moved_tokens:
        # Live spending may cross the low-balance line: check once this commits.
        request_balance_check(team=team)


@dataclass
class Changes:
    """What a batch changed: new events and re-priced ones (``_write`` persists them)."""

    new: list[tuple[ParsedEvent, list[ChargeOutcome], dict]] = field(default_factory=list)
    repriced: list[tuple[Item, list[ChargeOutcome], dict]] = field(default_factory=list)
    moved_tokens: bool = False


def _charge(*, team: Team, events: list[ParsedEvent], now: datetime, historical: bool, results: list) -> Changes:
    """Validate and price the batch's new events with the stored events after them."""
    charger = Charger(
        team=team,
        now=now,
        historical=historical,
        rates=RateBook.load(),
        members=team_members_by_email(team=team, emails={e.email for e in events}),
    )
    valid = []
    for event in events:
        try:
            charger.validate(event)
            charger.rate(event, event.started_at)
        except EventError as error:
            results[event.index] = error.as_result(event.id)
        else:
            valid.append(event)
    if not valid:
        return Changes()
    stored = _load(charger=charger, team=team, events=valid)
    items = [Item(event=e) for e in valid] + stored
    priced = charger.reprice(items)
    changes = Changes()
    new_items = sorted((i for i in items if i.stored is None), key=lambda i: i.key)
    for item in new_items:
        event = item.event
        if event.id in charger.errors:
            results[event.index] = charger.errors[event.id].as_result(event.id)
            continue
        result = summarise(event, priced[event.id], charger.rate(event, event.started_at))
        results[event.index] = result
        changes.new.append((event, priced[event.id], result))
    accepted = [n for n in new_items if n.event.id not in charger.errors]
    for item in sorted(stored, key=lambda i: i.key):
        outcomes = priced[item.event.id]
        if item.pinned or same_outcomes(item.old, outcomes):
            continue
        # Reported by the latest new event before it: the one it now comes after.
        cause = max((n for n in accepted if n.key < item.key), key=lambda n: n.key, default=accepted[0])
        rate = charger.rate(item.event, item.event.started_at)
        record = {
            "id": item.event.id,
            "repriced_at": now.isoformat(),
            "after": cause.event.id,
            "before": outcome_summary(item.event, item.old, rate),
            "now": outcome_summary(item.event, outcomes, rate),
        }
        results[cause.event.index].setdefault("repriced", []).append(record)
        changes.repriced.append((item, outcomes, record))
    _write(team=team, charger=charger, changes=changes, now=now)
    return changes


# The columns batch charging writes, one plain tuple per row (``core.bulk.insert_rows``).
EVENT_COLUMNS = (
    "team_id",
    "event_id",
    "user_id",
    "product",
    "variant",
    "started_at",
    "ended_at",
    "quantity",
    "status",
    "reason",
    "tokens",
    "cloud_credits",
    "refunded_at",
    "result",
    "refund",
    "received_at",
    "adjustments",
)
CHARGE_COLUMNS = ("event_id", "at", "status", "reason", "tokens", "cloud_credits", "superseded_at")
WINDOW_COLUMNS = ("team_id", "user_id", "product", "opened_at", "closes_at", "charge_id")
ENTRY_COLUMNS = (
    "team_id",
    "pack_id",
    "credit_balance_id",
    "kind",
    "amount",
    "at",
    "event_id",
    "charge_id",
    "actor_id",
    "note",
    "created_at",
)


def _event_row(team: Team, event: ParsedEvent, result: dict, now: datetime) -> tuple:
    return (
        team.pk,
        event.id,
        event.user.pk,
        event.product,
        event.variant,
        event.started_at,
        event.ended_at,
        event.quantity,
        result["status"],
        result["reason"],
        Decimal(result["tokens"]),
        Decimal(result["cloud_credits"]),
        None,
        result,
        None,
        now,
        [],
    )


def _charge_row(event_pk: int, outcome: ChargeOutcome) -> tuple:
    return (event_pk, outcome.at, outcome.status, outcome.reason, outcome.tokens, outcome.credits, None)


def _window_row(window: UsageWindow, charge_pk: int) -> tuple:
    return (window.team_id, window.user_id, window.product, window.opened_at, window.closes_at, charge_pk)


def _entry_row(created_at: datetime, **entry) -> tuple:
    """A ledger entry as a row: its columns from ``billing.ledger.ledger_fields`` (the sign
    rule's one home), the rest empty."""
    fields = {"actor_id": None, "note": "", "created_at": created_at, "event_id": None, "charge_id": None}
    fields.update(ledger_fields(**entry))
    return tuple(fields[column] for column in ENTRY_COLUMNS)


def _write(*, team: Team, charger: Charger, changes: Changes, now: datetime) -> None:
    """Persist a batch's outcome and its re-pricing with a fixed number of bulk statements:
    events, charges, windows and ledger entries as plain rows (``core.bulk.insert_rows``),
    the events' and charges' ids reserved first in one statement (``core.bulk.reserve_ids``)."""
    if not changes.new and not changes.repriced:
        return
    created_at = timezone.now()  # the entries' creation time, as the model's default gives it
    count = sum(len(outcomes) for _, outcomes, _ in changes.new) + sum(len(o) for _, o, _ in changes.repriced)
    ids = reserve_ids({UsageEvent: len(changes.new), Charge: count})
    event_ids = ids.get(UsageEvent, [])
    insert_rows(
        UsageEvent,
        EVENT_COLUMNS,
        [_event_row(team, event, result, now) for event, _, result in changes.new],
        ids=event_ids,
    )
    rollup = RollupDelta(team)
    entries: list[tuple] = []
    drawn: dict[tuple[str, int], Decimal] = defaultdict(Decimal)  # new draws minus draws given back
    # Re-priced events: their charges are superseded, each draw given back to what paid it.
    superseded = []
    for item, _, record in changes.repriced:
        row = item.stored
        for outcome in item.old:
            superseded.append(outcome.row.pk)
            rollup.add(
                outcome.at,
                row.product,
                row.user_id,
                tokens=-outcome.tokens,
                credits=-outcome.credits,
                charges=-(outcome.status == EventStatus.CHARGED),
                denials=-(outcome.status == EventStatus.DENIED),
            )
            for draw in outcome.draws:
                drawn[account_key(draw.account)] -= draw.amount
                entries.append(
                    _entry_row(
                        created_at,
                        kind=EntryKind.REPRICE,
                        amount=draw.amount,
                        account=draw.account,
                        at=outcome.at,
                        event_id=row.pk,
                        charge_id=outcome.row.pk,
                        note=f"Re-priced after the late event {record['after']}"[:300],
                    )
                )
        after = record["now"]
        row.status, row.reason = after["status"], after["reason"]
        row.tokens, row.cloud_credits = Decimal(after["tokens"]), Decimal(after["cloud_credits"])
        row.adjustments = [*row.adjustments, record]
    if superseded:
        UsageWindow.objects.filter(charge_id__in=superseded).delete()
        Charge.objects.filter(pk__in=superseded).update(superseded_at=now)
        UsageEvent.objects.bulk_update(
            [item.stored for item, _, _ in changes.repriced],
            ["status", "reason", "tokens", "cloud_credits", "adjustments"],
        )
    charged = [(event, pk, outcomes) for (event, outcomes, _), pk in zip(changes.new, event_ids, strict=True)]
    charged += [(item.event, item.stored.pk, outcomes) for item, outcomes, _ in changes.repriced]
    charges = [(event_pk, outcome) for _, event_pk, outcomes in charged for outcome in outcomes]
    for event, _, outcomes in charged:
        for outcome in outcomes:
            rollup.add(outcome.at, event.product, event.user.pk, outcome)
    charge_ids = ids.get(Charge, [])
    insert_rows(Charge, CHARGE_COLUMNS, [_charge_row(pk, outcome) for pk, outcome in charges], ids=charge_ids)
    windows = []
    for charge_pk, (event_pk, outcome) in zip(charge_ids, charges, strict=True):
        if outcome.window is not None:
            windows.append(_window_row(outcome.window, charge_pk))
        for draw in outcome.draws:
            drawn[account_key(draw.account)] += draw.amount
            entries.append(
                _entry_row(
                    created_at,
                    kind=EntryKind.USAGE,
                    amount=draw.amount,
                    account=draw.account,
                    at=outcome.at,
                    event_id=event_pk,
                    charge_id=charge_pk,
                )
            )
    changed = []
    for key, amount in drawn.items():
        if not amount:
            continue
        account = charger.accounts[key]
        changed.append(account)
        changes.moved_tokens |= key[0] == "pack"
        if account.expired_at is None:
            account.remaining -= amount
        else:
            # Closed by the expiry job: late usage from before the expiry takes back that
            # part of the expiry; tokens given back to it expire again. It still holds nothing.
            kind = EntryKind.EXPIRY_REVERSAL if amount > 0 else EntryKind.EXPIRY
            note = "Expiry reversed for late usage from before it" if amount > 0 else "Expired unused (re-priced)"
            entries.append(
                _entry_row(created_at, kind=kind, amount=abs(amount), account=account, at=account.expires_at, note=note)
            )
    insert_rows(UsageWindow, WINDOW_COLUMNS, windows)
    insert_rows(LedgerEntry, ENTRY_COLUMNS, entries)
    TokenPack.objects.bulk_update([a for a in changed if isinstance(a, TokenPack)], ["remaining"])
    CloudCreditBalance.objects.bulk_update([a for a in changed if isinstance(a, CloudCreditBalance)], ["remaining"])
    rollup.save(now=now)


@transaction.atomic
def refund_usage(*, team: Team, event_id: str, actor: User | None = None, now: datetime | None = None) -> dict:
    """Give back what a per-result job cost, to the packs (or credits) that paid.

    Tokens of a pack that has expired meanwhile stay expired (they are reported as
    forfeited). Refunding the same event again returns the first refund, replayed.
    """
    now = _now(now)
    team = lock_team(team)
    event = UsageEvent.objects.select_for_update().filter(team=team, event_id=str(event_id)).first()
    if event is None:
        raise ValidationError({"id": f"There is no usage event “{event_id}” in this team."})
    if event.refund is not None:
        return {**event.refund, "replayed": True}
    rate = RateBook.load([event.product]).at(event.product, event.started_at)
    if rate is None or rate.charge_type != ChargeType.PER_RESULT:
        raise ValidationError({"id": "Only per-result jobs can be refunded."})
    if event.status != EventStatus.CHARGED:
        raise ValidationError({"id": "The job was not charged, so there is nothing to refund."})
    usage = list(
        event.entries.filter(kind=EntryKind.USAGE, charge__superseded_at__isnull=True).select_related(
            "pack", "credit_balance", "charge"
        )
    )
    back, entries = {"tokens": ZERO, "credits": ZERO}, []
    forfeited = {"tokens": ZERO, "credits": ZERO}
    packs, balances = [], []
    for entry in usage:
        account = entry.pack or entry.credit_balance
        account = type(account).objects.select_for_update().get(pk=account.pk)
        amount = -entry.amount
        unit = "tokens" if entry.pack_id else "credits"
        # Tokens go back only to a pack still valid and still this team's: a pack moved to
        # another team since must not hand that team this team's refund.
        if account.expired_at is None and account.expires_at > now and account.team_id == team.pk:
            account.remaining += amount
            (packs if entry.pack_id else balances).append(account)
            back[unit] += amount
            entries.append(
                ledger_entry(
                    kind=EntryKind.REFUND,
                    amount=amount,
                    account=account,
                    team_id=team.pk,
                    at=now,
                    event=event,
                    charge=entry.charge,
                    actor=actor,
                )
            )
        else:
            forfeited[unit] += amount
    LedgerEntry.objects.bulk_create(entries)
    TokenPack.objects.bulk_update(packs, ["remaining"])
    CloudCreditBalance.objects.bulk_update(balances, ["remaining"])
    rollup = RollupDelta(team)
    rollup.add(event.started_at, event.product, event.user_id, tokens=-back["tokens"], credits=-back["credits"])
    rollup.save(now=now)
    result = {
        "id": event.event_id,
        "refunded_tokens": fmt(back["tokens"]),
        "refunded_cloud_credits": fmt(back["credits"]),
        "forfeited_tokens": fmt(forfeited["tokens"]),
        "forfeited_cloud_credits": fmt(forfeited["credits"]),
        "refunded_at": now.isoformat(),
        "replayed": False,
    }
    event.refunded_at, event.refund = now, result
    event.save(update_fields=["refunded_at", "refund"])
    write_audit_event(action="usage.refunded", actor=actor, team=team, target=event, details=result)
    return result
