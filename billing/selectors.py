"""Reads of the billing data: balances, the ledger check, the Flex tokens page and My usage.

Everything here is computed with a fixed number of aggregate queries, whatever the number
of packs, entries or events (no per-row queries).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from django.conf import settings
from django.db.models import (
    Case,
    Count,
    DecimalField,
    IntegerField,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
    prefetch_related_objects,
)
from django.db.models.functions import Coalesce, TruncDate, TruncMonth
from django.utils import timezone

from accounts.models import Team
from billing.models import (
    PAY_ORDER,
    CloudCreditBalance,
    EntryKind,
    EventStatus,
    FlexAssignment,
    LedgerEntry,
    PackStatus,
    Rate,
    TokenPack,
    UsageEvent,
    UsageRollup,
    pack_status,
    pack_status_expression,
    pay_order_key,
)
from billing.rollups import SIZED_ROLLUPS, SizedRollup
from core.money import ZERO
from core.money import to_cents as _money

# Usage, net: what charges took, less refunds and the draws re-pricing gave back.
SPENT_KINDS = (EntryKind.USAGE, EntryKind.REFUND, EntryKind.REPRICE)
# Expiry, net: what the expiry job took, less what late usage from before it took back.
EXPIRY_KINDS = (EntryKind.EXPIRY, EntryKind.EXPIRY_REVERSAL)
# How a pack comes to a team; the last such entry says what the team got on the pack it holds.
RECEIVED_KINDS = (EntryKind.PURCHASE, EntryKind.MOVE_IN)
# The expiry job runs on a schedule; a pack still open this long after its expiry is a finding.
EXPIRY_GRACE = timedelta(hours=1)


def _sum(expression: str, condition: Q | None = None) -> Coalesce:
    return Coalesce(
        Sum(expression, filter=condition, output_field=DecimalField(max_digits=14, decimal_places=2)),
        Value(ZERO),
        output_field=DecimalField(max_digits=14, decimal_places=2),
    )


# --- Balance ------------------------------------------------------------------------------------


def team_balance(*, team: Team, at: datetime | None = None) -> dict:
    """The team's balance (api.md, ``GET /teams/{slug}/balance``), now or as of ``at``.

    - ``available``: what the packs valid at the moment still hold.
    - ``purchased`` / ``used``: of the *active* packs (valid and holding tokens, domain.md
      "Token pack"): what the team spent on them (its own usage minus refunds), and the
      tokens it got on them, ``available + used``. For a pack the team bought that is the
      pack's size; for a pack moved in, what was moved in: the previous owner's usage stays
      the previous owner's ("the pack changes hands; its past usage stays with the team
      that spent it"). So the donut always adds up: ``purchased == available + used``.
    - ``expired``: tokens the team lost to expiry, over all time: expiry entries, plus what
      packs past their expiry still hold when the expiry job has not closed them yet (they
      can never pay again).

    With ``at`` in the past everything is rebuilt from ledger entries with ``at <= at``:
    which packs the team held then follows from its purchase / move-in / move-out entries.
    """
    if at is None:
        return _current_balance(team=team, now=timezone.now())
    return _past_balance(team=team, at=at)


def _balance_dict(*, team: Team, packs: list[dict], expired: Decimal, credits: list[dict], at: datetime) -> dict:
    # Active: valid at the moment (bought before it, expiring after it) and holding tokens.
    active = [p for p in packs if p["status"] == "active" and p["purchased_at"] <= at]
    cutoff = max((c["expires_at"] for c in credits), default=settings.FLEX_CLOUD_CREDITS_EXPIRE_AT)
    credits_available = sum(
        (c["remaining"] for c in credits if c["granted_at"] <= at < c["expires_at"] and not c["closed"]), ZERO
    )
    # What expired packs still hold (the expiry job has not run yet) is lost all the same.
    pending_expiry = sum((p["remaining"] for p in packs if p["status"] == "expired"), ZERO)
    return {
        "team": team.slug,
        "tokens": {
            "available": _money(sum((p["remaining"] for p in active), ZERO)),
            # What the team got on its active packs: bought, or moved in (net of moves out).
            "purchased": _money(sum((p["remaining"] + p["used"] for p in active), ZERO)),
            "used": _money(sum((p["used"] for p in active), ZERO)),
            "expired": _money(expired + pending_expiry),
        },
        "cloud_credits": {"available": _money(credits_available), "expires_at": cutoff},
        "packs": [
            {k: p[k] for k in ("reference", "tokens", "remaining", "purchased_at", "expires_at", "status")}
            for p in packs
        ],
    }


def _current_balance(*, team: Team, now: datetime) -> dict:
    """The balance now, at a cost that does not grow with the team's history: what each pack
    holds is its ``remaining``; what the team got on it is its last purchase or move-in entry,
    so what it used since is the difference. One query reads those entries and the expiry
    entries (a few per pack, never a usage entry); one the packs; one the credits."""
    received: dict[int, Decimal] = {}
    expired = ZERO
    entries = (
        LedgerEntry.objects.filter(team=team, pack__isnull=False, kind__in=(*RECEIVED_KINDS, *EXPIRY_KINDS))
        .order_by("at", "pk")
        .values_list("pack_id", "kind", "amount")
    )
    for pack_id, kind, amount in entries:
        if kind in EXPIRY_KINDS:
            expired -= amount
        else:
            received[pack_id] = amount  # the last one wins: what the team holds the pack on now
    packs = []
    for pack in TokenPack.objects.filter(team=team).order_by(*PAY_ORDER):
        status = pack_status(
            expires_at=pack.expires_at, closed=pack.expired_at is not None, remaining=pack.remaining, at=now
        )
        packs.append(
            {
                "reference": pack.reference,
                "tokens": pack.tokens,
                "remaining": _money(pack.remaining),
                "purchased_at": pack.purchased_at,
                "expires_at": pack.expires_at,
                "status": status,
                "used": received.get(pack.pk, pack.tokens) - pack.remaining,
            }
        )
    credits = [
        {
            "remaining": c.remaining,
            "granted_at": c.granted_at,
            "expires_at": c.expires_at,
            "closed": c.expired_at is not None,
        }
        for c in CloudCreditBalance.objects.filter(team=team)
    ]
    return _balance_dict(team=team, packs=packs, expired=expired, credits=credits, at=now)


def _past_balance(*, team: Team, at: datetime) -> dict:
    upto = Q(entries__at__lte=at)
    mine = upto & Q(entries__team=team)
    # +1 for every time the pack came to the team (bought or moved in), -1 for every time it
    # left: the team held the pack at ``at`` when its entries up to then add up to 1.
    held = Sum(
        Case(
            When(mine & Q(entries__kind__in=[EntryKind.PURCHASE, EntryKind.MOVE_IN]), then=Value(1)),
            When(mine & Q(entries__kind=EntryKind.MOVE_OUT), then=Value(-1)),
            default=Value(0),
            output_field=IntegerField(),
        )
    )
    rows = (
        TokenPack.objects.filter(
            pk__in=LedgerEntry.objects.filter(team=team, pack__isnull=False, at__lte=at).values("pack_id"),
            purchased_at__lte=at,
        )
        .annotate(
            held=held,
            balance=_sum("entries__amount", upto),
            spent=_sum("entries__amount", mine & Q(entries__kind__in=SPENT_KINDS)),
        )
        .filter(held__gt=0)
        .order_by(*PAY_ORDER)
    )
    packs = [
        {
            "reference": pack.reference,
            "tokens": pack.tokens,
            "remaining": _money(pack.balance),
            "purchased_at": pack.purchased_at,
            "expires_at": pack.expires_at,
            # The expiry job closes a pack after ``expires_at``, so ``expires_at`` decides.
            "status": pack_status(expires_at=pack.expires_at, closed=False, remaining=pack.balance, at=at),
            "used": -pack.spent,
        }
        for pack in rows
    ]
    expired = -LedgerEntry.objects.filter(team=team, pack__isnull=False, kind__in=EXPIRY_KINDS, at__lte=at).aggregate(
        total=_sum("amount")
    )["total"]
    credits = [
        {
            "remaining": c.balance,
            "granted_at": c.granted_at,
            "expires_at": c.expires_at,
            "closed": False,
        }
        for c in CloudCreditBalance.objects.filter(team=team, granted_at__lte=at).annotate(
            balance=_sum("entries__amount", upto)
        )
    ]
    return _balance_dict(team=team, packs=packs, expired=expired, credits=credits, at=at)


# --- Ledger check ---------------------------------------------------------------------------------


@dataclass
class LedgerCheck:
    """The outcome of ``ledger_check``: what was looked at, and every violation found."""

    packs: int = 0
    credit_balances: int = 0
    entries: int = 0
    events: int = 0
    teams: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def ledger_violations(*, now: datetime | None = None) -> list[str]:
    """Every broken ledger invariant, one readable line each (empty when all is well)."""
    return ledger_check(now=now).violations


def ledger_check(*, now: datetime | None = None) -> LedgerCheck:
    """Check the ledger invariants of domain.md ("a ledger check anyone can run").

    - each pack's and credit balance's ``remaining`` equals the sum of its entries, and is
      not negative;
    - a pack (or credit balance) the expiry job closed holds nothing; one past its expiry
      by more than ``EXPIRY_GRACE`` has been closed;
    - every charged usage event is backed by usage entries that add up to its tokens and
      cloud credits (and refund entries that add up to its refund, when refunded); an event
      that was not charged has entries that cancel out (re-priced) or none;
    - the report rollups add up, per team, to the raw ledger: tokens on packs and credits on
      credit balances, usage minus refunds;
    - each rollup sized to a question (``billing.rollups.SIZED_ROLLUPS``) holds, group by
      group, the sums of the daily rollup (read a team at a time: memory grows with one
      team's groups, not with the number of teams).

    Fourteen aggregate queries, whatever the size of the ledger (tests/billing/test_commands.py).
    """
    now = now or timezone.now()
    result = LedgerCheck()
    _check_accounts(result, now=now)
    _check_events(result)
    _check_rollups(result)
    _check_sized_rollups(result)
    result.entries = LedgerEntry.objects.count()
    return result


def _check_accounts(result: LedgerCheck, *, now: datetime) -> None:
    late = now - EXPIRY_GRACE
    for label, model in (("Pack", TokenPack), ("Cloud credit balance", CloudCreditBalance)):
        name_field = "reference" if model is TokenPack else "id"
        rows = model.objects.annotate(entry_sum=_sum("entries__amount"), entry_count=Count("entries")).values(
            "id", name_field, "team__slug", "remaining", "expires_at", "expired_at", "entry_sum", "entry_count"
        )
        count = 0
        for row in rows.order_by("id"):
            count += 1
            name = f"{label} {row[name_field]}" if model is TokenPack else f"{label} #{row['id']}"
            name = f"{name} (team {row['team__slug']})"
            remaining, entry_sum = _money(row["remaining"]), _money(row["entry_sum"])
            if remaining != entry_sum:
                result.violations.append(
                    f"{name}: remaining is {remaining} but its {row['entry_count']} ledger entries sum to {entry_sum}."
                )
            if remaining < 0:
                result.violations.append(f"{name}: remaining is negative ({remaining}).")
            if row["expired_at"] is not None and remaining != 0:
                result.violations.append(
                    f"{name}: closed as expired at {row['expired_at'].isoformat()} but still holds {remaining}."
                )
            if row["expired_at"] is None and row["expires_at"] <= late:
                result.violations.append(
                    f"{name}: expired at {row['expires_at'].isoformat()} but the expiry job has not closed it"
                    f" (it still holds {remaining})."
                )
        if model is TokenPack:
            result.packs = count
        else:
            result.credit_balances = count


def _check_events(result: LedgerCheck) -> None:
    # Net usage: usage entries less what re-pricing gave back (a superseded charge's draws).
    usage, refund = Q(entries__kind__in=[EntryKind.USAGE, EntryKind.REPRICE]), Q(entries__kind=EntryKind.REFUND)
    on_pack, on_credits = Q(entries__pack__isnull=False), Q(entries__credit_balance__isnull=False)
    rows = (
        UsageEvent.objects.annotate(
            n_entries=Count("entries"),
            token_usage=_sum("entries__amount", usage & on_pack),
            credit_usage=_sum("entries__amount", usage & on_credits),
            token_refund=_sum("entries__amount", refund & on_pack),
            credit_refund=_sum("entries__amount", refund & on_credits),
        )
        .filter(Q(status=EventStatus.CHARGED) | Q(n_entries__gt=0))
        .values(
            "id",
            "event_id",
            "team__slug",
            "status",
            "tokens",
            "cloud_credits",
            "refund",
            "n_entries",
            "token_usage",
            "credit_usage",
            "token_refund",
            "credit_refund",
        )
        .order_by("id")
    )
    for row in rows:
        result.events += 1
        name = f"Usage event {row['event_id']} (team {row['team__slug']})"
        tokens, credits = _money(row["tokens"]), _money(row["cloud_credits"])
        token_usage, credit_usage = -_money(row["token_usage"]), -_money(row["credit_usage"])
        if row["status"] != EventStatus.CHARGED:
            # Re-priced to no charge (or a denial): its entries must cancel out.
            if token_usage or credit_usage or row["token_refund"] or row["credit_refund"]:
                result.violations.append(
                    f"{name}: status is {row['status']} but its {row['n_entries']} ledger entries take"
                    f" {token_usage} tokens and {credit_usage} cloud credits."
                )
            continue
        if (token_usage, credit_usage) != (tokens, credits):
            result.violations.append(
                f"{name}: charged {tokens} tokens and {credits} cloud credits, but its usage entries take"
                f" {token_usage} tokens and {credit_usage} cloud credits."
            )
        refund = row["refund"] or {}
        refunded_tokens = _money(Decimal(refund.get("refunded_tokens", "0")))
        refunded_credits = _money(Decimal(refund.get("refunded_cloud_credits", "0")))
        token_refund, credit_refund = _money(row["token_refund"]), _money(row["credit_refund"])
        if (token_refund, credit_refund) != (refunded_tokens, refunded_credits):
            result.violations.append(
                f"{name}: refunded {refunded_tokens} tokens and {refunded_credits} cloud credits, but its refund"
                f" entries give back {token_refund} tokens and {credit_refund} cloud credits."
            )


def _check_rollups(result: LedgerCheck) -> None:
    totals: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    slugs: dict[int, str] = {}
    for row in UsageRollup.objects.values("team_id", "team__slug").annotate(
        tokens=_sum("tokens"), credits=_sum("cloud_credits")
    ):
        slugs[row["team_id"]] = row["team__slug"]
        totals[row["team_id"]]["rollup_tokens"] = _money(row["tokens"])
        totals[row["team_id"]]["rollup_credits"] = _money(row["credits"])
    for row in (
        LedgerEntry.objects.filter(kind__in=SPENT_KINDS)
        .values("team_id", "team__slug")
        .annotate(
            tokens=_sum("amount", Q(pack__isnull=False)),
            credits=_sum("amount", Q(credit_balance__isnull=False)),
        )
    ):
        slugs[row["team_id"]] = row["team__slug"]
        totals[row["team_id"]]["ledger_tokens"] = -_money(row["tokens"])
        totals[row["team_id"]]["ledger_credits"] = -_money(row["credits"])
    result.teams = len(totals)
    for team_id in sorted(totals, key=lambda t: slugs[t]):
        t = totals[team_id]
        for unit, key in (("tokens", "tokens"), ("cloud credits", "credits")):
            rollup, ledger = t[f"rollup_{key}"], t[f"ledger_{key}"]
            if rollup != ledger:
                result.violations.append(
                    f"Team {slugs[team_id]}: usage rollups total {rollup} {unit}, but the ledger's usage minus"
                    f" refunds is {ledger} {unit}."
                )


SHOWN_PER_ROLLUP = 20  # differences listed per sized rollup; the rest are counted


def sized_rollup_violations() -> list[str]:
    """How the rollups sized to a question differ from the daily rollup's sums (empty: they
    don't); part of ``ledger_check``. Eight queries."""
    result = LedgerCheck()
    _check_sized_rollups(result)
    return result.violations


def _check_sized_rollups(result: LedgerCheck) -> None:
    teams: dict[int, list[str]] = defaultdict(list)
    for sized in SIZED_ROLLUPS:
        wrong = 0
        streams = (sized.expected(), sized.stored())
        for team_id, expected, stored in _by_team(*streams, key=sized.key):
            for key in expected.keys() | stored.keys():
                line = _difference(sized, key, expected.get(key, {}), stored.get(key, {}))
                if line is not None:
                    wrong += 1
                    if wrong <= SHOWN_PER_ROLLUP:
                        teams[team_id].append(line)
        if wrong > SHOWN_PER_ROLLUP:
            teams[0].append(f"{wrong - SHOWN_PER_ROLLUP} more groups of the rollup per {sized.label} differ.")
    slugs = dict(Team.objects.filter(pk__in=teams).values_list("pk", "slug")) if teams else {}
    for team_id, lines in teams.items():
        result.violations += [f"Team {slugs[team_id]}: {line}" if team_id else line for line in lines]


def _difference(sized: SizedRollup, key: tuple, expected: dict, stored: dict) -> str | None:
    """How one group of a sized rollup differs from the daily rollup's sums (None: it doesn't).
    A missing group holds zeros."""
    wrong = [(c, stored.get(c, 0), expected.get(c, 0)) for c in sized.sums if stored.get(c, 0) != expected.get(c, 0)]
    if not wrong:
        return None
    group = ", ".join(str(part) for part in key)
    found = ", ".join(f"{column} {have}" for column, have, _ in wrong)
    wanted = ", ".join(f"{column} {want}" for column, _, want in wrong)
    return f"the rollup per {sized.label} ({group}) holds {found}, but the daily rollup sums to {wanted}."


def _by_team(
    expected: Iterator[dict], stored: Iterator[dict], *, key: tuple[str, ...]
) -> Iterator[tuple[int, dict, dict]]:
    """Two streams of rollup groups ordered by team, a team at a time: (team, its expected
    groups by key, its stored groups by key)."""
    streams = [itertools.groupby(rows, key=lambda row: row["team_id"]) for rows in (expected, stored)]
    heads = [next(stream, None) for stream in streams]
    while any(heads):
        team_id = min(head[0] for head in heads if head)
        groups = []
        for i, head in enumerate(heads):
            if head and head[0] == team_id:
                groups.append({tuple(row[name] for name in key): row for row in head[1]})
                heads[i] = next(streams[i], None)
            else:
                groups.append({})
        yield team_id, groups[0], groups[1]


# --- API reads ------------------------------------------------------------------------------------


def team_packs(*, team: Team) -> QuerySet[TokenPack]:
    """The team's packs, in the order they pay (earliest expiry, smallest, oldest)."""
    return TokenPack.objects.filter(team=team).select_related("team").order_by(*PAY_ORDER)


def usage_event_exists(*, team: Team, event_id: str) -> bool:
    return UsageEvent.objects.filter(team=team, event_id=event_id).exists()


def ledger_entries(*, team: Team) -> QuerySet[LedgerEntry]:
    """The team's ledger, oldest first, with what each entry names (pack, event) joined in."""
    return (
        LedgerEntry.objects.filter(team=team)
        .select_related("pack", "event")
        .only(
            "id",
            "at",
            "kind",
            "amount",
            "note",
            "created_at",
            "pack__reference",
            "credit_balance_id",
            "event__event_id",
        )
        .order_by("at", "id")
    )


def rates_in_force(*, at: datetime | None = None) -> list[Rate]:
    """The rate sheet at a moment (now by default): per code, the row with the latest
    ``effective_from`` not after it, with its variants. Two queries."""
    at = at or timezone.now()
    current: dict[str, Rate] = {}
    for rate in Rate.objects.filter(effective_from__lte=at).order_by("code", "-effective_from"):
        current.setdefault(rate.code, rate)
    rates = list(current.values())
    prefetch_related_objects(rates, "variants")
    return rates


# --- The Flex tokens page (Billing & Orders) ------------------------------------------------------

# How far back the run-out forecast looks, and how many days of that window must have usage
# before a forecast is made: a burn rate from two busy days says little about the months ahead.
FORECAST_WINDOW_DAYS = 30
FORECAST_MIN_USAGE_DAYS = 7
# The token events the page lists: how tokens came and went, not each launch (usage is in
# the reports). domain.md "Reports: Balances": token events of the last 90 days.
TOKEN_EVENT_KINDS = (
    EntryKind.PURCHASE,
    EntryKind.EXPIRY,
    EntryKind.EXPIRY_REVERSAL,
    EntryKind.MOVE_IN,
    EntryKind.MOVE_OUT,
    EntryKind.REFUND,
    EntryKind.ADJUSTMENT,
)
TOKEN_EVENT_DAYS = 90
# Packs that expire within this many days are highlighted (and announced: alerts.REMINDER_DAYS).
EXPIRING_SOON_DAYS = 90


class ForecastStatus(StrEnum):
    OK = "ok"
    NO_TOKENS = "no_tokens"  # nothing left to run out of
    TOO_LITTLE_USAGE = "too_little_usage"  # fewer than FORECAST_MIN_USAGE_DAYS days with usage
    NO_BURN = "no_burn"  # refunds cancel the window's usage out


@dataclass(frozen=True)
class UnusedExpiry:
    """Tokens of one pack that the forecast burn does not reach before the pack expires."""

    reference: str
    expires_at: datetime
    tokens: Decimal


@dataclass
class RunOutForecast:
    """When the balance reaches zero at the recent burn rate (domain.md "What no peer does").

    ``burn_per_day`` is the net usage (usage minus refunds, tokens only) of the window
    divided by its ``FORECAST_WINDOW_DAYS`` days. The simulation spends it from the active
    packs in the order they pay (``PAY_ORDER``: earliest expiry, smallest, oldest), pack by
    pack: a pack that the burn does not empty before its expiry loses the rest to expiry
    (``expiring_unused``) and the burn moves on to the next pack. ``runs_out_at`` is when
    the last active pack is empty or expired; ``ends_by_expiry`` says which.
    """

    status: ForecastStatus
    now: datetime
    window_start: datetime
    days_with_usage: int
    net_used: Decimal
    burn_per_day: Decimal  # two places, for showing; the simulation uses the exact quotient
    available: Decimal
    runs_out_at: datetime | None = None
    ends_by_expiry: bool = False
    expiring_unused: list[UnusedExpiry] = field(default_factory=list)

    window_days: int = FORECAST_WINDOW_DAYS
    min_usage_days: int = FORECAST_MIN_USAGE_DAYS

    @property
    def ok(self) -> bool:
        return self.status == ForecastStatus.OK

    @property
    def total_unused(self) -> Decimal:
        return _money(sum((u.tokens for u in self.expiring_unused), ZERO))


def _days(delta: timedelta) -> Decimal:
    """A duration in days, exactly (no float)."""
    return (Decimal(delta.days * 86_400 + delta.seconds) + Decimal(delta.microseconds) / 1_000_000) / 86_400


def _duration(days: Decimal) -> timedelta:
    return timedelta(microseconds=int((days * 86_400_000_000).to_integral_value()))


def run_out_forecast(*, team: Team, now: datetime | None = None) -> RunOutForecast:
    """The run-out forecast of the Flex tokens page. Two queries, whatever the size of the
    ledger: the window's net usage per day (in the team's time zone), and the active packs."""
    now = now or timezone.now()
    window_start = now - timedelta(days=FORECAST_WINDOW_DAYS)
    per_day = (
        LedgerEntry.objects.filter(
            team=team, pack__isnull=False, kind__in=SPENT_KINDS, at__gt=window_start, at__lte=now
        )
        .annotate(day=TruncDate("at", tzinfo=team.tz))
        .values("day")
        .annotate(
            spent=_sum("amount"),
            launches=Count("id", filter=Q(kind=EntryKind.USAGE)),
        )
        .order_by("day")
    )
    days_with_usage, net_used = 0, ZERO
    for row in per_day:
        net_used -= row["spent"]  # usage entries are negative, refunds positive
        days_with_usage += row["launches"] > 0
    net_used = _money(net_used)
    burn = net_used / FORECAST_WINDOW_DAYS
    packs = sorted(
        TokenPack.objects.filter(
            team=team, expired_at__isnull=True, purchased_at__lte=now, expires_at__gt=now, remaining__gt=0
        ).only("id", "reference", "tokens", "remaining", "purchased_at", "expires_at"),
        key=pay_order_key,
    )
    forecast = RunOutForecast(
        status=ForecastStatus.OK,
        now=now,
        window_start=window_start,
        days_with_usage=days_with_usage,
        net_used=net_used,
        burn_per_day=_money(burn),
        available=_money(sum((p.remaining for p in packs), ZERO)),
    )
    if not packs:
        forecast.status = ForecastStatus.NO_TOKENS
    elif days_with_usage < FORECAST_MIN_USAGE_DAYS:
        forecast.status = ForecastStatus.TOO_LITTLE_USAGE
    elif burn <= 0:
        forecast.status = ForecastStatus.NO_BURN
    if not forecast.ok:
        return forecast
    # Spend the burn pack by pack in pay order. Sorted by expiry, so the clock never passes
    # the expiry of a pack before the burn reaches it.
    clock = now
    for pack in packs:
        empty_in = pack.remaining / burn  # days
        if empty_in <= _days(pack.expires_at - clock):
            clock += _duration(empty_in)
            forecast.ends_by_expiry = False
            continue
        left = _money(pack.remaining - burn * _days(pack.expires_at - clock))
        if left > 0:
            forecast.expiring_unused.append(UnusedExpiry(pack.reference, pack.expires_at, left))
        clock = pack.expires_at
        forecast.ends_by_expiry = True
    forecast.runs_out_at = clock
    return forecast


def token_events(*, team: Team, now: datetime | None = None, days: int = TOKEN_EVENT_DAYS) -> QuerySet[LedgerEntry]:
    """The team's token events of the last ``days`` days, newest first: purchases, expiries,
    moves, refunds and adjustments on its packs (``TOKEN_EVENT_KINDS``), not each usage."""
    now = now or timezone.now()
    return (
        LedgerEntry.objects.filter(
            team=team,
            pack__isnull=False,
            kind__in=TOKEN_EVENT_KINDS,
            at__gt=now - timedelta(days=days),
            at__lte=now,
        )
        .select_related("pack", "event", "actor")
        .order_by("-at", "-id")
    )


def pack_list(*, team: Team, now: datetime | None = None) -> QuerySet[TokenPack]:
    """The team's packs in pay order, each with its ``state`` (``pack_status`` at ``now``)
    annotated, so that the page can filter and sort by it in the database."""
    now = now or timezone.now()
    return (
        TokenPack.objects.filter(team=team)
        .annotate(state=pack_status_expression(at=now))
        .only("id", "reference", "tokens", "remaining", "purchased_at", "expires_at", "expired_at")
        .order_by(*PAY_ORDER)
    )


@dataclass(frozen=True)
class NextExpiry:
    tokens: Decimal
    expires_at: datetime
    reference: str
    packs: int


def next_expiry(*, balance: dict) -> NextExpiry | None:
    """The next tokens to expire, from a ``team_balance``: what the active pack (or packs)
    with the earliest expiry still hold. No query."""
    active = [p for p in balance["packs"] if p["status"] == PackStatus.ACTIVE]
    if not active:
        return None
    first = min(p["expires_at"] for p in active)
    same = [p for p in active if p["expires_at"] == first]
    return NextExpiry(
        tokens=_money(sum((p["remaining"] for p in same), ZERO)),
        expires_at=first,
        reference=same[0]["reference"],
        packs=len(same),
    )


# --- My usage ------------------------------------------------------------------------------------


@dataclass
class ProductUsage:
    code: str
    name: str
    this_month: Decimal
    last_12_months: Decimal


@dataclass
class MyUsage:
    """A member's own spending in one team, from the usage rollup (days in the team's time zone)."""

    today: date
    month_start: date
    year_start: date  # the first day of the 12 months shown (this month and the 11 before)
    products: list[ProductUsage]
    months: list[tuple[date, Decimal]]  # every one of the 12 months, oldest first, zero when unused
    assignment: FlexAssignment | None
    assigned_products: list[str]  # names, when the assignment is a list

    @property
    def this_month(self) -> Decimal:
        return _money(sum((p.this_month for p in self.products), ZERO))

    @property
    def last_12_months(self) -> Decimal:
        return _money(sum((p.last_12_months for p in self.products), ZERO))


def _month_back(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def product_names(*, codes: set[str], at: datetime | None = None) -> dict[str, str]:
    """Each product code's name on the rate sheet (the row in force at ``at``, else the first
    row); a code the rate sheet does not know is its own name. One query."""
    at = at or timezone.now()
    in_force: dict[str, str] = {}
    any_row: dict[str, str] = {}
    rows = Rate.objects.filter(code__in=codes).order_by("code", "-effective_from")
    for code, name, effective_from in rows.values_list("code", "name", "effective_from"):
        any_row[code] = name
        if effective_from <= at:
            in_force.setdefault(code, name)  # the latest row not after ``at``
    return {code: in_force.get(code) or any_row.get(code, code) for code in codes}


def current_flex_assignment(*, team: Team, user) -> FlexAssignment | None:
    """The user's Flex assignment in force in the team, if any."""
    return FlexAssignment.objects.filter(team=team, user_id=user.pk, removed_at__isnull=True).first()


def my_usage(*, team: Team, user, now: datetime | None = None) -> MyUsage:
    """What ``user`` spent in ``team``: per product this month and over the last 12 months
    (this month and the 11 before it), and per month; and their Flex assignment. Reads the
    usage rollup (never raw events): four queries, whatever the size of the history."""
    now = now or timezone.now()
    today = timezone.localtime(now, team.tz).date()
    month_start = today.replace(day=1)
    year_start = _month_back(month_start, 11)
    assignment = current_flex_assignment(team=team, user=user)
    mine = UsageRollup.objects.filter(team=team, user_id=user.pk, day__gte=year_start, day__lte=today)
    by_product = list(
        mine.values("product")
        .annotate(month=_sum("tokens", Q(day__gte=month_start)), year=_sum("tokens"))
        .filter(year__gt=0)
        .order_by()
    )
    by_month = {
        row["month"]: _money(row["tokens"])
        for row in mine.annotate(month=TruncMonth("day")).values("month").annotate(tokens=_sum("tokens")).order_by()
    }
    assigned_codes = [] if assignment is None or assignment.all_products else list(assignment.products)
    names = product_names(codes={row["product"] for row in by_product} | set(assigned_codes), at=now)
    products = sorted(
        (
            ProductUsage(
                code=row["product"],
                name=names[row["product"]],
                this_month=_money(row["month"]),
                last_12_months=_money(row["year"]),
            )
            for row in by_product
        ),
        key=lambda p: (-p.last_12_months, p.name),
    )
    months = []
    for back in range(11, -1, -1):
        month = _month_back(month_start, back)
        months.append((month, by_month.get(month, ZERO)))
    return MyUsage(
        today=today,
        month_start=month_start,
        year_start=year_start,
        products=products,
        months=months,
        assignment=assignment,
        assigned_products=sorted(names[c] for c in assigned_codes),
    )
