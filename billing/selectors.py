"""Reads of the billing data: balances and the ledger check.

Everything here is computed with a fixed number of aggregate queries, whatever the number
of packs, entries or events (no per-row queries).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

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
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Team
from billing.models import (
    PAY_ORDER,
    CloudCreditBalance,
    EntryKind,
    EventStatus,
    LedgerEntry,
    Rate,
    TokenPack,
    UsageEvent,
    UsageRollup,
    pack_status,
)
from core.money import ZERO
from core.money import to_cents as _money

SPENT_KINDS = (EntryKind.USAGE, EntryKind.REFUND)
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
    mine = Q(entries__team=team)
    rows = (
        TokenPack.objects.filter(team=team)
        .annotate(
            spent=_sum("entries__amount", mine & Q(entries__kind__in=SPENT_KINDS)),
        )
        .order_by(*PAY_ORDER)
    )
    packs = []
    for pack in rows:
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
                "used": -pack.spent,
            }
        )
    expired = -LedgerEntry.objects.filter(team=team, pack__isnull=False, kind=EntryKind.EXPIRY).aggregate(
        total=_sum("amount")
    )["total"]
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
    expired = -LedgerEntry.objects.filter(team=team, pack__isnull=False, kind=EntryKind.EXPIRY, at__lte=at).aggregate(
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
      that was not charged has no entries;
    - the report rollups add up, per team, to the raw ledger: tokens on packs and credits on
      credit balances, usage minus refunds.

    Six aggregate queries, whatever the size of the ledger (tests/billing/test_query_bounds.py).
    """
    now = now or timezone.now()
    result = LedgerCheck()
    _check_accounts(result, now=now)
    _check_events(result)
    _check_rollups(result)
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
    usage, refund = Q(entries__kind=EntryKind.USAGE), Q(entries__kind=EntryKind.REFUND)
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
        if row["status"] != EventStatus.CHARGED:
            result.violations.append(f"{name}: status is {row['status']} but it has {row['n_entries']} ledger entries.")
            continue
        tokens, credits = _money(row["tokens"]), _money(row["cloud_credits"])
        token_usage, credit_usage = -_money(row["token_usage"]), -_money(row["credit_usage"])
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
