"""Reads for the sales rep's pages: Customers (balances of many teams at once), a customer's
purchases, Orders, and what a pack may move to. Apart from ``billing/selectors.py`` by topic.

Never anything per user: a rep sees balances, packs and orders, not who spent the tokens
(domain.md "People"). Every read is a fixed number of queries, whatever the number of teams,
packs or entries (``tests/billing/test_rep_page_queries.py``).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import DecimalField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import AlertSettings, Team, User
from billing.alerts import BalanceCheck, balance_check
from billing.models import EntryKind, LedgerEntry, TokenPack
from billing.selectors import EXPIRING_SOON_DAYS, SPENT_KINDS

MONEY = DecimalField(max_digits=14, decimal_places=2)


def _active(now: datetime, prefix: str = "") -> Q:
    """A pack valid now and holding tokens (domain.md "Token pack": active), as
    ``billing.selectors.team_balance`` counts it."""
    return Q(
        **{
            f"{prefix}expired_at__isnull": True,
            f"{prefix}expires_at__gt": now,
            f"{prefix}purchased_at__lte": now,
            f"{prefix}remaining__gt": 0,
        }
    )


def _total(queryset: QuerySet, field: str) -> Coalesce:
    """The sum of ``field`` over ``queryset`` (filtered on ``OuterRef("pk")``), 0 when empty."""
    summed = queryset.order_by().values("team").annotate(total=Sum(field)).values("total")
    return Coalesce(Subquery(summed, output_field=MONEY), Value(Decimal(0)), output_field=MONEY)


def customer_list(*, teams: QuerySet[Team], now: datetime | None = None) -> QuerySet[Team]:
    """The rep's customers with their balance, as the Balances page counts it, annotated so
    that the list can sort and filter in the database: ``available`` and ``purchased`` (of
    the active packs: ``purchased = available + used``), ``expiring`` (what active packs
    that expire within 90 days still hold) and ``last_purchase_at``. One query, with the
    reseller and the alert settings (the low-balance threshold) joined in."""
    now = now or timezone.now()
    packs = TokenPack.objects.filter(team=OuterRef("pk"))
    spent = LedgerEntry.objects.filter(team=OuterRef("pk"), pack__team=OuterRef("pk"), kind__in=SPENT_KINDS).filter(
        _active(now, "pack__")
    )
    last_purchase = packs.order_by("-purchased_at").values("purchased_at")[:1]
    return (
        teams.select_related("reseller", "alert_settings")
        .annotate(
            available=_total(packs.filter(_active(now)), "remaining"),
            spent=_total(spent, "amount"),  # usage minus refunds: negative
            expiring=_total(
                packs.filter(_active(now), expires_at__lte=now + timedelta(days=EXPIRING_SOON_DAYS)), "remaining"
            ),
            last_purchase_at=Subquery(last_purchase),
        )
        .order_by("name")
    )


def customer_balance_check(team: Team) -> BalanceCheck:
    """The low-balance rule (``billing.alerts.balance_check``) on a row of ``customer_list``:
    no query (the alert settings came with the row)."""
    try:
        alert_settings = team.alert_settings
    except AlertSettings.DoesNotExist:
        alert_settings = AlertSettings(team=team)  # the defaults: 20% of the active packs
    return balance_check(available=team.available, purchased=team.available - team.spent, alert_settings=alert_settings)


def low_balance_ids(*, customers: QuerySet[Team]) -> list[int]:
    """The ids of the customers (rows of ``customer_list``) whose balance is low: one query."""
    return [team.pk for team in customers if customer_balance_check(team).is_low]


def contract_ending(*, within_days: int, today: date | None = None) -> Q:
    """Contracts that end from today up to ``within_days`` days from now."""
    today = today or timezone.localdate()
    return Q(contract_end__gte=today, contract_end__lte=today + timedelta(days=within_days))


# --- Orders -------------------------------------------------------------------------------------


def order_list(*, teams: QuerySet[Team]) -> QuerySet[LedgerEntry]:
    """Every purchase recorded for the teams, newest first: the purchase entries of the
    ledger, each with its pack (and who holds it now, after a move), the team it was bought
    for and who recorded it. One query (a page of it, and a count)."""
    return (
        LedgerEntry.objects.filter(kind=EntryKind.PURCHASE, pack__isnull=False, team__in=teams)
        .select_related("team", "pack", "pack__team", "actor")
        .order_by("-at", "-id")
    )


def order_recorders(*, teams: QuerySet[Team]) -> list[User]:
    """Who recorded purchases for the teams (the Orders filter's choices). One query."""
    recorded = LedgerEntry.objects.filter(kind=EntryKind.PURCHASE, team__in=teams, actor__isnull=False)
    return list(User.objects.filter(pk__in=recorded.values("actor_id")).order_by("first_name", "last_name", "email"))


def purchased_between(*, start: date | None, end: date | None, time_zones: set[str]) -> Q:
    """Purchases on the days from ``start`` to ``end`` (either may be open), each day the
    day of the team the pack was bought for (its time zone), like the dates on the page."""
    if start is None and end is None:
        return Q()
    condition = Q()
    for name in sorted(time_zones):
        zone = ZoneInfo(name)
        part = Q(team__time_zone=name)
        if start is not None:
            part &= Q(at__gte=datetime.combine(start, time.min, zone))
        if end is not None:
            part &= Q(at__lt=datetime.combine(end + timedelta(days=1), time.min, zone))
        condition |= part
    return condition


# --- Moving a pack --------------------------------------------------------------------------------


def movable_packs(*, team: Team, now: datetime | None = None) -> QuerySet[TokenPack]:
    """The team's packs that can move: active (valid, with tokens left), in pay order."""
    now = now or timezone.now()
    return TokenPack.objects.filter(team=team).filter(_active(now)).order_by("expires_at", "tokens", "purchased_at")


def pack_by_reference(*, team: Team, reference: str) -> TokenPack | None:
    """The pack of the team's reseller with this order reference (references are unique per
    reseller), with the team that holds it."""
    return (
        TokenPack.objects.select_related("team")
        .filter(reseller_id=team.reseller_id, reference=(reference or "").strip())
        .first()
    )
