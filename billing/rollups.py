"""The daily usage rollup (``UsageRollup``), billing's to write: reports only read it.

Every charge and refund adds its change here, in the same transaction as its ledger
entries, so rollup totals always equal the ledger's (``selectors.ledger_violations``
checks it). The same write keeps the rollups sized to a question (per day and product,
per day, per month, product and person, per month and person: ``billing.models``), so a
year's report reads thousands of rows, not a row per day, product and person. One read and
one upsert per batch, whatever the number of events.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import Aggregate, Count, Q, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from accounts.models import Team
from billing.models import (
    DayRollup,
    EventStatus,
    ProductDayRollup,
    ProductUserMonthRollup,
    UsageRollup,
    UserMonthRollup,
)
from core.bulk import Upsert, upsert_rows
from core.money import ZERO


class RollupDelta:
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
        """Write the batch's changes into the daily rollup and the rollups sized to a
        question (``ProductDayRollup``, ``DayRollup``, ``ProductUserMonthRollup``,
        ``UserMonthRollup``): one read and, on PostgreSQL, one statement, whatever the
        number of events (``core.bulk.upsert_rows``)."""
        if not self.groups:
            return
        before = self._charged_before()
        # Who was charged on a day (for a product, and for any product) before and after.
        after = dict(before)
        for key, group in self.groups.items():
            after[key] = before.get(key, 0) + group[2]
        used_before = {(day, user) for (day, _, user), charges in before.items() if charges > 0}
        used_after = {(day, user) for (day, _, user), charges in after.items() if charges > 0}
        # A group with usage but nothing charged or refused (a relaunch in an open window)
        # still has its row, as in the daily rollup: the person used the product.
        daily, product_day, product_month = [], _Sums(5, keep_zero=True), _Sums(5, keep_zero=True)
        day_users, month_days = _Sums(1), _Sums(1)
        for key, (tokens, credits, charges, denials) in self.groups.items():
            day, product, user = key
            daily.append((self.team.pk, day, product, user, tokens, credits, charges, denials, now))
            used = (after[key] > 0) - (before.get(key, 0) > 0)
            product_day.add((day, product), tokens, credits, charges, denials, used)
            product_month.add((day.replace(day=1), product, user), tokens, credits, charges, denials, used)
        for day, user in {(day, user) for day, _, user in self.groups}:
            used = ((day, user) in used_after) - ((day, user) in used_before)
            day_users.add((day,), used)
            month_days.add((day.replace(day=1), user), used)
        amounts = ("tokens", "cloud_credits", "charges", "denials")
        team = ("team_id",)
        upsert_rows(
            Upsert(UsageRollup, (*team, "day", "product", "user_id"), amounts, daily, replace=("updated_at",)),
            Upsert(ProductDayRollup, (*team, "day", "product"), (*amounts, "users"), product_day.rows(self.team)),
            Upsert(DayRollup, (*team, "day"), ("users",), day_users.rows(self.team)),
            Upsert(
                ProductUserMonthRollup,
                (*team, "month", "product", "user_id"),
                (*amounts, "days"),
                product_month.rows(self.team),
            ),
            Upsert(UserMonthRollup, (*team, "month", "user_id"), ("days",), month_days.rows(self.team)),
        )

    def _charged_before(self) -> dict[tuple, int]:
        """The charges of every daily rollup row of the people and days the batch touches,
        whatever the product (the batch's own products included)."""
        keys = self.groups.keys()
        return {
            (day, product, user): charges
            for day, product, user, charges in UsageRollup.objects.filter(
                team=self.team, day__in={k[0] for k in keys}, user_id__in={k[2] for k in keys}
            )
            .order_by()
            .values_list("day", "product", "user_id", "charges")
        }


class _Sums:
    """Changes summed per key; keys whose changes are all zero write nothing unless kept."""

    def __init__(self, width: int, *, keep_zero: bool = False) -> None:
        self.sums: dict[tuple, list] = defaultdict(lambda: [0] * width)
        self.keep_zero = keep_zero

    def add(self, key: tuple, *values) -> None:
        sums = self.sums[key]
        for i, value in enumerate(values):
            sums[i] += value

    def rows(self, team: Team) -> list[tuple]:
        return [(team.pk, *key, *values) for key, values in self.sums.items() if self.keep_zero or any(values)]


@dataclass(frozen=True)
class SizedRollup:
    """A rollup sized to a question, as the daily rollup's sums: what ``RollupDelta.save``
    keeps and what the ledger check (``billing.selectors``) compares it with, group by group."""

    model: type[models.Model]
    label: str
    key: tuple[str, ...]  # besides the team
    sums: dict[str, Aggregate]

    def expected(self) -> Iterator[dict]:
        """Per team and key, the sums of the daily rollup, ordered by team."""
        rows = UsageRollup.objects.order_by()
        if "month" in self.key:
            rows = rows.annotate(month=TruncMonth("day"))
        # Summed under other names: an aggregate may not take the name of the column it sums.
        sums = {f"sum_{name}": aggregate for name, aggregate in self.sums.items()}
        for row in rows.values("team_id", *self.key).annotate(**sums).order_by("team_id").iterator():
            yield {name.removeprefix("sum_"): value for name, value in row.items()}

    def stored(self) -> Iterator[dict]:
        """Per team and key, what the rollup holds, ordered by team."""
        return self.model.objects.values("team_id", *self.key, *self.sums).order_by("team_id").iterator()


_USED = Q(charges__gt=0)
_AMOUNTS = {
    "tokens": Sum("tokens"),
    "cloud_credits": Sum("cloud_credits"),
    "charges": Sum("charges"),
    "denials": Sum("denials"),
}
SIZED_ROLLUPS = (
    SizedRollup(
        ProductDayRollup, "day and product", ("day", "product"), {**_AMOUNTS, "users": Count("id", filter=_USED)}
    ),
    SizedRollup(DayRollup, "day", ("day",), {"users": Count("user_id", distinct=True, filter=_USED)}),
    SizedRollup(
        ProductUserMonthRollup,
        "month, product and person",
        ("month", "product", "user_id"),
        {**_AMOUNTS, "days": Count("id", filter=_USED)},
    ),
    SizedRollup(
        UserMonthRollup, "month and person", ("month", "user_id"), {"days": Count("day", distinct=True, filter=_USED)}
    ),
)
