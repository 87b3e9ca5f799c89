"""The charging engine (domain.md "Charging rules"): given a team's packs, credits,
assignments and windows, it prices a batch of new events together with the stored events
that come after the earliest of them, in time order, in memory, and runs no query.

``billing.services.usage.log_usage`` loads what it needs, validates each event
(``billing.events``), prices through :meth:`Charger.reprice`, and writes the outcomes and
the compensating entries. docs/charging.md states each rule ("Re-pricing" the rules for
late events) and every choice made where domain.md is silent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from accounts.models import Team, User
from billing.events import EventError, ParsedEvent, no_rate, rule_problems
from billing.models import (
    Charge,
    ChargeType,
    CloudCreditBalance,
    EventStatus,
    FlexAssignment,
    Rate,
    TokenPack,
    UsageEvent,
    UsageWindow,
    pay_order_key,
)
from billing.rates import RateBook
from core.money import CENT, ZERO, fmt

WINDOW = timedelta(hours=24)
# A safety stop for the re-pricing loop (each round pins one more stored event); past it,
# every event that would lose a charge is pinned at once.
MAX_ROUNDS = 50

Account = TokenPack | CloudCreditBalance
AccountKey = tuple[str, int]


def account_key(account: Account) -> AccountKey:
    return ("pack" if isinstance(account, TokenPack) else "credits", account.pk)


@dataclass
class Draw:
    account: Account
    amount: Decimal


@dataclass
class ChargeOutcome:
    at: datetime
    status: str
    reason: str = ""
    tokens: Decimal = ZERO
    credits: Decimal = ZERO
    draws: list[Draw] = field(default_factory=list)
    window: UsageWindow | None = None
    row: Charge | None = None  # the stored charge, for an outcome read back from the database

    def same_as(self, other: ChargeOutcome) -> bool:
        """The same charge: same moment, outcome and amounts, drawn from the same accounts."""
        return self._key() == other._key()

    def _key(self) -> tuple:
        draws = tuple((account_key(d.account), d.amount) for d in self.draws)
        return (self.at, str(self.status), self.reason, self.tokens, self.credits, draws)

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


def _denials(outcomes: list[ChargeOutcome]) -> int:
    return sum(o.status == EventStatus.DENIED for o in outcomes)


def same_outcomes(old: list[ChargeOutcome], new: list[ChargeOutcome]) -> bool:
    return len(old) == len(new) and all(a.same_as(b) for a, b in zip(old, new, strict=True))


@dataclass
class Item:
    """One event to price: new (from the batch) or stored (logged before, to re-price).

    A stored item carries its current charges (``old``, read back from the ledger with
    their windows). It is *pinned* when it must keep them (docs/charging.md,
    "Re-pricing"): refunded, paid by a pack that has left the team, or it would lose a
    charge already taken. A pinned item keeps its charges, draws and windows.
    """

    event: ParsedEvent
    stored: UsageEvent | None = None
    old: list[ChargeOutcome] = field(default_factory=list)
    pinned: bool = False

    @property
    def key(self) -> tuple[datetime, str]:
        # Determinism: events are priced by start time, then id, whoever sent them when.
        return (self.event.started_at, self.event.id)


class Charger:
    """The charging rules applied to one team's events, in memory.

    It is given everything up front (``billing.services.usage`` loads it with a bounded
    number of queries) and runs no query itself. :meth:`reprice` prices the batch's new
    events together with the stored events after the earliest of them, by start time then
    id, from the state the earlier events left: what each pack and credit balance could
    pay (its *pool*) and the windows they opened. A pool is what the account holds now,
    plus what the re-priced events drew from it, plus, once the expiry job has closed it,
    what the expiry took: an account pays for usage at any moment it was valid
    (``start <= at < expires_at``), whether or not the expiry job has run, and never after.
    """

    def __init__(
        self, *, team: Team, now: datetime, historical: bool, rates: RateBook, members: dict[str, User]
    ) -> None:
        self.team, self.now, self.historical = team, now, historical
        self.rates, self.members = rates, members
        self.load(packs=[], credits=[], assignments=[], windows=[])

    def load(
        self,
        *,
        packs: list[TokenPack],
        credits: list[CloudCreditBalance],
        assignments: Iterable[FlexAssignment],
        windows: Iterable[UsageWindow],
        expired: dict[AccountKey, Decimal] | None = None,
    ) -> None:
        """The team's state before the events to price (``validate`` needs none of it).

        ``expired`` is what the expiry job took from each closed account; ``windows`` are
        the windows the events before the earliest priced one opened (still open then).
        """
        self.packs, self.credits = packs, credits
        self.accounts: dict[AccountKey, Account] = {account_key(a): a for a in [*packs, *credits]}
        self.assignments: dict[int, list[FlexAssignment]] = defaultdict(list)
        for assignment in assignments:
            self.assignments[assignment.user_id].append(assignment)
        self.fixed_windows = list(windows)
        # What each account could pay before the priced events: what it holds, and, when the
        # expiry job has closed it, what the expiry took (late usage from before the expiry
        # takes it back).
        expired = expired or {}
        self.base: dict[AccountKey, Decimal] = {
            key: a.remaining + (expired.get(key, ZERO) if a.expired_at else ZERO) for key, a in self.accounts.items()
        }
        self.pool: dict[AccountKey, Decimal] = dict(self.base)
        self.windows: dict[tuple[int, str], list[UsageWindow]] = defaultdict(list)
        self.errors: dict[str, EventError] = {}

    # Paying ---------------------------------------------------------------------------------

    def _usable(self, account: Account, moment: datetime) -> bool:
        start = account.purchased_at if isinstance(account, TokenPack) else account.granted_at
        # Valid at the charge's own time. A pack whose expiry has passed never pays for a
        # moment after it, whether or not the expiry job has run; for a moment before it,
        # it pays even when the job has closed it (the expiry is partly reversed).
        return self.pool[account_key(account)] > 0 and start <= moment < account.expires_at

    def _tokens_available(self, moment: datetime) -> Decimal:
        return sum((self.pool[account_key(p)] for p in self.packs if self._usable(p, moment)), ZERO)

    def _draw(self, accounts: list, amount: Decimal) -> list[Draw]:
        draws, left = [], amount
        for account in accounts:
            if left <= 0:
                break
            key = account_key(account)
            take = min(self.pool[key], left)
            self.pool[key] -= take
            left -= take
            draws.append(Draw(account, take))
        return draws

    def _pay(self, *, cost: Decimal, moment: datetime, credits_first: bool) -> ChargeOutcome:
        if credits_first:
            credits = sorted(
                (c for c in self.credits if self._usable(c, moment)), key=lambda c: (c.expires_at, c.granted_at, c.pk)
            )
            # One job is never split between credits and tokens.
            if sum((self.pool[account_key(c)] for c in credits), ZERO) >= cost:
                draws = self._draw(credits, cost)
                return ChargeOutcome(at=moment, status=EventStatus.CHARGED, credits=cost, draws=draws)
        packs = sorted((p for p in self.packs if self._usable(p, moment)), key=pay_order_key)
        if sum((self.pool[account_key(p)] for p in packs), ZERO) < cost:
            return ChargeOutcome(at=moment, status=EventStatus.DENIED, reason="insufficient_balance")
        draws = self._draw(packs, cost)
        return ChargeOutcome(at=moment, status=EventStatus.CHARGED, tokens=cost, draws=draws)

    # Rules ----------------------------------------------------------------------------------

    def rate(self, event: ParsedEvent, moment: datetime) -> Rate:
        rate = self.rates.at(event.product, moment)
        if rate is None:
            raise EventError.of(no_rate(event.product, moment))
        return rate

    def _assigned(self, user: User, product: str, moment: datetime) -> bool:
        return any(a.covers(product, moment) for a in self.assignments.get(user.pk, ()))

    def validate(self, event: ParsedEvent) -> None:
        """Refuse the event by the first rule it breaks (``billing.events.rule_problems``)."""
        problems = rule_problems(
            event,
            rates=self.rates,
            members=self.members,
            team_slug=self.team.slug,
            now=self.now,
            historical=self.historical,
        )
        if problems:
            raise EventError.of(problems[0])

    # Pricing in time order ------------------------------------------------------------------

    def reprice(self, items: list[Item]) -> dict[str, list[ChargeOutcome]]:
        """Price ``items`` (new and stored) in time order; return each event's charges by id.

        A stored item that would lose a charge already taken (it was paid, and now one of
        its charges is denied) is pinned, and everything is priced again: so a late event
        never takes a charge back, and is denied when what is left can't pay it. New items
        that turn out to be errors (a later window with no rate in force) are left out and
        named in ``errors``.
        """
        live = list(items)
        for round_ in range(MAX_ROUNDS + len(items) + 1):
            known_errors = set(self.errors)
            priced = self._price(live)
            failed = [i for i in live if i.event.id in self.errors and i.event.id not in known_errors]
            for item in failed:
                if item.stored is None:
                    live.remove(item)
                else:
                    item.pinned = True
            if failed:
                continue
            broken = [
                i
                for i in sorted(live, key=lambda i: i.key)
                if i.stored is not None and not i.pinned and _denials(priced[i.event.id]) > _denials(i.old)
            ]
            if not broken:
                return priced
            for item in broken if round_ > MAX_ROUNDS else broken[:1]:
                item.pinned = True
        raise AssertionError("re-pricing did not settle")  # pragma: no cover: every round pins

    def _price(self, items: list[Item]) -> dict[str, list[ChargeOutcome]]:
        self.pool = dict(self.base)
        self.windows = defaultdict(list)
        for window in self.fixed_windows:
            self.windows[(window.user_id, window.product)].append(window)
        for item in items:
            if item.pinned:
                for outcome in item.old:
                    if outcome.window is not None:
                        self.windows[(outcome.window.user_id, outcome.window.product)].append(outcome.window)
            else:
                # Re-priced: what it drew goes back to the pool it came from.
                for outcome in item.old:
                    for draw in outcome.draws:
                        self.pool[account_key(draw.account)] += draw.amount
        priced: dict[str, list[ChargeOutcome]] = {}
        for item in sorted(items, key=lambda i: i.key):
            if item.pinned:
                priced[item.event.id] = item.old
                continue
            try:
                priced[item.event.id] = self.charge(item.event)
            except EventError as error:
                self.errors[item.event.id] = error
                priced[item.event.id] = item.old
        return priced

    def charge(self, event: ParsedEvent) -> list[ChargeOutcome]:
        rate = self.rate(event, event.started_at)
        user = event.user
        if not self._assigned(user, event.product, event.started_at):
            return [ChargeOutcome(at=event.started_at, status=EventStatus.DENIED, reason="not_assigned")]
        if rate.charge_type == ChargeType.FREE:
            # Free, but only while the team holds at least one token.
            if self._tokens_available(event.started_at) >= 1:
                return []
            return [ChargeOutcome(at=event.started_at, status=EventStatus.DENIED, reason="insufficient_balance")]
        if rate.charge_type == ChargeType.PER_RESULT:
            unit = self.rates.variant_tokens(rate, event.variant) if self.rates.variants(rate) else rate.tokens
            # Rate x quantity may have four decimals: rounded half-even to the cent.
            cost = (unit * event.quantity).quantize(CENT, rounding=ROUND_HALF_EVEN)
            return [self._pay(cost=cost, moment=event.started_at, credits_first=rate.cloud_credit_eligible)]
        return self._charge_daily(event, rate)

    def _charge_daily(self, event: ParsedEvent, rate: Rate) -> list[ChargeOutcome]:
        # Sessions shorter than the grace period cost nothing and open no window.
        if event.ended_at - event.started_at < timedelta(minutes=rate.grace_minutes):
            return []
        windows = self.windows[(event.user.pk, event.product)]
        outcomes: list[ChargeOutcome] = []
        moment = event.started_at
        while True:
            window = next((w for w in windows if w.opened_at <= moment < w.closes_at), None)
            if window is None:
                # A launch (or a session outliving its window) opens a new 24-hour window.
                outcome = self._pay(cost=self.rate(event, moment).tokens, moment=moment, credits_first=False)
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


def outcome_summary(event: ParsedEvent, outcomes: list[ChargeOutcome], rate: Rate) -> dict:
    """An event's status, reason and amounts, and its charges, as the API shows them."""
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
        "status": str(status),
        "reason": reason,
        "tokens": fmt(sum((o.tokens for o in outcomes), ZERO)),
        "cloud_credits": fmt(sum((o.credits for o in outcomes), ZERO)),
        "charges": [o.as_dict() for o in outcomes],
    }


def summarise(event: ParsedEvent, outcomes: list[ChargeOutcome], rate: Rate) -> dict:
    """The result of a new event. The caller adds ``repriced`` when the event re-priced
    stored ones (api.md: the key is there only then)."""
    return {"id": event.id, **outcome_summary(event, outcomes, rate), "replayed": False}
