"""Reads behind the usage reports. They read the rollups only, never raw events
(style: "reports read rollups"): a fixed number of aggregate queries whatever the
number of events. Days are the team's days (the rollup's ``day``)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.db import connection
from django.db.models import Count, DecimalField, IntegerField, Max, Q, QuerySet, Sum, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, TruncWeek

from accounts.models import Team, User
from billing.models import EventStatus, Rate, UsageEvent, UsageRollup
from core.money import ZERO
from reporting.filters import RollupFilter

MONEY = DecimalField(max_digits=14, decimal_places=2)
# A user "used" a product on a day when something was charged; denials are counted apart.
USED = Q(charges__gt=0)


def _rollups(
    *, team: Team, start: date | None, end: date | None, product: str | None = None, user_id: int | None = None
) -> QuerySet[UsageRollup]:
    """The team's rollup rows in the range, of the product and the person when given."""
    selection = {"start": start, "end": end, "product": product or "", "user": user_id}
    rows = RollupFilter(
        {name: value for name, value in selection.items() if value not in (None, "")},
        queryset=UsageRollup.objects.filter(team=team),
    )
    return rows.qs


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
    # Summed per product and person in the database (a few thousand groups for a year of a
    # 200-person team), then per product here: a COUNT(DISTINCT user) per product would sort
    # every rollup row of the range (2 to 3x slower; see docs/benchmarks.md).
    per_product: dict[str, dict] = {}
    for group in (
        _rollups(team=team, start=start, end=end, product=product, user_id=user_id)
        .values("product", "user")
        .annotate(**_totals())
        .order_by()
    ):
        row = per_product.setdefault(
            group["product"],
            {"product": group["product"], "users": 0, "sum_tokens": ZERO, "sum_credits": ZERO}
            | {"sum_charges": 0, "sum_denials": 0},
        )
        for key in ("sum_tokens", "sum_credits", "sum_charges", "sum_denials"):
            row[key] += group[key]
        row["users"] += group["sum_charges"] > 0
    rows = sorted(per_product.values(), key=lambda row: (-row["sum_tokens"], row["product"]))
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
    in the same transaction as each charge, so reports are current up to this moment.
    One query, one step down the ``rollup_team_updated`` index: it costs the same on a
    team with a day of history and with years of it."""
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
    # Summed per product and person first, then over those groups: the distinct counts then
    # sort a few thousand groups instead of every rollup row of the range (about 1.7x
    # faster on a year of a 200-person team; see docs/benchmarks.md). A person or product
    # was charged in the range when its group's charges are.
    row = (
        _rollups(team=team, start=start, end=end, product=product, user_id=user_id)
        .values("product", "user")
        .annotate(group_tokens=Sum("tokens"), group_credits=Sum("cloud_credits"), group_charges=Sum("charges"))
        .annotate(group_denials=Sum("denials"))
        .aggregate(
            sum_tokens=Coalesce(Sum("group_tokens", output_field=MONEY), Value(ZERO), output_field=MONEY),
            sum_credits=Coalesce(Sum("group_credits", output_field=MONEY), Value(ZERO), output_field=MONEY),
            sum_charges=Coalesce(Sum("group_charges"), Value(0), output_field=IntegerField()),
            sum_denials=Coalesce(Sum("group_denials"), Value(0), output_field=IntegerField()),
            products=Count("product", filter=Q(group_charges__gt=0), distinct=True),
            users=Count("user", filter=Q(group_charges__gt=0), distinct=True),
        )
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


# A loose index scan: the smallest value, then the smallest one above it, and so on.
DISTINCT_STEPS = (
    "WITH RECURSIVE seen(value) AS ("
    "SELECT MIN({column}) FROM {table} WHERE {team} = %s "
    "UNION ALL SELECT (SELECT MIN({column}) FROM {table} WHERE {team} = %s AND {column} > seen.value) "
    "FROM seen WHERE seen.value IS NOT NULL"
    ") SELECT value FROM seen WHERE value IS NOT NULL"
)


def _distinct_in_rollups(*, team: Team, field: str) -> tuple[str, tuple]:
    """The distinct values of a rollup column for one team (SQL and parameters): a query that steps from
    one value to the next down an index that starts with (team, that column)
    (``rollup_team_product_day``, ``rollup_team_user_day``): a few index probes per value,
    whatever the number of rollup rows. (PostgreSQL has no skip scan of its own; a plain
    DISTINCT reads every row of the team's history.)"""
    quote = connection.ops.quote_name
    table = quote(UsageRollup._meta.db_table)
    team_column = quote(UsageRollup._meta.get_field("team").column)
    column = quote(UsageRollup._meta.get_field(field).column)
    # Names from the model, quoted; the team is a parameter.
    sql = DISTINCT_STEPS.format(table=table, team=team_column, column=column)
    return sql, (team.pk, team.pk)


def report_people(*, team: Team) -> list[dict]:
    """Everybody with usage in the team's rollups (the By User filter's choices), by name.
    One query, whatever the length of the team's history."""
    rows = (
        User.objects.filter(pk__in=RawSQL(*_distinct_in_rollups(team=team, field="user")))  # noqa: S611
        .values("pk", "email", "first_name", "last_name")
        .order_by("first_name", "last_name", "email")
    )
    return [
        {
            "user_id": row["pk"],
            "user": row["email"],
            "name": f"{row['first_name']} {row['last_name']}".strip(),
        }
        for row in rows
    ]


def report_products(*, team: Team) -> dict[str, str]:
    """Every product in the team's rollups, code to name (the product filter's choices).
    Two queries, whatever the length of the team's history."""
    with connection.cursor() as cursor:
        cursor.execute(*_distinct_in_rollups(team=team, field="product"))
        codes = {code for (code,) in cursor.fetchall()}
    names = product_names(codes)
    return dict(sorted(((code, names.get(code, code)) for code in codes), key=lambda item: item[1].lower()))
