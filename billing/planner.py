"""The purchase planner (domain.md "What no peer does"): what to buy, and when, so that a
team's balance lasts until its contract ends, with as few bought tokens as possible
expiring unused.

Pure: no queries, no settings, no clock. ``billing.plan_selectors.plan_inputs`` reads the
inputs (the burn from the usage rollup, the active packs as ``Lot`` s, the contract), and
the pages call ``plan_purchases``. Every day is one of the team's days (its time zone).
The rules, and the choices made where domain.md is silent, are in ``docs/planner.md``.

The model, day by day from today to the horizon (the contract's last day):
- each day uses ``daily_burn`` tokens, today included (part of today may already be
  spent: a small margin);
- the packs pay in pay order (``billing.models.PAY_ORDER``: earliest expiry first; on a
  tie which pays first changes no total, since both expire together);
- a pack pays from the day it is bought up to the day before ``expires_on``; what it still
  holds on ``expires_on`` is lost (domain.md "Token pack": a pack whose expiry has passed
  never pays, and the planner does not count on the hours before the expiry time);
- usage the packs cannot cover is refused (a balance never goes negative).

A pack bought on a later day always expires after every pack the team holds (12 months
from its purchase), so it pays last: buying more never changes what the current packs
pay or lose. That is why the planner can size each purchase from the shortfall alone.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from dateutil.relativedelta import relativedelta

from core.money import ZERO, to_cents, tokens_text

TERM_MONTHS = 12  # domain.md "Token pack": expires at = purchased at + 12 months
LEAD_DAYS = 7  # buy a week before the balance would run out
MIN_PACK = 100
STEP = 100
SOON_DAYS = 30  # a contract ending within this many days gets a warning
FEW_USAGE_DAYS = 7  # a burn resting on fewer days with usage gets a warning
MAX_POINTS = 52  # regular points of the projection; the days where something happens come on top
MAX_PROPOSALS = 50  # a safety net: a contract of a few years needs a handful
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Lot:
    """Tokens the team holds (a pack's ``remaining``) and the first day they can no longer
    pay (the team's day of the pack's ``expires_at``). ``starts_on`` is for a pack not
    bought yet (it pays from that day on): a what-if."""

    remaining: Decimal
    expires_on: date
    reference: str = ""
    starts_on: date | None = None


@dataclass(frozen=True)
class Proposal:
    """Buy ``tokens`` on ``buy_on``; the pack would expire on ``expires_on``."""

    buy_on: date
    tokens: int
    expires_on: date
    why: str


@dataclass(frozen=True)
class Point:
    """The balance at the END of ``day`` (after its usage; purchases of the day included,
    packs that expire on the day gone): without and with the proposals."""

    day: date
    without: Decimal
    with_plan: Decimal


@dataclass(frozen=True)
class Unused:
    """What a current pack will still hold when it expires, whatever is bought."""

    reference: str
    expires_on: date
    tokens: Decimal


@dataclass
class PurchasePlan:
    today: date
    horizon_end: date  # the last day the plan covers: the contract's last day
    daily_burn: Decimal
    available: Decimal  # what the current packs hold today
    proposals: list[Proposal] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    runs_out_on: date | None = None  # the first day whose usage the packs can't fully pay, without the plan
    runs_out_with_plan: date | None = None
    shortfall: Decimal = ZERO  # usage up to the horizon that the current packs can't pay
    expiring_unused: Decimal = ZERO  # tokens lost to expiry up to the horizon, without the plan
    expiring_unused_with_plan: Decimal = ZERO
    unavoidable: list[Unused] = field(default_factory=list)  # per current pack, lost whatever is bought
    left_at_end: Decimal = ZERO  # tokens still held at the end of the horizon, without the plan
    left_at_end_with_plan: Decimal = ZERO
    assumptions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def tokens_to_buy(self) -> int:
        return sum(p.tokens for p in self.proposals)


# --- the simulation ------------------------------------------------------------------------------


@dataclass
class _Run:
    end_balance: list[Decimal]  # per day from today, at its end
    unmet: list[Decimal]  # per day from today, the usage no pack paid
    lost: list[Decimal]  # per lot, what it held at its expiry (up to the horizon)
    left: Decimal  # held at the end of the horizon


def _simulate(*, today: date, horizon_end: date, lots: list[Lot], burn: Decimal) -> _Run:
    days = (horizon_end - today).days + 1
    held = [lot.remaining if lot.remaining > 0 else ZERO for lot in lots]
    starts: dict[date, list[int]] = defaultdict(list)
    expiries: dict[date, list[int]] = defaultdict(list)
    lost = [ZERO] * len(lots)
    for i, lot in enumerate(lots):
        start = max(lot.starts_on or today, today)
        if start < lot.expires_on:
            starts[start].append(i)
            expiries[lot.expires_on].append(i)
        elif lot.starts_on is None:
            lost[i], held[i] = held[i], ZERO  # held today, but it can't pay today: lost today
        else:
            held[i] = ZERO  # a what-if bought too late to pay on any day
    order = sorted(range(len(lots)), key=lambda i: (lots[i].expires_on, max(lots[i].starts_on or today, today)))
    valid = [False] * len(lots)
    total = ZERO
    end_balance: list[Decimal] = []
    unmet: list[Decimal] = []
    for k in range(days):
        day = today + timedelta(days=k)
        for i in expiries.get(day, ()):
            if valid[i]:
                lost[i] = held[i]
                total -= held[i]
                held[i] = ZERO
                valid[i] = False
        for i in starts.get(day, ()):
            valid[i] = True
            total += held[i]
        due = burn
        if due > 0 and total > 0:
            for i in order:
                if not valid[i] or not held[i]:
                    continue
                take = min(held[i], due)
                held[i] -= take
                due -= take
                total -= take
                if not due:
                    break
            # Drop the packs emptied from the front of the pay order (only a speed-up).
            while order and not held[order[0]]:
                order.pop(0)
        end_balance.append(total)
        unmet.append(due if due > 0 else ZERO)
    return _Run(end_balance=end_balance, unmet=unmet, lost=lost, left=total)


def _first(values: list[Decimal], start: int = 0) -> int | None:
    return next((k for k in range(max(start, 0), len(values)) if values[k] > 0), None)


def _expires_on(buy_on: date, term_months: int) -> date:
    """The expiry rule of ``billing.services.packs.record_purchase``: purchase plus the term
    in calendar months (29 February gives 28 February)."""
    return buy_on + relativedelta(months=term_months)


def _round_up(amount: Decimal, step: int) -> int:
    return int((amount / step).to_integral_value(rounding=ROUND_CEILING)) * step


def _round_down(amount: Decimal, step: int) -> int:
    return int((amount / step).to_integral_value(rounding=ROUND_FLOOR)) * step


def _day(value: date) -> str:
    return f"{value.day} {value:%B %Y}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# --- the planner ---------------------------------------------------------------------------------


def plan_purchases(
    *,
    today: date,
    contract_end: date | None,
    lots: list[Lot],
    daily_burn: Decimal,
    contract_start: date | None = None,
    min_pack: int = MIN_PACK,
    step: int = STEP,
    lead_days: int = LEAD_DAYS,
    term_months: int = TERM_MONTHS,
    burn_days: int = 90,
    days_with_usage: int | None = None,
) -> PurchasePlan:
    """Propose purchases so that ``daily_burn`` a day is paid up to the contract's end.

    Each purchase is made ``lead_days`` before the day the balance would run out (never
    before today or the contract's start), and is as small as a multiple of ``step`` (at
    least ``min_pack``) can be: a pack that reaches the horizon is the shortfall up to the
    horizon rounded up; a pack that expires before the horizon is the shortfall up to its
    expiry rounded DOWN, so that it is spent to the last token and the next purchase comes
    a little earlier and takes over. Bought packs pay last (they expire last), so the
    tokens bought add up to the shortfall rounded up to the step: no bought token expires
    unused but the last pack's rounding (or the smallest pack's excess).
    """
    if step < 1 or min_pack < 1 or term_months < 1 or not 0 <= lead_days <= 90:
        raise ValueError("step, min_pack and term_months must be at least 1, lead_days within 0 to 90")
    burn = daily_burn if daily_burn > 0 else ZERO
    lots = [lot for lot in lots if lot.remaining > 0]
    assumptions: list[str] = []
    warnings: list[str] = []
    if contract_end is None:
        horizon_end = _expires_on(today, 12) - DAY
        assumptions.append(
            f"No contract end is known: the plan looks 12 months ahead, to {_day(horizon_end)}, and any day "
            "up to then may be a purchase day."
        )
    else:
        horizon_end = contract_end
        assumptions.append(f"The plan covers every day up to the contract's last day, {_day(contract_end)}.")
    available = to_cents(sum((lot.remaining for lot in lots if lot.starts_on is None or lot.starts_on <= today), ZERO))
    if burn:
        assumptions.append(
            f"Usage goes on at {tokens_text(burn)} tokens a day: the average of the last {_plural(burn_days, 'day')} "
            "(whole days, tokens only: usage paid with cloud credits does not count)."
        )
    assumptions += [
        "Today counts as a full day of usage, so the plan keeps a small margin.",
        "The packs pay as at a charge: the one that expires first pays first. A pack pays nothing on its "
        "expiry day; what it still holds then is lost.",
        f"A pack lasts {term_months} months from the day it is bought. A new pack expires after every "
        "pack the team holds, so it pays last and does not change what the current packs pay or lose.",
        f"A purchase is proposed {_plural(lead_days, 'day')} before the day the balance would run out "
        "(time to record the order, and a margin for days busier than average), never before today, "
        "never outside the contract.",
        f"Amounts are multiples of {step:,} tokens, at least {min_pack:,} a pack. The pack that reaches the "
        "contract's end is rounded up; a pack that expires before it is rounded down, so it is spent to the "
        "last token and the next purchase takes over a few days earlier.",
        "Balances are at the end of each day.",
    ]
    plan = PurchasePlan(today=today, horizon_end=horizon_end, daily_burn=burn, available=available)
    plan.assumptions = assumptions
    plan.warnings = warnings

    if horizon_end < today:
        warnings.append(
            f"The contract ended on {_day(horizon_end)}: a purchase would be refused. "
            "Nothing is proposed until the contract is renewed."
        )
        plan.points = [Point(day=today, without=available, with_plan=available)]
        plan.left_at_end = plan.left_at_end_with_plan = available
        return plan
    days_left = (horizon_end - today).days + 1
    if contract_end is not None and days_left <= SOON_DAYS:
        warnings.append(
            f"The contract ends on {_day(horizon_end)}, {_plural(days_left, 'day')} from today (today included). "
            f"A pack bought now lasts {term_months} months, long after that: only the tokens for the days left "
            "are proposed, and what is left when the contract ends is of use only if it is renewed."
        )
    if not burn:
        since = (
            f"in the last {_plural(burn_days, 'day')}" if burn_days else "yet (no whole day of the contract is over)"
        )
        warnings.append(
            f"No usage {since}: there is no burn to project, so nothing is proposed. "
            "Plan again once the team uses tokens."
        )
    elif days_with_usage is not None and days_with_usage < FEW_USAGE_DAYS:
        warnings.append(
            f"The burn rests on {_plural(days_with_usage, 'day')} with usage out of {burn_days}: "
            "the projection is rough."
        )

    earliest = max(today, contract_start) if contract_start else today
    base = _simulate(today=today, horizon_end=horizon_end, lots=lots, burn=burn)
    first_short = _first(base.unmet)
    plan.runs_out_on = today + timedelta(days=first_short) if first_short is not None else None
    plan.shortfall = to_cents(sum(base.unmet, ZERO))
    plan.left_at_end = to_cents(base.left)
    plan.expiring_unused = to_cents(sum(base.lost, ZERO))
    plan.unavoidable = [
        Unused(reference=lot.reference, expires_on=lot.expires_on, tokens=to_cents(lost))
        for lot, lost in zip(lots, base.lost, strict=True)
        if lost > 0
    ]
    reason = "at this burn the team cannot spend them in time" if burn else "without usage nothing is spent"
    for unused in plan.unavoidable:
        name = f"Pack {unused.reference}" if unused.reference else "A pack"
        warnings.append(
            f"{name} will expire on {_day(unused.expires_on)} with {tokens_text(unused.tokens)} tokens unused "
            f"whatever is bought: {reason}, and new packs pay after it."
        )
    if earliest > horizon_end:
        warnings.append(
            f"The contract starts on {_day(earliest)}, after the plan's last day: no purchase can be recorded."
        )
    elif first_short is not None and today + timedelta(days=first_short) < earliest:
        warnings.append(
            f"The balance runs out on {_day(plan.runs_out_on)}, before the contract starts on {_day(earliest)}: "
            "no purchase can be recorded before then."
        )

    proposals: list[Proposal] = []
    bought: list[Lot] = []
    run = base
    while burn and earliest <= horizon_end and len(proposals) < MAX_PROPOSALS:
        short = _first(run.unmet, (earliest - today).days)
        if short is None:
            break
        runs_out = today + timedelta(days=short)
        buy_on = max(earliest, runs_out - timedelta(days=lead_days))
        expires_on = _expires_on(buy_on, term_months)
        window_end = min(horizon_end, expires_on - DAY)
        need = sum(run.unmet[(buy_on - today).days : (window_end - today).days + 1], ZERO)
        last = window_end == horizon_end
        tokens = _round_up(need, step) if last else _round_down(need, step)
        rounded_down = not last and tokens >= min_pack
        if not rounded_down:
            tokens = max(min_pack, _round_up(need, step))
        ahead = (runs_out - buy_on).days
        when = (
            f"{_plural(ahead, 'day')} before the balance would run out on {_day(runs_out)}"
            if ahead
            else f"on {_day(runs_out)}, the day the balance would run out"
        )
        if last:
            why = (
                f"Bought {when}: {tokens_text(need)} tokens of usage are left to pay up to the contract's end on "
                f"{_day(horizon_end)}"
            )
        else:
            why = (
                f"Bought {when}: this pack expires on {_day(expires_on)}, before the plan's end, and "
                f"{tokens_text(need)} tokens of usage fall before then"
            )
        if tokens == min_pack and _round_up(need, step) < min_pack:
            why += f"; the smallest pack is {min_pack:,} tokens."
        elif rounded_down:
            why += f"; rounded down to {tokens:,} so none of it expires unused: the next purchase takes over."
        else:
            why += f"; rounded up to {tokens:,}."
        proposals.append(Proposal(buy_on=buy_on, tokens=tokens, expires_on=expires_on, why=why))
        bought.append(Lot(remaining=Decimal(tokens), expires_on=expires_on, reference="", starts_on=buy_on))
        run = _simulate(today=today, horizon_end=horizon_end, lots=lots + bought, burn=burn)
    plan.proposals = proposals
    with_short = _first(run.unmet)
    plan.runs_out_with_plan = today + timedelta(days=with_short) if with_short is not None else None
    plan.left_at_end_with_plan = to_cents(run.left)
    plan.expiring_unused_with_plan = to_cents(sum(run.lost, ZERO))
    if proposals and plan.left_at_end_with_plan > plan.left_at_end:
        extra = plan.left_at_end_with_plan - plan.left_at_end
        warnings.append(
            f"With the plan, {tokens_text(extra)} bought tokens are left when the plan ends on {_day(horizon_end)} "
            "(packs come in round amounts); they stay usable until their pack expires."
        )
    if plan.runs_out_with_plan is not None and burn and earliest <= horizon_end:
        warnings.append(  # only before the contract starts, or past MAX_PROPOSALS
            f"Even with the plan the balance runs out on {_day(plan.runs_out_with_plan)}."
        )
    plan.points = _points(today=today, horizon_end=horizon_end, lots=lots, base=base, run=run, plan=plan)
    return plan


def _points(
    *, today: date, horizon_end: date, lots: list[Lot], base: _Run, run: _Run, plan: PurchasePlan
) -> list[Point]:
    """About weekly points (at most ``MAX_POINTS`` of them), plus the days where something
    happens: a purchase, a pack losing tokens at its expiry, the balance running out, the end."""
    days = (horizon_end - today).days + 1
    interval = max(7, -(-days // MAX_POINTS))
    wanted = set(range(0, days, interval)) | {days - 1}
    events = [p.buy_on for p in plan.proposals] + [u.expires_on for u in plan.unavoidable]
    events += [d for d in (plan.runs_out_on, plan.runs_out_with_plan) if d is not None]
    wanted |= {(d - today).days for d in events if today <= d <= horizon_end}
    return [
        Point(
            day=today + timedelta(days=k), without=to_cents(base.end_balance[k]), with_plan=to_cents(run.end_balance[k])
        )
        for k in sorted(wanted)
    ]
