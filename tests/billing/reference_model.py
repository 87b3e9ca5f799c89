"""A small, pure-Python reference model of the charging rules (domain.md, "Charging rules").

It knows nothing of Django: plain dataclasses, ``Decimal`` and ``datetime``. The
model-based test (``test_model_based.py``) drives the real services and this model with
the same operations and compares what they say after every step.

Where domain.md is silent the model follows the choices documented in
docs/charging.md and ``billing/charging.py``:

- Events of one batch are charged in time order (``started_at``, then position in the
  batch); results come back in input order. An id stored by an earlier batch replays its
  first outcome and charges nothing. The same id twice in one batch: the first copy in
  input order is the event, later copies replay its outcome (or repeat its error).
  Events that fail validation are not stored, so their id may be sent again.
- Live usage (not historical) ending more than 5 minutes after "now" is refused.
- Charges depend on what happened, not on when it arrived (docs/charging.md,
  "Re-pricing"): every stored event is kept with its current charges, and a batch is
  priced together with the stored events after its earliest new event (start time, then
  id), from what the accounts could pay before them. A window is a charged charge of a
  daily product. A refunded event keeps its charges (pinned). A stored event that would
  lose a charge (one more denial than before) is pinned too, and all is priced again, so a
  late event never takes a charge back.
- A token pack or credit balance pays at moment ``m`` when ``start <= m < expires_at``
  and its pool holds something, whether or not the expiry job has run: a closed account's
  pool includes what the expiry took (``expired``), which late usage takes back.
- The Flex assignment is judged at the event's ``started_at``; so are the rate and the
  cost of a per-result job. Later windows of a long session are priced at their moment.
- Refunds go to the packs (or credit balances) that paid while they are unexpired at the
  refund's time; the rest is forfeited. A second refund replays the first.
- The expiry job closes every pack whose expiry is at or before its ``now`` and writes
  what it still held as an expiry entry.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
WINDOW = timedelta(hours=24)
FUTURE_TOLERANCE = timedelta(minutes=5)
MAX_EVENT_AGE = timedelta(hours=48)
PACK_TERM_MONTHS = 12
CLOUD_CREDITS_EXPIRE_AT = datetime(2023, 3, 29, tzinfo=UTC)
RATES_EFFECTIVE = datetime(2022, 3, 29, tzinfo=UTC)

DAILY, PER_RESULT, FREE = "daily", "per_result", "free"
CHARGED, NO_CHARGE, DENIED, ERROR = "charged", "no_charge", "denied", "error"


@dataclass(frozen=True)
class Product:
    code: str
    charge_type: str
    tokens: Decimal = ZERO
    variants: dict[str, Decimal] = field(default_factory=dict)
    cloud_credit_eligible: bool = False
    grace: timedelta = timedelta(minutes=5)


# The published rates (domain.md, "Known rates").
PRODUCTS: dict[str, Product] = {
    p.code: p
    for p in [
        Product("autocad", DAILY, Decimal("7")),
        Product("revit", DAILY, Decimal("10")),
        Product(
            "cfd-simulation",
            PER_RESULT,
            variants={"simple": Decimal("5"), "moderate": Decimal("10"), "complex": Decimal("35")},
            cloud_credit_eligible=True,
        ),
        Product("generative-design", PER_RESULT, Decimal("11"), cloud_credit_eligible=True),
        Product("design-automation", PER_RESULT, Decimal("2"), cloud_credit_eligible=True),
        Product("cloud-rendering", FREE),
    ]
}


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar months later, clamped to the month's last day (Feb 29 + 12 months = Feb 28)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


class Refused(Exception):
    """The service refuses the operation (a ValidationError or Conflict)."""


# --- State --------------------------------------------------------------------------------------


@dataclass
class Pack:
    reference: str
    tokens: int
    purchased_at: datetime
    expires_at: datetime
    seq: int
    remaining: Decimal
    closed: bool = False  # the expiry job has run for it
    expired: Decimal = ZERO  # what the expiry took, net of reversals

    @property
    def start(self) -> datetime:
        return self.purchased_at


@dataclass
class Credits:
    key: int
    credits: Decimal
    granted_at: datetime
    expires_at: datetime
    seq: int
    remaining: Decimal
    closed: bool = False
    expired: Decimal = ZERO

    @property
    def start(self) -> datetime:
        return self.granted_at


@dataclass
class Assignment:
    assigned_at: datetime
    all_products: bool
    products: tuple[str, ...]
    removed_at: datetime | None = None

    def covers(self, product: str, moment: datetime) -> bool:
        in_force = self.assigned_at <= moment and (self.removed_at is None or moment < self.removed_at)
        return in_force and (self.all_products or product in self.products)


@dataclass
class Window:
    opened_at: datetime
    closes_at: datetime


@dataclass
class Event:
    id: str
    user: str
    product: str
    started_at: datetime
    ended_at: datetime | None = None
    variant: str = ""
    quantity: Decimal = Decimal("1")


@dataclass
class Charge:
    at: datetime
    status: str
    reason: str = ""
    tokens: Decimal = ZERO
    credits: Decimal = ZERO
    pack_draws: list[tuple[str, Decimal]] = field(default_factory=list)
    credit_draws: list[tuple[int, Decimal]] = field(default_factory=list)


@dataclass
class Result:
    id: str
    status: str
    reason: str = ""
    tokens: Decimal = ZERO
    cloud_credits: Decimal = ZERO
    charges: list[Charge] = field(default_factory=list)
    replayed: bool = False
    error: str = ""
    # Kept for refunds and rollups.
    event: Event | None = None
    # Stored events this one re-priced: (id, status, reason, tokens, cloud_credits) after.
    repriced: list[tuple] = field(default_factory=list)


@dataclass
class Refund:
    id: str
    refunded_tokens: Decimal
    refunded_cloud_credits: Decimal
    forfeited_tokens: Decimal
    forfeited_cloud_credits: Decimal
    refunded_at: datetime
    replayed: bool = False


@dataclass
class Rollup:
    tokens: Decimal = ZERO
    cloud_credits: Decimal = ZERO
    charges: int = 0
    denials: int = 0

    def is_empty(self) -> bool:
        return not (self.tokens or self.cloud_credits or self.charges or self.denials)


# --- The model ----------------------------------------------------------------------------------


class FlexModel:
    """One team: its packs, cloud credits, assignments, windows, events and rollups."""

    def __init__(self, *, time_zone: str = "UTC", members: list[str] | None = None) -> None:
        self.tz = ZoneInfo(time_zone)
        self.members = set(members or [])
        self.packs: dict[str, Pack] = {}
        self.credits: dict[int, Credits] = {}
        self.assignments: dict[str, list[Assignment]] = defaultdict(list)
        self.windows: dict[tuple[str, str], list[Window]] = defaultdict(list)
        self.results: dict[str, Result] = {}  # first outcome per stored event id (replayed)
        self.current: dict[str, Result] = {}  # current outcome per stored event id (re-priced)
        self.refunds: dict[str, Refund] = {}
        self.rollups: dict[tuple[date, str, str], Rollup] = defaultdict(Rollup)
        self.expired_tokens = ZERO
        self.expired_credits = ZERO
        self._seq = 0

    # Packs and credits ---------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def record_purchase(self, *, reference: str, tokens: int, purchased_at: datetime) -> tuple[Pack, bool]:
        existing = self.packs.get(reference)
        if existing is not None:
            if existing.tokens == tokens and existing.purchased_at == purchased_at:
                return existing, False
            raise Refused(f"order reference {reference} already recorded with other data")
        pack = Pack(
            reference=reference,
            tokens=tokens,
            purchased_at=purchased_at,
            expires_at=add_months(purchased_at, PACK_TERM_MONTHS),
            seq=self._next_seq(),
            remaining=Decimal(tokens),
        )
        self.packs[reference] = pack
        return pack, True

    def grant_cloud_credits(self, *, key: int, credits: Decimal, granted_at: datetime) -> Credits:
        credits = credits.quantize(CENT)
        if credits <= 0 or granted_at >= CLOUD_CREDITS_EXPIRE_AT:
            raise Refused("credits must be positive and granted before the cutoff")
        balance = Credits(
            key=key,
            credits=credits,
            granted_at=granted_at,
            expires_at=CLOUD_CREDITS_EXPIRE_AT,
            seq=self._next_seq(),
            remaining=credits,
        )
        self.credits[key] = balance
        return balance

    def expire_packs(self, *, now: datetime) -> int:
        closed = 0
        for pack in self.packs.values():
            if not pack.closed and pack.expires_at <= now:
                self.expired_tokens += pack.remaining
                pack.expired += pack.remaining
                pack.remaining, pack.closed = ZERO, True
                closed += 1
        return closed

    def expire_cloud_credits(self, *, now: datetime) -> int:
        closed = 0
        for balance in self.credits.values():
            if not balance.closed and balance.expires_at <= now:
                self.expired_credits += balance.remaining
                balance.expired += balance.remaining
                balance.remaining, balance.closed = ZERO, True
                closed += 1
        return closed

    # Flex assignments ----------------------------------------------------------------------

    def _current(self, user: str) -> Assignment | None:
        return next((a for a in self.assignments[user] if a.removed_at is None), None)

    def assign_flex(self, *, user: str, products: str | list[str], at: datetime) -> None:
        if user not in self.members:
            raise Refused(f"{user} is not a member")
        all_products = products == "all"
        codes = () if all_products else tuple(sorted(set(products)))
        current = self._current(user)
        if current is not None:
            if current.all_products == all_products and current.products == codes:
                return
            current.removed_at = at
        self.assignments[user].append(Assignment(assigned_at=at, all_products=all_products, products=codes))

    def remove_flex(self, *, user: str, at: datetime) -> bool:
        current = self._current(user)
        if current is None:
            return False
        current.removed_at = at
        return True

    def _assigned(self, user: str, product: str, moment: datetime) -> bool:
        return any(a.covers(product, moment) for a in self.assignments[user])

    # Paying --------------------------------------------------------------------------------
    # ``self.pool`` holds what each account can still pay while a batch is priced.

    def _pool_of(self, account: Pack | Credits) -> Decimal:
        return account.remaining + (account.expired if account.closed else ZERO)

    def _usable(self, account: Pack | Credits, moment: datetime) -> bool:
        return self.pool[id(account)] > 0 and account.start <= moment < account.expires_at

    def tokens_available(self, moment: datetime, **_) -> Decimal:
        """Tokens that could pay at ``moment`` for an event logged now (after every other)."""
        return sum((self._pool_of(p) for p in self.packs.values() if p.start <= moment < p.expires_at), ZERO)

    def credits_available(self, moment: datetime, **_) -> Decimal:
        return sum((self._pool_of(c) for c in self.credits.values() if c.start <= moment < c.expires_at), ZERO)

    def _draw(self, accounts: list, amount: Decimal) -> list[tuple[Pack | Credits, Decimal]]:
        draws, left = [], amount
        for account in accounts:
            if left <= 0:
                break
            take = min(self.pool[id(account)], left)
            self.pool[id(account)] -= take
            left -= take
            draws.append((account, take))
        return draws

    def _pay(self, *, cost: Decimal, moment: datetime, credits_first: bool) -> Charge:
        if credits_first:
            balances = sorted(
                (c for c in self.credits.values() if self._usable(c, moment)),
                key=lambda c: (c.expires_at, c.granted_at, c.seq),
            )
            # Credits first, but one job is never split between credits and tokens.
            if sum((self.pool[id(c)] for c in balances), ZERO) >= cost:
                draws = self._draw(balances, cost)
                return Charge(
                    at=moment, status=CHARGED, credits=cost, credit_draws=[(c.key, amount) for c, amount in draws]
                )
        packs = sorted(
            (p for p in self.packs.values() if self._usable(p, moment)),
            # Earliest expiry first; on equal expiry the smallest pack; then oldest purchase.
            key=lambda p: (p.expires_at, p.tokens, p.purchased_at, p.seq),
        )
        if sum((self.pool[id(p)] for p in packs), ZERO) < cost:
            return Charge(at=moment, status=DENIED, reason="insufficient_balance")
        draws = self._draw(packs, cost)
        return Charge(at=moment, status=CHARGED, tokens=cost, pack_draws=[(p.reference, a) for p, a in draws])

    # Usage ---------------------------------------------------------------------------------

    def _validate(self, event: Event, *, now: datetime, historical: bool) -> str:
        """The error code the service gives, or ''."""
        product = PRODUCTS.get(event.product)
        if product is None:
            return "unknown_product"
        if event.user not in self.members:
            return "unknown_user"
        if event.started_at < RATES_EFFECTIVE:
            return "no_rate"
        if event.started_at > now + FUTURE_TOLERANCE:
            return "invalid"
        if not historical and event.ended_at is not None and event.ended_at > now + FUTURE_TOLERANCE:
            return "invalid"  # live: windows are not charged in advance
        if product.charge_type == DAILY and event.ended_at is None:
            return "invalid"
        if product.variants and event.variant not in product.variants:
            return "invalid"
        if not historical and event.started_at < now - MAX_EVENT_AGE:
            return "event_too_old"  # live: every charge of the event lies within the age limit
        return ""

    def _charge(self, event: Event) -> list[Charge]:
        product = PRODUCTS[event.product]
        if not self._assigned(event.user, event.product, event.started_at):
            return [Charge(at=event.started_at, status=DENIED, reason="not_assigned")]
        if product.charge_type == FREE:
            # Free, but only while the team holds at least one token.
            usable = [p for p in self.packs.values() if self._usable(p, event.started_at)]
            if sum((self.pool[id(p)] for p in usable), ZERO) >= 1:
                return []
            return [Charge(at=event.started_at, status=DENIED, reason="insufficient_balance")]
        if product.charge_type == PER_RESULT:
            unit = product.variants[event.variant] if product.variants else product.tokens
            cost = (unit * event.quantity).quantize(CENT)
            return [self._pay(cost=cost, moment=event.started_at, credits_first=product.cloud_credit_eligible)]
        return self._charge_daily(event, product)

    def _charge_daily(self, event: Event, product: Product) -> list[Charge]:
        if event.ended_at - event.started_at < product.grace:
            return []  # grace period: costs nothing, opens no window
        windows = self.windows[(event.user, event.product)]
        charges: list[Charge] = []
        moment = event.started_at
        while True:
            window = next((w for w in windows if w.opened_at <= moment < w.closes_at), None)
            if window is None:
                charge = self._pay(cost=product.tokens, moment=moment, credits_first=False)
                charges.append(charge)
                if charge.status != CHARGED:
                    break
                window = Window(opened_at=moment, closes_at=moment + WINDOW)
                windows.append(window)
            # A session still open when its window ends is charged again at that moment.
            if event.ended_at <= window.closes_at:
                break
            moment = window.closes_at
        return charges

    @staticmethod
    def _summarise(event: Event, charges: list[Charge]) -> Result:
        product = PRODUCTS[event.product]
        charged = [c for c in charges if c.status == CHARGED]
        denied = [c for c in charges if c.status == DENIED]
        if charged:
            status, reason = CHARGED, denied[0].reason if denied else ""
        elif denied:
            status, reason = DENIED, denied[0].reason
        elif product.charge_type == FREE:
            status, reason = NO_CHARGE, "free_product"
        elif product.charge_type == DAILY and event.ended_at - event.started_at < product.grace:
            status, reason = NO_CHARGE, "grace_period"
        else:
            status, reason = NO_CHARGE, "inside_window"
        return Result(
            id=event.id,
            status=status,
            reason=reason,
            tokens=sum((c.tokens for c in charges), ZERO),
            cloud_credits=sum((c.credits for c in charges), ZERO),
            charges=charges,
            event=event,
        )

    def day(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()

    def log_usage(self, events: list[Event], *, now: datetime, historical: bool = False) -> list[Result]:
        results: list[Result | None] = [None] * len(events)
        first_index: dict[str, int] = {}
        for index, event in enumerate(events):
            first_index.setdefault(event.id, index)
        copies: list[int] = []
        new: list[Event] = []
        for index, event in enumerate(events):
            if event.id in self.results:
                results[index] = replace(self.results[event.id], replayed=True)
            elif first_index[event.id] != index:
                copies.append(index)
            else:
                error = self._validate(event, now=now, historical=historical)
                if error:
                    results[index] = Result(id=event.id, status=ERROR, error=error)
                else:
                    new.append(event)
        if new:
            priced = self._reprice(new)
            for event in new:
                result = priced[event.id]
                self.results[event.id] = self.current[event.id] = result
                results[first_index[event.id]] = result
        for index in copies:
            first = results[first_index[events[index].id]]
            results[index] = replace(first, replayed=first.status != ERROR)
        return results

    @staticmethod
    def _key(event: Event) -> tuple[datetime, str]:
        return (event.started_at, event.id)

    def _reprice(self, new: list[Event]) -> dict[str, Result]:
        """Price ``new`` with the stored events after the earliest of them, in time order."""
        earliest = min(self._key(e) for e in new)
        stored = sorted(
            (r for r in self.current.values() if self._key(r.event) > earliest), key=lambda r: self._key(r.event)
        )
        pinned = {r.id for r in stored if r.id in self.refunds}
        while True:
            priced = self._price(new, stored, pinned)
            broken = sorted(
                (r for r in stored if r.id not in pinned and _denials(priced[r.id].charges) > _denials(r.charges)),
                key=lambda r: self._key(r.event),
            )
            if not broken:
                break
            pinned.add(broken[0].id)
        # Apply: the accounts hold what is left of their pools; a closed one holds nothing,
        # and its expiry grows or shrinks instead.
        for account in [*self.packs.values(), *self.credits.values()]:
            left = self.pool[id(account)]
            if account.closed:
                delta = account.expired - left
                account.expired = left
                if isinstance(account, Pack):
                    self.expired_tokens -= delta
                else:
                    self.expired_credits -= delta
            else:
                account.remaining = left
        for old in stored:
            now = priced[old.id]
            if old.id in pinned or _same(old.charges, now.charges):
                continue
            self._roll(old, -1)
            self._roll(now, 1)
            self.current[old.id] = replace(
                old,
                status=now.status,
                reason=now.reason,
                tokens=now.tokens,
                cloud_credits=now.cloud_credits,
                charges=now.charges,
            )
            cause = max((e for e in new if self._key(e) < self._key(old.event)), key=self._key)
            priced[cause.id].repriced.append((old.id, now.status, now.reason, now.tokens, now.cloud_credits))
        for event in new:
            self._roll(priced[event.id], 1)
        return {e.id: priced[e.id] for e in new}

    def _price(self, new: list[Event], stored: list[Result], pinned: set[str]) -> dict[str, Result]:
        repriced = {r.id for r in stored} - pinned
        self.pool = {id(a): self._pool_of(a) for a in [*self.packs.values(), *self.credits.values()]}
        for result in stored:
            if result.id in repriced:
                for charge in result.charges:
                    for reference, amount in charge.pack_draws:
                        self.pool[id(self.packs[reference])] += amount
                    for key, amount in charge.credit_draws:
                        self.pool[id(self.credits[key])] += amount
        # Windows: the charged charges of daily products of the events that keep theirs.
        self.windows = defaultdict(list)
        for result in self.current.values():
            if result.id not in repriced and PRODUCTS[result.event.product].charge_type == DAILY:
                for charge in result.charges:
                    if charge.status == CHARGED:
                        self.windows[(result.event.user, result.event.product)].append(
                            Window(opened_at=charge.at, closes_at=charge.at + WINDOW)
                        )
        priced: dict[str, Result] = {}
        items = [(e, None) for e in new] + [(r.event, r) for r in stored]
        for event, old in sorted(items, key=lambda item: self._key(item[0])):
            if old is not None and old.id in pinned:
                priced[event.id] = old
            else:
                priced[event.id] = self._summarise(event, self._charge(event))
        return priced

    def _roll(self, result: Result, sign: int) -> None:
        event = result.event
        for charge in result.charges:
            group = self.rollups[(self.day(charge.at), event.product, event.user)]
            group.tokens += sign * charge.tokens
            group.cloud_credits += sign * charge.credits
            group.charges += sign * (charge.status == CHARGED)
            group.denials += sign * (charge.status == DENIED)

    def refund_usage(self, *, event_id: str, now: datetime) -> Refund:
        if event_id in self.refunds:
            return replace(self.refunds[event_id], replayed=True)
        first = self.current.get(event_id)
        if first is None:
            raise Refused(f"no usage event {event_id}")
        event = first.event
        if PRODUCTS[event.product].charge_type != PER_RESULT:
            raise Refused("only per-result jobs can be refunded")
        if first.status != CHARGED:
            raise Refused("the job was not charged")
        back = {"tokens": ZERO, "credits": ZERO}
        forfeited = {"tokens": ZERO, "credits": ZERO}
        for charge in first.charges:
            for reference, amount in charge.pack_draws:
                pack = self.packs[reference]
                if not pack.closed and pack.expires_at > now:
                    pack.remaining += amount
                    back["tokens"] += amount
                else:
                    forfeited["tokens"] += amount
            for key, amount in charge.credit_draws:
                balance = self.credits[key]
                if not balance.closed and balance.expires_at > now:
                    balance.remaining += amount
                    back["credits"] += amount
                else:
                    forfeited["credits"] += amount
        group = self.rollups[(self.day(event.started_at), event.product, event.user)]
        group.tokens -= back["tokens"]
        group.cloud_credits -= back["credits"]
        refund = Refund(
            id=event_id,
            refunded_tokens=back["tokens"],
            refunded_cloud_credits=back["credits"],
            forfeited_tokens=forfeited["tokens"],
            forfeited_cloud_credits=forfeited["credits"],
            refunded_at=now,
        )
        self.refunds[event_id] = refund
        return refund

    # Totals --------------------------------------------------------------------------------

    @property
    def charged_tokens(self) -> Decimal:
        return sum((r.tokens for r in self.current.values()), ZERO)

    @property
    def charged_credits(self) -> Decimal:
        return sum((r.cloud_credits for r in self.current.values()), ZERO)

    @property
    def refunded_tokens(self) -> Decimal:
        return sum((r.refunded_tokens for r in self.refunds.values()), ZERO)

    @property
    def refunded_credits(self) -> Decimal:
        return sum((r.refunded_cloud_credits for r in self.refunds.values()), ZERO)

    def nonempty_rollups(self) -> dict[tuple[date, str, str], Rollup]:
        return {key: group for key, group in self.rollups.items() if not group.is_empty()}


def _denials(charges: list[Charge]) -> int:
    return sum(c.status == DENIED for c in charges)


def _same(old: list[Charge], new: list[Charge]) -> bool:
    def key(c: Charge) -> tuple:
        return (c.at, c.status, c.reason, c.tokens, c.credits, c.pack_draws, c.credit_draws)

    return [key(c) for c in old] == [key(c) for c in new]
