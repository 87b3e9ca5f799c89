"""Usage: charging a batch of events, and refunding a job.

``log_usage`` validates each event (``billing.events``), prices the batch in memory
(``billing.charging``) under the team's lock, then writes events, charges, windows,
ledger entries (``billing.ledger``) and the rollup (``billing.rollups``) with a fixed
number of bulk statements in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.audit import write_audit_event
from accounts.models import Team, User
from accounts.selectors import team_members_by_email
from accounts.services import lock_team
from billing.alerts import request_balance_check
from billing.charging import ChargeOutcome, Charger, summarise
from billing.events import MAX_BATCH, EventError, ParsedEvent, parse_event
from billing.ledger import ledger_entry
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
from core.money import ZERO, fmt


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def _load_charger(*, team: Team, events: list[ParsedEvent], now: datetime, historical: bool) -> Charger:
    """Everything the engine needs for a batch, in a fixed number of queries: the rates of
    its products, its members, the packs and credits that may pay, assignments and the
    windows still open at its earliest event."""
    earliest = min(e.started_at for e in events)
    members = team_members_by_email(team=team, emails={e.email for e in events})
    return Charger(
        team=team,
        now=now,
        historical=historical,
        rates=RateBook.load(e.product for e in events),
        members=members,
        packs=list(
            TokenPack.objects.filter(team=team, remaining__gt=0, expired_at__isnull=True, expires_at__gt=earliest)
        ),
        credits=list(
            CloudCreditBalance.objects.filter(
                team=team, remaining__gt=0, expired_at__isnull=True, expires_at__gt=earliest
            )
        ),
        assignments=FlexAssignment.objects.filter(team=team, user__in=members.values()),
        windows=UsageWindow.objects.filter(
            team=team,
            user__in=members.values(),
            product__in={e.product for e in events},
            closes_at__gt=earliest,
        ),
    )


def log_usage(*, team: Team, events: list[dict], now: datetime | None = None, historical: bool = False) -> list[dict]:
    """Charge a batch of usage events (1 to 1000) and return one result per event, in order.

    A bad event gets its own error result and does not stop the others. An id seen before
    (in an earlier batch or earlier in this one) returns the first outcome with
    ``replayed: true`` and charges nothing. ``historical`` (the import command) accepts
    events of any age and prices packs as of each event's time.
    """
    now = _now(now)
    if not isinstance(events, list) or not 1 <= len(events) <= MAX_BATCH:
        raise ValidationError({"events": f"Send between 1 and {MAX_BATCH} events."})
    results: list[dict | None] = [None] * len(events)
    parsed: list[ParsedEvent] = []
    for index, raw in enumerate(events):
        try:
            parsed.append(parse_event(index, raw))
        except EventError as error:
            results[index] = error.as_result(raw.get("id") if isinstance(raw, dict) else None)
    if not parsed:
        return results
    with transaction.atomic():
        team = lock_team(team)
        known = dict(
            UsageEvent.objects.filter(team=team, event_id__in={e.id for e in parsed}).values_list("event_id", "result")
        )
        charger = _load_charger(team=team, events=parsed, now=now, historical=historical)
        # The same id twice in one batch: the first in input order is the event; later
        # copies replay its outcome (or repeat its error), whatever their times.
        first_index: dict[str, int] = {}
        for event in parsed:
            first_index.setdefault(event.id, event.index)
        firsts: dict[str, dict] = {}
        copies: list[ParsedEvent] = []
        new_events: list[tuple[ParsedEvent, list[ChargeOutcome], dict]] = []
        # Events are charged in time order (windows depend on it); results keep input order.
        for event in sorted(parsed, key=lambda e: (e.started_at, e.index)):
            if event.id in known:
                results[event.index] = {**known[event.id], "replayed": True}
                continue
            if first_index[event.id] != event.index:
                copies.append(event)
                continue
            try:
                charger.validate(event)
                outcomes = charger.charge(event)
            except EventError as error:
                results[event.index] = error.as_result(event.id)
                continue
            result = summarise(event, outcomes, charger.rate(event, event.started_at))
            firsts[event.id] = result
            results[event.index] = result
            new_events.append((event, outcomes, result))
        for event in copies:
            first = firsts.get(event.id)
            results[event.index] = {**first, "replayed": True} if first else {**results[first_index[event.id]]}
        _write(team=team, charger=charger, new_events=new_events, now=now)
        if not historical and any(Decimal(result["tokens"]) > 0 for _, _, result in new_events):
            # Live spending may cross the low-balance line: check once this commits.
            request_balance_check(team=team)
    return results


def _write(*, team: Team, charger: Charger, new_events: list, now: datetime) -> None:
    """Persist a batch's outcome with a fixed number of bulk statements."""
    if not new_events:
        return
    event_rows = [
        UsageEvent(
            team=team,
            event_id=event.id,
            user=event.user,
            product=event.product,
            variant=event.variant,
            started_at=event.started_at,
            ended_at=event.ended_at,
            quantity=event.quantity,
            status=result["status"],
            reason=result["reason"],
            tokens=Decimal(result["tokens"]),
            cloud_credits=Decimal(result["cloud_credits"]),
            result=result,
            received_at=now,
        )
        for event, _, result in new_events
    ]
    UsageEvent.objects.bulk_create(event_rows)
    charges, windows, entries = [], [], []
    rollup = RollupDelta(team)
    for (event, outcomes, _), row in zip(new_events, event_rows, strict=True):
        for outcome in outcomes:
            charge = Charge(
                event=row,
                at=outcome.at,
                status=outcome.status,
                reason=outcome.reason,
                tokens=outcome.tokens,
                cloud_credits=outcome.credits,
            )
            charges.append((charge, outcome))
            rollup.add(outcome.at, event.product, event.user.pk, outcome)
    Charge.objects.bulk_create([c for c, _ in charges])
    for charge, outcome in charges:
        if outcome.window is not None:
            outcome.window.charge = charge
            windows.append(outcome.window)
        entries.extend(
            ledger_entry(
                kind=EntryKind.USAGE,
                amount=draw.amount,
                account=draw.account,
                at=outcome.at,
                event=charge.event,
                charge=charge,
            )
            for draw in outcome.draws
        )
    UsageWindow.objects.bulk_create(windows)
    LedgerEntry.objects.bulk_create(entries)
    TokenPack.objects.bulk_update([p for p in charger.packs if p.pk in charger.touched_packs], ["remaining"])
    CloudCreditBalance.objects.bulk_update(
        [c for c in charger.credits if c.pk in charger.touched_credits], ["remaining"]
    )
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
    usage = list(event.entries.filter(kind=EntryKind.USAGE).select_related("pack", "credit_balance"))
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
