"""Reads behind the usage reports. They read the rollups only, never raw events
(style: "reports read rollups"): a fixed number of aggregate queries whatever the
number of events. Days are the team's days (the rollup's ``day``)."""

from __future__ import annotations

from datetime import date, datetime

from django.db.models import Count, DecimalField, IntegerField, Max, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from accounts.models import Team
from billing.models import Rate, UsageRollup
from core.money import ZERO

MONEY = DecimalField(max_digits=14, decimal_places=2)
# A user "used" a product on a day when something was charged; denials are counted apart.
USED = Q(charges__gt=0)


def _rollups(*, team: Team, start: date | None, end: date | None) -> QuerySet[UsageRollup]:
    rows = UsageRollup.objects.filter(team=team)
    if start is not None:
        rows = rows.filter(day__gte=start)
    if end is not None:
        rows = rows.filter(day__lte=end)
    return rows


def _totals() -> dict:
    # Named apart from the rollup's own fields: an annotation may not shadow a field.
    return {
        "sum_tokens": Coalesce(Sum("tokens", output_field=MONEY), Value(ZERO), output_field=MONEY),
        "sum_credits": Coalesce(Sum("cloud_credits", output_field=MONEY), Value(ZERO), output_field=MONEY),
        "sum_charges": Coalesce(Sum("charges"), Value(0), output_field=IntegerField()),
        "sum_denials": Coalesce(Sum("denials"), Value(0), output_field=IntegerField()),
    }


def _amounts(row: dict) -> dict:
    return {
        "tokens": row["sum_tokens"],
        "cloud_credits": row["sum_credits"],
        "charges": row["sum_charges"],
        "denials": row["sum_denials"],
    }


def product_names(codes: set[str]) -> dict[str, str]:
    """Each product's name as the latest rate row gives it."""
    names: dict[str, str] = {}
    for code, name in (
        Rate.objects.filter(code__in=codes).order_by("code", "effective_from").values_list("code", "name")
    ):
        names[code] = name
    return names


def usage_by_product(*, team: Team, start: date | None = None, end: date | None = None) -> list[dict]:
    """Per product: tokens, cloud credits, users who were charged, charges and denials;
    most tokens first. Two queries."""
    rows = list(
        _rollups(team=team, start=start, end=end)
        .values("product")
        .annotate(**_totals(), users=Count("user", filter=USED, distinct=True))
        .order_by("-sum_tokens", "product")
    )
    names = product_names({row["product"] for row in rows})
    return [
        {
            "product": row["product"],
            "name": names.get(row["product"], row["product"]),
            "users": row["users"],
            **_amounts(row),
        }
        for row in rows
    ]


def usage_by_user(*, team: Team, start: date | None = None, end: date | None = None) -> list[dict]:
    """Per user: tokens, cloud credits, products charged, charges, denials and the last day
    with a charge; most tokens first. One query. (Premium only: the caller checks.)"""
    rows = (
        _rollups(team=team, start=start, end=end)
        .values("user_id", "user__email", "user__first_name", "user__last_name")
        .annotate(
            **_totals(),
            products=Count("product", filter=USED, distinct=True),
            last_used=Max("day", filter=USED),
        )
        .order_by("-sum_tokens", "user__email")
    )
    return [
        {
            "user": row["user__email"],
            "name": f"{row['user__first_name']} {row['user__last_name']}".strip(),
            "products": row["products"],
            "last_used": row["last_used"],
            **_amounts(row),
        }
        for row in rows
    ]


def usage_by_day(*, team: Team, start: date | None = None, end: date | None = None) -> list[dict]:
    """Per day with usage (the team's days): tokens, cloud credits, users and products
    charged, charges and denials; oldest first. One query."""
    rows = (
        _rollups(team=team, start=start, end=end)
        .values("day")
        .annotate(
            **_totals(),
            users=Count("user", filter=USED, distinct=True),
            products=Count("product", filter=USED, distinct=True),
        )
        .order_by("day")
    )
    return [
        {
            "day": row["day"],
            "users": row["users"],
            "products": row["products"],
            **_amounts(row),
        }
        for row in rows
    ]


def last_processed_at(*, team: Team) -> datetime | None:
    """When usage of the team last reached its rollups (None: never). Rollups are written
    in the same transaction as each charge, so reports are current up to this moment."""
    return UsageRollup.objects.filter(team=team).aggregate(last=Max("updated_at"))["last"]
