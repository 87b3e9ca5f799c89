"""Every movement of tokens and credits. Rules are named as in domain.md ("Charging
rules"); docs/charging.md states each rule and every choice made where domain.md is silent.

Concurrency: every service that moves tokens of a team first locks that team's row
(``select_for_update``), so two requests charging one team run one after the other and
can never spend the same tokens. Services that touch two teams lock both in id order.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.audit import write_audit_event
from accounts.models import FlexAssignment, Team, User
from billing.exceptions import Conflict
from billing.models import (
    ZERO,
    Charge,
    ChargeType,
    CloudCreditBalance,
    EntryKind,
    EventStatus,
    LedgerEntry,
    Rate,
    TokenPack,
    UsageEvent,
    UsageWindow,
)
from billing.rates import RateBook
from reporting.models import UsageRollup

CENT = Decimal("0.01")
WINDOW = timedelta(hours=24)
MAX_BATCH = 1000
FUTURE_TOLERANCE = timedelta(minutes=5)


def fmt(amount: Decimal) -> str:
    """Amounts travel as strings with two decimals ("83.00")."""
    return str(Decimal(amount).quantize(CENT))


def _request_balance_check(team: Team) -> None:
    from billing.alerts import request_balance_check  # alerts builds on these services

    request_balance_check(team=team)


def lock_team(team: Team) -> Team:
    """The one lock every token movement of a team takes first."""
    return Team.objects.select_for_update().get(pk=team.pk)


# --- Packs and credits ------------------------------------------------------------------------


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


@transaction.atomic
def record_purchase(
    *,
    team: Team,
    reference: str,
    tokens: int,
    purchased_at: datetime | None = None,
    price: Decimal | None = None,
    currency: str = "",
    actor: User | None = None,
    now: datetime | None = None,
) -> tuple[TokenPack, bool]:
    """Record a pack bought through the team's reseller. Returns (pack, created).

    Idempotent on the order reference: the same reference with the same data returns the
    first pack (created False); with other data it raises ``Conflict``.
    """
    now = _now(now)
    # A retry that leaves the purchase time to "now" gets a later now: not other data.
    time_given = purchased_at is not None
    purchased_at = purchased_at or now
    reference = (reference or "").strip()
    errors: dict[str, str] = {}
    if not reference:
        errors["reference"] = "An order reference is required."
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens <= 0:
        errors["tokens"] = "Tokens must be a whole number greater than 0."
    if timezone.is_naive(purchased_at):
        errors["purchased_at"] = "The purchase time needs a time zone offset."
    elif not _storable_time(purchased_at):
        errors["purchased_at"] = "The purchase time is out of range (years 2000 to 2100, offset within ±14:00)."
    elif purchased_at > now + FUTURE_TOLERANCE:
        errors["purchased_at"] = "A purchase can't lie in the future."
    else:
        day = timezone.localtime(purchased_at, team.tz).date()
        if not team.contract_start <= day <= team.contract_end:
            errors["purchased_at"] = (
                f"The purchase date {day} lies outside the contract ({team.contract_start} to {team.contract_end})."
            )
    if price is not None and price < 0:
        errors["price"] = "The price can't be negative."
    if currency and (len(currency) != 3 or not currency.isalpha()):
        errors["currency"] = "The currency is a three-letter code such as EUR."
    if errors:
        raise ValidationError(errors)
    team = lock_team(team)
    existing = TokenPack.objects.filter(reseller_id=team.reseller_id, reference=reference).first()
    if existing is not None:
        same = (
            existing.team_id == team.pk
            and existing.tokens == tokens
            and (not time_given or existing.purchased_at == purchased_at)
            and (price is None or existing.price == price)
            and (not currency or existing.currency == currency.upper())
        )
        if same:
            return existing, False
        raise Conflict({"reference": f"The order reference “{reference}” was already recorded with other data."})
    try:
        # The team lock does not cover a sister team recording the same reference at the
        # same moment; the unique constraint does, and that clash is a conflict, not a crash.
        with transaction.atomic():
            pack = TokenPack.objects.create(
                team=team,
                reseller_id=team.reseller_id,
                reference=reference,
                tokens=tokens,
                remaining=Decimal(tokens),
                price=price,
                currency=currency.upper(),
                purchased_at=purchased_at,
                expires_at=purchased_at + relativedelta(months=settings.FLEX_PACK_TERM_MONTHS),
                recorded_by=actor,
            )
    except IntegrityError:
        raise Conflict(
            {"reference": f"The order reference “{reference}” was just recorded for another team."}
        ) from None
    LedgerEntry.objects.create(
        team=team, pack=pack, kind=EntryKind.PURCHASE, amount=Decimal(tokens), at=purchased_at, actor=actor
    )
    write_audit_event(
        action="pack.recorded",
        actor=actor,
        team=team,
        reseller=team.reseller,
        target=pack,
        details={"reference": reference, "tokens": tokens, "purchased_at": purchased_at.isoformat()},
    )
    _request_balance_check(team)  # a purchase may end a low-balance spell
    return pack, True


@transaction.atomic
def grant_cloud_credits(
    *,
    team: Team,
    credits: Decimal,
    granted_at: datetime | None = None,
    actor: User | None = None,
    now: datetime | None = None,
) -> CloudCreditBalance:
    """Record a legacy cloud-credit balance; it expires at the global cutoff."""
    granted_at = granted_at or _now(now)
    cutoff = settings.FLEX_CLOUD_CREDITS_EXPIRE_AT
    try:
        credits = Decimal(credits).quantize(CENT)
    except (InvalidOperation, TypeError, ValueError):
        raise ValidationError({"credits": "Credits must be a number."}) from None
    if credits <= 0:
        raise ValidationError({"credits": "Credits must be greater than 0."})
    if timezone.is_naive(granted_at):
        raise ValidationError({"granted_at": "The grant time needs a time zone offset."})
    if not _storable_time(granted_at):
        raise ValidationError({"granted_at": "The grant time is out of range (years 2000 to 2100)."})
    if granted_at >= cutoff:
        raise ValidationError({"credits": f"Cloud credits can't be granted after the cutoff ({cutoff:%Y-%m-%d})."})
    team = lock_team(team)
    balance = CloudCreditBalance.objects.create(
        team=team, credits=credits, remaining=credits, granted_at=granted_at, expires_at=cutoff, recorded_by=actor
    )
    LedgerEntry.objects.create(
        team=team, credit_balance=balance, kind=EntryKind.GRANT, amount=credits, at=granted_at, actor=actor
    )
    write_audit_event(
        action="cloud_credits.granted", actor=actor, team=team, target=balance, details={"credits": fmt(credits)}
    )
    return balance


def _expire(queryset: QuerySet, *, now: datetime, kind_field: str) -> int:
    """Close every row of ``queryset`` (packs or credit balances) whose expiry has passed.

    Safe to run twice or concurrently: each team is locked, the rows are re-read under
    the lock and only rows not yet closed are closed, so an expiry is written once.
    """
    count = 0
    team_ids = sorted(
        set(queryset.filter(expired_at__isnull=True, expires_at__lte=now).values_list("team_id", flat=True))
    )
    for team_id in team_ids:
        with transaction.atomic():
            team = lock_team(Team(pk=team_id))
            rows = list(queryset.select_for_update().filter(team=team, expired_at__isnull=True, expires_at__lte=now))
            entries = []
            for row in rows:
                if row.remaining > 0:
                    entries.append(
                        LedgerEntry(
                            team=team,
                            kind=EntryKind.EXPIRY,
                            amount=-row.remaining,
                            at=row.expires_at,
                            note="Expired unused",
                            **{kind_field: row},
                        )
                    )
                row.remaining = ZERO
                row.expired_at = now
            LedgerEntry.objects.bulk_create(entries)
            queryset.model.objects.bulk_update(rows, ["remaining", "expired_at"])
            count += len(rows)
    return count


def expire_packs(*, now: datetime | None = None) -> int:
    """Write an expiry entry for whatever expired packs still hold; returns packs closed."""
    return _expire(TokenPack.objects.all(), now=_now(now), kind_field="pack")


def expire_cloud_credits(*, now: datetime | None = None) -> int:
    return _expire(CloudCreditBalance.objects.all(), now=_now(now), kind_field="credit_balance")


@transaction.atomic
def move_pack(*, pack: TokenPack, to_team: Team, actor: User | None = None, now: datetime | None = None) -> TokenPack:
    """Move what a pack still holds to another team of the same reseller, as two entries.

    The pack changes hands; its past usage stays with the team that spent it.
    """
    now = _now(now)
    if to_team.pk == pack.team_id:
        raise ValidationError("The pack already belongs to that team.")
    if to_team.reseller_id != pack.reseller_id:
        raise ValidationError("A pack can only move between teams of the same reseller.")
    # Two teams: lock in id order so two opposite moves can't deadlock. The owner is read
    # afresh, and checked again under the locks: a concurrent move may have changed it.
    owner_id = TokenPack.objects.values_list("team_id", flat=True).get(pk=pack.pk)
    for team_id in sorted({owner_id, to_team.pk}):
        lock_team(Team(pk=team_id))
    pack = TokenPack.objects.select_for_update().get(pk=pack.pk)
    if pack.team_id != owner_id:
        raise ValidationError("The pack changed hands meanwhile; try again.")
    if pack.team_id == to_team.pk:
        raise ValidationError("The pack already belongs to that team.")
    if pack.expired_at is not None or pack.expires_at <= now:
        raise ValidationError("An expired pack can't be moved.")
    if pack.remaining <= 0:
        raise ValidationError("The pack has no tokens left to move.")
    from_team_id, amount = pack.team_id, pack.remaining
    LedgerEntry.objects.bulk_create(
        [
            LedgerEntry(
                team_id=from_team_id,
                pack=pack,
                kind=EntryKind.MOVE_OUT,
                amount=-amount,
                at=now,
                actor=actor,
                note=f"Moved to {to_team.slug}",
            ),
            LedgerEntry(
                team=to_team,
                pack=pack,
                kind=EntryKind.MOVE_IN,
                amount=amount,
                at=now,
                actor=actor,
                note=f"Moved from team {from_team_id}",
            ),
        ]
    )
    pack.team = to_team
    pack.save(update_fields=["team"])
    write_audit_event(
        action="pack.moved",
        actor=actor,
        team=to_team,
        target=pack,
        details={"from_team": from_team_id, "to_team": to_team.pk, "tokens": fmt(amount)},
    )
    return pack


# --- Usage -------------------------------------------------------------------------------------


class EventError(Exception):
    """One event that can't be taken; it gets an error result and the others go on."""

    def __init__(self, code: str, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.fields = code, message, fields or {}

    def as_result(self, event_id: Any) -> dict:
        return {
            "id": event_id,
            "status": "error",
            "error": {"code": self.code, "message": self.message, "fields": self.fields},
            "replayed": False,
        }


@dataclass
class ParsedEvent:
    index: int
    id: str
    email: str
    product: str
    variant: str
    started_at: datetime
    ended_at: datetime | None
    quantity: Decimal
    user: User | None = None


def _parse_time(value: Any, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = parse_datetime(value.strip())
        except ValueError:
            moment = None
        if moment is None:
            raise EventError("invalid", f"{name} is not an ISO 8601 time.", {name: "Not an ISO 8601 time."})
    else:
        raise EventError("invalid", f"{name} must be a time string.", {name: "Must be a string."})
    if timezone.is_naive(moment):
        raise EventError("invalid", f"{name} needs a time zone offset.", {name: "A time zone offset is required."})
    # Stored in UTC: an offset the database can't keep, or a time that can't be expressed
    # in UTC at all, is refused here instead of failing in the database.
    if not _storable_time(moment):
        message = "Out of range: years 2000 to 2100, offset within ±14:00."
        raise EventError("invalid", f"{name} is out of range.", {name: message})
    return moment.astimezone(UTC)


def _storable_time(moment: datetime) -> bool:
    """An aware time the database can keep: offset within ±14:00, years 2000 to 2100."""
    offset = moment.utcoffset()
    if offset is None or abs(offset) > timedelta(hours=14):
        return False
    try:
        return 2000 <= moment.astimezone(UTC).year <= 2100
    except (OverflowError, ValueError):
        return False


def _clean_text(value: Any) -> bool:
    """Text the database can store: no NUL characters, no lone surrogates."""
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _parse_event(index: int, raw: Any) -> ParsedEvent:
    if not isinstance(raw, dict):
        raise EventError("invalid", "An event must be an object.")
    fields: dict[str, str] = {}
    event_id = raw.get("id")
    if not isinstance(event_id, str | int) or isinstance(event_id, bool) or not str(event_id).strip():
        fields["id"] = "A non-empty id is required."
    elif len(str(event_id)) > 100:
        fields["id"] = "At most 100 characters."
    for name in ("user", "product"):
        if not isinstance(raw.get(name), str) or not raw.get(name, "").strip():
            fields[name] = "Required."
    for name in ("id", "user", "product", "variant"):
        if isinstance(raw.get(name), str) and not _clean_text(raw[name]):
            fields[name] = "Contains characters that are not allowed."
    variant = raw.get("variant") or ""
    if not isinstance(variant, str):
        fields["variant"] = "Must be a string."
    quantity_raw = raw.get("quantity", 1)
    try:
        quantity = Decimal(str(quantity_raw)) if not isinstance(quantity_raw, bool | dict | list) else None
        if quantity is not None and (not quantity.is_finite() or quantity <= 0 or quantity > 100000):
            quantity = None
    except InvalidOperation:
        quantity = None
    if quantity is None:
        fields["quantity"] = "A number greater than 0 (at most 100000)."
    elif quantity != quantity.quantize(CENT):
        fields["quantity"] = "At most two decimal places."
    started_at = ended_at = None
    try:
        started_at = _parse_time(raw.get("started_at"), "started_at")
        if started_at is None:
            fields["started_at"] = "Required."
        ended_at = _parse_time(raw.get("ended_at"), "ended_at")
    except EventError as error:
        fields.update(error.fields)
    if started_at and ended_at and ended_at < started_at:
        fields["ended_at"] = "Must not be before started_at."
    if fields:
        raise EventError("invalid", "The event has invalid fields.", fields)
    return ParsedEvent(
        index=index,
        id=str(event_id).strip(),
        email=raw["user"].strip().lower(),
        product=raw["product"].strip(),
        variant=variant.strip(),
        started_at=started_at,
        ended_at=ended_at,
        quantity=quantity,
    )


@dataclass
class _Draw:
    account: TokenPack | CloudCreditBalance
    amount: Decimal


@dataclass
class _ChargeOutcome:
    at: datetime
    status: str
    reason: str = ""
    tokens: Decimal = ZERO
    credits: Decimal = ZERO
    draws: list[_Draw] = field(default_factory=list)
    window: UsageWindow | None = None

    def as_dict(self) -> dict:
        return {
            "at": self.at.isoformat(),
            "status": self.status,
            "reason": self.reason,
            "tokens": fmt(self.tokens),
            "cloud_credits": fmt(self.credits),
            "draws": [
                {"pack": d.account.reference, "tokens": fmt(d.amount)}
                for d in self.draws
                if isinstance(d.account, TokenPack)
            ],
        }


class _Charger:
    """The charging rules applied to one team's batch, with everything loaded up front.

    Queries are bounded: the team's packs, credits, windows, assignments, users, rates and
    known ids are read once; the outcome is written with bulk operations.
    """

    def __init__(self, *, team: Team, events: list[ParsedEvent], now: datetime, historical: bool) -> None:
        self.team, self.now, self.historical = team, now, historical
        earliest = min(e.started_at for e in events)
        self.rates = RateBook.load(e.product for e in events)
        emails = {e.email for e in events}
        self.users = {u.email.lower(): u for u in User.objects.filter(memberships__team=team, email__in=emails)}
        self.packs = list(
            TokenPack.objects.filter(team=team, remaining__gt=0, expired_at__isnull=True, expires_at__gt=earliest)
        )
        self.credits = list(
            CloudCreditBalance.objects.filter(
                team=team, remaining__gt=0, expired_at__isnull=True, expires_at__gt=earliest
            )
        )
        self.assignments: dict[int, list[FlexAssignment]] = defaultdict(list)
        for assignment in FlexAssignment.objects.filter(team=team, user__in=self.users.values()):
            self.assignments[assignment.user_id].append(assignment)
        self.windows: dict[tuple[int, str], list[UsageWindow]] = defaultdict(list)
        for window in UsageWindow.objects.filter(
            team=team,
            user__in=self.users.values(),
            product__in={e.product for e in events},
            closes_at__gt=earliest,
        ):
            self.windows[(window.user_id, window.product)].append(window)
        self.touched_packs: set[int] = set()
        self.touched_credits: set[int] = set()

    # Paying ---------------------------------------------------------------------------------

    def _usable(self, account: TokenPack | CloudCreditBalance, moment: datetime) -> bool:
        start = account.purchased_at if isinstance(account, TokenPack) else account.granted_at
        # Valid at the charge's time, and (live) not expired by now: a pack whose expiry
        # has passed never pays, whether or not the expiry job has run.
        return (
            account.remaining > 0
            and start <= moment < account.expires_at
            and (self.historical or account.expires_at > self.now)
        )

    def _tokens_available(self, moment: datetime) -> Decimal:
        return sum((p.remaining for p in self.packs if self._usable(p, moment)), ZERO)

    def _draw(self, accounts: list, amount: Decimal) -> list[_Draw]:
        draws, left = [], amount
        for account in accounts:
            if left <= 0:
                break
            take = min(account.remaining, left)
            account.remaining -= take
            left -= take
            draws.append(_Draw(account, take))
        return draws

    def _pay(self, *, cost: Decimal, moment: datetime, credits_first: bool) -> _ChargeOutcome:
        if credits_first:
            credits = sorted(
                (c for c in self.credits if self._usable(c, moment)), key=lambda c: (c.expires_at, c.granted_at, c.pk)
            )
            # One job is never split between credits and tokens.
            if sum((c.remaining for c in credits), ZERO) >= cost:
                draws = self._draw(credits, cost)
                self.touched_credits.update(d.account.pk for d in draws)
                return _ChargeOutcome(at=moment, status=EventStatus.CHARGED, credits=cost, draws=draws)
        packs = sorted(
            (p for p in self.packs if self._usable(p, moment)),
            # Earliest expiry first; on equal expiry the smallest pack; then oldest purchase.
            key=lambda p: (p.expires_at, p.tokens, p.purchased_at, p.pk),
        )
        if sum((p.remaining for p in packs), ZERO) < cost:
            return _ChargeOutcome(at=moment, status=EventStatus.DENIED, reason="insufficient_balance")
        draws = self._draw(packs, cost)
        self.touched_packs.update(d.account.pk for d in draws)
        return _ChargeOutcome(at=moment, status=EventStatus.CHARGED, tokens=cost, draws=draws)

    # Rules ----------------------------------------------------------------------------------

    def _rate(self, event: ParsedEvent, moment: datetime) -> Rate:
        rate = self.rates.at(event.product, moment)
        if rate is None:
            raise EventError(
                "no_rate",
                f"No rate for {event.product} was in force at {moment.isoformat()}.",
                {"product": "No rate then."},
            )
        return rate

    def _assigned(self, user: User, product: str, moment: datetime) -> bool:
        return any(a.covers(product, moment) for a in self.assignments.get(user.pk, ()))

    def validate(self, event: ParsedEvent) -> None:
        if not self.rates.knows(event.product):
            raise EventError(
                "unknown_product", f"There is no product “{event.product}”.", {"product": "Unknown product."}
            )
        user = self.users.get(event.email)
        if user is None:
            raise EventError("unknown_user", f"{event.email} is not a member of this team.", {"user": "Not a member."})
        event.user = user
        rate = self._rate(event, event.started_at)
        if event.started_at > self.now + FUTURE_TOLERANCE:
            raise EventError("invalid", "started_at lies in the future.", {"started_at": "In the future."})
        # Live: a session is charged again when it outlives its window, not in advance.
        if not self.historical and event.ended_at and event.ended_at > self.now + FUTURE_TOLERANCE:
            raise EventError("invalid", "ended_at lies in the future.", {"ended_at": "In the future."})
        if rate.charge_type == ChargeType.DAILY and event.ended_at is None:
            raise EventError("invalid", "A daily product needs ended_at.", {"ended_at": "Required for daily products."})
        needs_variant = rate.charge_type == ChargeType.PER_RESULT and rate.variants.all()
        if needs_variant and self.rates.variant_tokens(rate, event.variant) is None:
            known = ", ".join(v.code for v in rate.variants.all())
            raise EventError(
                "invalid", f"{event.product} needs a variant: one of {known}.", {"variant": f"One of {known}."}
            )
        if not self.historical:
            end = event.ended_at or event.started_at
            if end < self.now - timedelta(hours=settings.FLEX_MAX_EVENT_AGE_HOURS):
                raise EventError(
                    "event_too_old",
                    f"The event ended more than {settings.FLEX_MAX_EVENT_AGE_HOURS} hours ago; "
                    "older usage is imported with the historical import.",
                    {"ended_at": "Too old for the live API."},
                )

    def charge(self, event: ParsedEvent) -> list[_ChargeOutcome]:
        rate = self._rate(event, event.started_at)
        user = event.user
        if not self._assigned(user, event.product, event.started_at):
            return [_ChargeOutcome(at=event.started_at, status=EventStatus.DENIED, reason="not_assigned")]
        if rate.charge_type == ChargeType.FREE:
            # Free, but only while the team holds at least one token.
            if self._tokens_available(event.started_at) >= 1:
                return []
            return [_ChargeOutcome(at=event.started_at, status=EventStatus.DENIED, reason="insufficient_balance")]
        if rate.charge_type == ChargeType.PER_RESULT:
            unit = self.rates.variant_tokens(rate, event.variant) if rate.variants.all() else rate.tokens
            # Rate x quantity may have four decimals: rounded half-even to the cent.
            cost = (unit * event.quantity).quantize(CENT, rounding=ROUND_HALF_EVEN)
            return [self._pay(cost=cost, moment=event.started_at, credits_first=rate.cloud_credit_eligible)]
        return self._charge_daily(event, rate)

    def _charge_daily(self, event: ParsedEvent, rate: Rate) -> list[_ChargeOutcome]:
        # Sessions shorter than the grace period cost nothing and open no window.
        if event.ended_at - event.started_at < timedelta(minutes=rate.grace_minutes):
            return []
        windows = self.windows[(event.user.pk, event.product)]
        outcomes: list[_ChargeOutcome] = []
        moment = event.started_at
        while True:
            window = next((w for w in windows if w.opened_at <= moment < w.closes_at), None)
            if window is None:
                # A launch (or a session outliving its window) opens a new 24-hour window.
                outcome = self._pay(cost=self._rate(event, moment).tokens, moment=moment, credits_first=False)
                outcomes.append(outcome)
                if outcome.status != EventStatus.CHARGED:
                    break
                window = UsageWindow(
                    team=self.team, user=event.user, product=event.product, opened_at=moment, closes_at=moment + WINDOW
                )
                outcome.window = window
                windows.append(window)
            if event.ended_at <= window.closes_at:
                break
            moment = window.closes_at
        return outcomes


def _summarise(event: ParsedEvent, outcomes: list[_ChargeOutcome], rate: Rate) -> dict:
    tokens = sum((o.tokens for o in outcomes), ZERO)
    credits = sum((o.credits for o in outcomes), ZERO)
    charged = [o for o in outcomes if o.status == EventStatus.CHARGED]
    denied = [o for o in outcomes if o.status == EventStatus.DENIED]
    if charged:
        status, reason = EventStatus.CHARGED, denied[0].reason if denied else ""
    elif denied:
        status, reason = EventStatus.DENIED, denied[0].reason
    else:
        status = EventStatus.NO_CHARGE
        if rate.charge_type == ChargeType.FREE:
            reason = "free_product"
        elif rate.charge_type == ChargeType.DAILY and event.ended_at - event.started_at < timedelta(
            minutes=rate.grace_minutes
        ):
            reason = "grace_period"
        else:
            reason = "inside_window"
    return {
        "id": event.id,
        "status": str(status),
        "reason": reason,
        "tokens": fmt(tokens),
        "cloud_credits": fmt(credits),
        "charges": [o.as_dict() for o in outcomes],
        "replayed": False,
    }


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
            parsed.append(_parse_event(index, raw))
        except EventError as error:
            results[index] = error.as_result(raw.get("id") if isinstance(raw, dict) else None)
    if not parsed:
        return results
    with transaction.atomic():
        team = lock_team(team)
        known = dict(
            UsageEvent.objects.filter(team=team, event_id__in={e.id for e in parsed}).values_list("event_id", "result")
        )
        charger = _Charger(team=team, events=parsed, now=now, historical=historical)
        # The same id twice in one batch: the first in input order is the event; later
        # copies replay its outcome (or repeat its error), whatever their times.
        first_index: dict[str, int] = {}
        for event in parsed:
            first_index.setdefault(event.id, event.index)
        firsts: dict[str, dict] = {}
        copies: list[ParsedEvent] = []
        new_events: list[tuple[ParsedEvent, list[_ChargeOutcome], dict]] = []
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
            result = _summarise(event, outcomes, charger._rate(event, event.started_at))
            firsts[event.id] = result
            results[event.index] = result
            new_events.append((event, outcomes, result))
        for event in copies:
            first = firsts.get(event.id)
            results[event.index] = {**first, "replayed": True} if first else {**results[first_index[event.id]]}
        _write(team=team, charger=charger, new_events=new_events, now=now)
        if not historical and any(Decimal(result["tokens"]) > 0 for _, _, result in new_events):
            # Live spending may cross the low-balance line: check once this commits.
            _request_balance_check(team)
    return results


def _write(*, team: Team, charger: _Charger, new_events: list, now: datetime) -> None:
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
    rollup = _RollupDelta(team)
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
        for draw in outcome.draws:
            target = {"pack": draw.account} if isinstance(draw.account, TokenPack) else {"credit_balance": draw.account}
            entries.append(
                LedgerEntry(
                    team=team,
                    kind=EntryKind.USAGE,
                    amount=-draw.amount,
                    at=outcome.at,
                    event=charge.event,
                    charge=charge,
                    **target,
                )
            )
    UsageWindow.objects.bulk_create(windows)
    LedgerEntry.objects.bulk_create(entries)
    TokenPack.objects.bulk_update([p for p in charger.packs if p.pk in charger.touched_packs], ["remaining"])
    CloudCreditBalance.objects.bulk_update(
        [c for c in charger.credits if c.pk in charger.touched_credits], ["remaining"]
    )
    rollup.save(now=now)


class _RollupDelta:
    """Changes to the daily usage rollup of one batch: one upsert for all its groups."""

    def __init__(self, team: Team) -> None:
        self.team = team
        self.groups: dict[tuple, list] = defaultdict(lambda: [ZERO, ZERO, 0, 0])

    def add(
        self,
        moment: datetime,
        product: str,
        user_id: int,
        outcome: Any = None,
        *,
        tokens: Decimal = ZERO,
        credits: Decimal = ZERO,
        charges: int = 0,
        denials: int = 0,
    ) -> None:
        if outcome is not None:
            tokens, credits = outcome.tokens, outcome.credits
            charges = 1 if outcome.status == EventStatus.CHARGED else 0
            denials = 1 if outcome.status == EventStatus.DENIED else 0
        # Usage counts on the day, in the team's time zone, its window opened (or the job ran).
        day = timezone.localtime(moment, self.team.tz).date()
        group = self.groups[(day, product, user_id)]
        group[0] += tokens
        group[1] += credits
        group[2] += charges
        group[3] += denials

    def save(self, *, now: datetime) -> None:
        if not self.groups:
            return
        keys = self.groups.keys()
        existing = {
            (r.day, r.product, r.user_id): r
            for r in UsageRollup.objects.filter(
                team=self.team,
                day__in={k[0] for k in keys},
                product__in={k[1] for k in keys},
                user_id__in={k[2] for k in keys},
            )
        }
        rows = []
        for key, (tokens, credits, charges, denials) in self.groups.items():
            row = existing.get(key) or UsageRollup(team=self.team, day=key[0], product=key[1], user_id=key[2])
            row.tokens += tokens
            row.cloud_credits += credits
            row.charges += charges
            row.denials += denials
            row.updated_at = now
            rows.append(row)
        UsageRollup.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["team", "day", "product", "user"],
            update_fields=["tokens", "cloud_credits", "charges", "denials", "updated_at"],
        )


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
                LedgerEntry(
                    team=team,
                    kind=EntryKind.REFUND,
                    amount=amount,
                    at=now,
                    event=event,
                    charge=entry.charge,
                    actor=actor,
                    pack=entry.pack,
                    credit_balance=entry.credit_balance,
                )
            )
        else:
            forfeited[unit] += amount
    LedgerEntry.objects.bulk_create(entries)
    TokenPack.objects.bulk_update(packs, ["remaining"])
    CloudCreditBalance.objects.bulk_update(balances, ["remaining"])
    rollup = _RollupDelta(team)
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
