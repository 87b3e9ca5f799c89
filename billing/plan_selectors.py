"""Reads for the purchase planner (``billing.planner``): a team's burn and active packs.

Two queries, whatever the number of packs or rollup rows. Apart from
``billing/selectors.py`` by topic, like ``billing/flex_selectors.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from django.conf import settings
from django.db.models import Count, DecimalField, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Team
from billing.models import PAY_ORDER, TokenPack, UsageRollup
from billing.planner import Lot, PurchasePlan, plan_purchases
from core.money import CENT, ZERO

BURN_WINDOW_DAYS = 90


@dataclass(frozen=True)
class PlanInputs:
    """What ``billing.planner.plan_purchases`` needs, read for one team at one moment."""

    today: date  # the team's day
    contract_start: date
    contract_end: date
    lots: list[Lot]
    daily_burn: Decimal
    burn_days: int  # the completed days the burn is the average of
    days_with_usage: int
    term_months: int

    def plan(self, **options) -> PurchasePlan:
        """The plan; ``options`` are the planner's own (``min_pack``, ``step``, ``lead_days``)."""
        return plan_purchases(
            today=self.today,
            contract_start=self.contract_start,
            contract_end=self.contract_end,
            lots=self.lots,
            daily_burn=self.daily_burn,
            burn_days=self.burn_days,
            days_with_usage=self.days_with_usage,
            term_months=self.term_months,
            **options,
        )


def plan_inputs(*, team: Team, now: datetime | None = None) -> PlanInputs:
    """The team's planner inputs at ``now``.

    - The burn: the tokens of the usage rollup (usage minus refunds, on the team's days) over
      the last ``BURN_WINDOW_DAYS`` completed days, divided by their number, rounded up to
      the cent. Today is left out (it is not over). A contract that began within the window
      shortens it to the contract's days, so a new customer's burn is not diluted by days
      before it could spend. Only tokens count: usage paid with cloud credits spent none.
    - The lots: the packs valid at ``now`` (bought, unexpired, not closed) holding tokens,
      in pay order, each with the team's day of its expiry.
    """
    now = now or timezone.now()
    tz = team.tz
    today = timezone.localtime(now, tz).date()
    window_start = max(today - timedelta(days=BURN_WINDOW_DAYS), team.contract_start)
    burn_days = max((today - window_start).days, 0)
    usage = UsageRollup.objects.filter(team=team, day__gte=window_start, day__lt=today).aggregate(
        spent=Coalesce(Sum("tokens"), Value(ZERO), output_field=DecimalField(max_digits=14, decimal_places=2)),
        used_days=Count("day", distinct=True, filter=Q(tokens__gt=0)),
    )
    burn = (usage["spent"] / burn_days).quantize(CENT, rounding=ROUND_CEILING) if burn_days else ZERO
    packs = (
        TokenPack.objects.filter(
            team=team, expired_at__isnull=True, purchased_at__lte=now, expires_at__gt=now, remaining__gt=0
        )
        .order_by(*PAY_ORDER)
        .values_list("reference", "remaining", "expires_at")
    )
    lots = [
        Lot(remaining=remaining, expires_on=timezone.localtime(expires_at, tz).date(), reference=reference)
        for reference, remaining, expires_at in packs
    ]
    return PlanInputs(
        today=today,
        contract_start=team.contract_start,
        contract_end=team.contract_end,
        lots=lots,
        daily_burn=burn,
        burn_days=burn_days,
        days_with_usage=usage["used_days"],
        term_months=settings.FLEX_PACK_TERM_MONTHS,
    )
