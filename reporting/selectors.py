"""Reads behind the usage reports. They read the rollups only, never raw events
(style: "reports read rollups"): a fixed number of aggregate queries whatever the
number of events. Days are the team's days (the rollup's ``day``)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.db.models import Count, DecimalField, IntegerField, Max, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, TruncWeek

from accounts.models import Team
from billing.models import EventStatus, Rate, UsageEvent, UsageRollup
from core.money import ZERO

MONEY = DecimalField(max_digits=14, decimal_places=2)
# A user "used" a product on a day when something was charged; denials are counted apart.
USED = Q(charges__gt=0)


def _rollups(
    *, team: Team, start: date | None, end: date | None, product: str | None = None, user_id: int | None = None
) -> QuerySet[UsageRollup]:
    rows = UsageRollup.objects.filter(team=team)
    if product:
        rows = rows.filter(product=product)
    if user_id is not None:
        rows = rows.filter(user_id=user_id)
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


def usage_by_product(
    *,
    team: Team,
    start: date | None = None,
    end: date | None = None,
    product: str | None = None,
    user_id: int | None = None,
) -> list[dict]:
    """Per product: tokens, cloud credits, users who were charged, charges and denials;
    most tokens first. Two queries."""
    rows = list(
        _rollups(team=team, start=start, end=end, product=product, user_id=user_id)
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


def usage_by_user(
    *,
    team: Team,
    start: date | None = None,
    end: date | None = None,
    product: str | None = None,
    user_id: int | None = None,
) -> list[dict]:
    """Per user: tokens, cloud credits, products charged, charges, denials and the last day
    with a charge; most tokens first. One query. (Premium only: the caller checks.)"""
    rows = (
        _rollups(team=team, start=start, end=end, product=product, user_id=user_id)
        .values("user_id", "user__email", "user__first_name", "user__last_name")
        .annotate(
            **_totals(),
            products=Count("product", filter=USED, distinct=True),
            days=Count("day", filter=USED, distinct=True),
            last_used=Max("day", filter=USED),
        )
        .order_by("-sum_tokens", "user__email")
    )
    return [
        {
            "user": row["user__email"],
            "user_id": row["user_id"],
            "name": f"{row['user__first_name']} {row['user__last_name']}".strip(),
            "products": row["products"],
            "days": row["days"],
            "last_used": row["last_used"],
            **_amounts(row),
        }
        for row in rows
    ]


def usage_by_day(
    *,
    team: Team,
    start: date | None = None,
    end: date | None = None,
    product: str | None = None,
    user_id: int | None = None,
) -> list[dict]:
    """Per day with usage (the team's days): tokens, cloud credits, users and products
    charged, charges and denials; oldest first. One query."""
    rows = (
        _rollups(team=team, start=start, end=end, product=product, user_id=user_id)
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


def usage_totals(
    *,
    team: Team,
    start: date | None = None,
    end: date | None = None,
    product: str | None = None,
    user_id: int | None = None,
) -> dict:
    """The range's totals: tokens, cloud credits, charges, denials, products used and
    active users (charged at least once). One query."""
    row = _rollups(team=team, start=start, end=end, product=product, user_id=user_id).aggregate(
        **_totals(),
        products=Count("product", filter=USED, distinct=True),
        users=Count("user", filter=USED, distinct=True),
    )
    return {**_amounts(row), "products": row["products"], "users": row["users"]}


def tokens_by_day_and_product(
    *,
    team: Team,
    start: date | None = None,
    end: date | None = None,
    product: str | None = None,
    user_id: int | None = None,
) -> list[dict]:
    """Tokens (and cloud credits) per day and product, oldest day first: the stacked chart.
    One query."""
    return list(
        _rollups(team=team, start=start, end=end, product=product, user_id=user_id)
        .values("day", "product")
        .annotate(**_totals())
        .order_by("day", "product")
    )


def denials_by_day(
    *,
    team: Team,
    start: date | None = None,
    end: date | None = None,
    product: str | None = None,
    user_id: int | None = None,
    per_user: bool = False,
) -> list[dict]:
    """Refused launches and jobs per day and product (and person, when ``per_user``: Premium
    only, the caller checks), newest day first. One query."""
    fields = ["day", "product"] + (
        ["user_id", "user__email", "user__first_name", "user__last_name"] if per_user else []
    )
    rows = (
        _rollups(team=team, start=start, end=end, product=product, user_id=user_id)
        .filter(denials__gt=0)
        .values(*fields)
        .annotate(count=Sum("denials"))
        .order_by("-day", "product", *(["user__email"] if per_user else []))
    )
    names = product_names({row["product"] for row in rows})
    return [
        {
            "day": row["day"],
            "product": row["product"],
            "product_name": names.get(row["product"], row["product"]),
            "denials": row["count"],
            **(
                {
                    "user_id": row["user_id"],
                    "user": row["user__email"],
                    "name": f"{row['user__first_name']} {row['user__last_name']}".strip(),
                }
                if per_user
                else {}
            ),
        }
        for row in rows
    ]


DENIAL_REASONS = {
    "not_assigned": "Not assigned Flex for the product",
    "insufficient_balance": "Insufficient balance",
    "no_tokens": "Free service, but no tokens",
    "too_old": "Reported too late (too old)",
}


def denials_by_reason(
    *,
    team: Team,
    start: date | None = None,
    end: date | None = None,
    product: str | None = None,
    user_id: int | None = None,
) -> list[dict]:
    """Refused launches and jobs per product and reason, most first.

    The rollup counts denials but keeps no reason, so this one report reads the denied
    usage events: one aggregate query over the team's denied events in the range (the
    ``usageevent_team_status`` index), whatever their number; it returns at most one row
    per product and reason."""
    rows = UsageEvent.objects.filter(team=team, status=EventStatus.DENIED)
    tz = team.tz
    if start is not None:
        rows = rows.filter(started_at__gte=datetime.combine(start, time.min, tzinfo=tz))
    if end is not None:
        rows = rows.filter(started_at__lt=datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz))
    if product:
        rows = rows.filter(product=product)
    if user_id is not None:
        rows = rows.filter(user_id=user_id)
    result = list(rows.values("product", "reason").annotate(count=Count("id")).order_by("-count", "product", "reason"))
    names = product_names({row["product"] for row in result})
    return [
        {
            "product": row["product"],
            "product_name": names.get(row["product"], row["product"]),
            "reason": row["reason"],
            "reason_label": DENIAL_REASONS.get(row["reason"], row["reason"].replace("_", " ").capitalize()),
            "denials": row["count"],
        }
        for row in result
    ]


def days_used_by_week(
    *, team: Team, user_id: int, start: date | None = None, end: date | None = None, product: str | None = None
) -> list[dict]:
    """One person's days used (days with a charge) per week (starting Monday) and product,
    with the tokens of those days; oldest week first. One query."""
    rows = (
        _rollups(team=team, start=start, end=end, product=product, user_id=user_id)
        .filter(USED)
        .annotate(week=TruncWeek("day"))
        .values("week", "product")
        .annotate(days=Count("day", distinct=True), **_totals())
        .order_by("week", "product")
    )
    return [
        {
            "week": row["week"].date() if isinstance(row["week"], datetime) else row["week"],
            "product": row["product"],
            "days": row["days"],
            **_amounts(row),
        }
        for row in rows
    ]


def report_people(*, team: Team) -> list[dict]:
    """Everybody with usage in the team's rollups (the By User filter's choices), by name.
    One query."""
    rows = (
        UsageRollup.objects.filter(team=team)
        .values("user_id", "user__email", "user__first_name", "user__last_name")
        .distinct()
        .order_by("user__first_name", "user__last_name", "user__email")
    )
    return [
        {
            "user_id": row["user_id"],
            "user": row["user__email"],
            "name": f"{row['user__first_name']} {row['user__last_name']}".strip(),
        }
        for row in rows
    ]


def report_products(*, team: Team) -> dict[str, str]:
    """Every product in the team's rollups, code to name (the product filter's choices).
    Two queries."""
    codes = set(UsageRollup.objects.filter(team=team).values_list("product", flat=True).distinct())
    names = product_names(codes)
    return dict(sorted(((code, names.get(code, code)) for code in codes), key=lambda item: item[1].lower()))
