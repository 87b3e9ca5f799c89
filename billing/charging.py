"""The charging engine (domain.md "Charging rules"): given a team's packs, credits,
assignments and open windows, it prices a batch of events in memory and runs no query.

``billing.services.usage.log_usage`` loads what it needs, validates each event
(``billing.events``), charges in time order through :class:`Charger`, and writes the
outcome. docs/charging.md states each rule and every choice made where domain.md is silent.
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
    ChargeType,
    CloudCreditBalance,
    EventStatus,
    FlexAssignment,
    Rate,
    TokenPack,
    UsageWindow,
    pay_order_key,
)
from billing.rates import RateBook
from core.money import CENT, ZERO, fmt

WINDOW = timedelta(hours=24)


@dataclass
class Draw:
    account: TokenPack | CloudCreditBalance
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


class Charger:
    """The charging rules applied to one team's batch, in memory.

    It is given everything up front (``billing.services.usage`` loads it with a bounded
    number of queries) and runs no query itself: it spends the packs and credits it holds
    and opens windows, and says what it did in ``ChargeOutcome``s for the caller to write.
    """

    def __init__(
        self,
        *,
        team: Team,
        now: datetime,
        historical: bool,
        rates: RateBook,
        members: dict[str, User],
        packs: list[TokenPack],
        credits: list[CloudCreditBalance],
        assignments: Iterable[FlexAssignment],
        windows: Iterable[UsageWindow],
    ) -> None:
        self.team, self.now, self.historical = team, now, historical
        self.rates, self.members, self.packs, self.credits = rates, members, packs, credits
        self.assignments: dict[int, list[FlexAssignment]] = defaultdict(list)
        for assignment in assignments:
            self.assignments[assignment.user_id].append(assignment)
        self.windows: dict[tuple[int, str], list[UsageWindow]] = defaultdict(list)
        for window in windows:
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

    def _draw(self, accounts: list, amount: Decimal) -> list[Draw]:
        draws, left = [], amount
        for account in accounts:
            if left <= 0:
                break
            take = min(account.remaining, left)
            account.remaining -= take
            left -= take
            draws.append(Draw(account, take))
        return draws

    def _pay(self, *, cost: Decimal, moment: datetime, credits_first: bool) -> ChargeOutcome:
        if credits_first:
            credits = sorted(
                (c for c in self.credits if self._usable(c, moment)), key=lambda c: (c.expires_at, c.granted_at, c.pk)
            )
            # One job is never split between credits and tokens.
            if sum((c.remaining for c in credits), ZERO) >= cost:
                draws = self._draw(credits, cost)
                self.touched_credits.update(d.account.pk for d in draws)
                return ChargeOutcome(at=moment, status=EventStatus.CHARGED, credits=cost, draws=draws)
        packs = sorted((p for p in self.packs if self._usable(p, moment)), key=pay_order_key)
        if sum((p.remaining for p in packs), ZERO) < cost:
            return ChargeOutcome(at=moment, status=EventStatus.DENIED, reason="insufficient_balance")
        draws = self._draw(packs, cost)
        self.touched_packs.update(d.account.pk for d in draws)
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
            unit = self.rates.variant_tokens(rate, event.variant) if rate.variants.all() else rate.tokens
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


def summarise(event: ParsedEvent, outcomes: list[ChargeOutcome], rate: Rate) -> dict:
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
