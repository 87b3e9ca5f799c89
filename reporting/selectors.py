"""Reads behind the usage reports. They read the rollups only, never raw events
(style: "reports read rollups"): a fixed number of aggregate queries whatever the
number of events. Days are the team's days (the rollup's ``day``).

Each report reads the rollup sized to its question (``billing.models``): per day and
product for the totals of days and products (Summary's chart, By Product's amounts, the
days of a product); per month, product and person for whole months of people's usage (the
active users, By User), with the daily rollup only for the days before the first and
after the last whole month (``reporting.ranges.split``); the daily rollup (per day,
product and person) for one person's pages and the denials per person."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta

from django.db import connection
from django.db.models import (
    Count,
    DateField,
    DecimalField,
    IntegerField,
    Max,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, TruncMonth, TruncWeek

from accounts.models import Team, User
from billing.models import (
    DayRollup,
    EventStatus,
    ProductDayRollup,
    ProductUserMonthRollup,
    Rate,
    UsageEvent,
    UsageRollup,
    UserMonthRollup,
)
from core.money import ZERO
from reporting import ranges
from reporting.filters import DayFilter, ProductDayFilter, ProductUserMonthFilter, RollupFilter, UserMonthFilter

MONEY = DecimalField(max_digits=14, decimal_places=2)
# A user "used" a product on a day when something was charged; denials are counted apart.
USED = Q(charges__gt=0)


# The rollup each report reads, and the filter it reads it through.
FILTERS = {
    UsageRollup: RollupFilter,
    ProductDayRollup: ProductDayFilter,
    DayRollup: DayFilter,
    ProductUserMonthRollup: ProductUserMonthFilter,
    UserMonthRollup: UserMonthFilter,
}


def _rows(
    model: type[Model],
    *,
    team: Team,
    start: date | None = None,
    end: date | None = None,
    product: str | None = None,
    user_id: int | None = None,
) -> QuerySet:
    """The team's rows of one rollup in the range (days, or months for a monthly rollup),
    of the product and the person when given."""
    filterset = FILTERS[model]
    selection = {"start": start, "end": end, "product": product or "", "user": user_id}
    given = {name: value for name, value in selection.items() if value not in (None, "")}
    if unknown := given.keys() - filterset.base_filters.keys():
        raise ValueError(f"{model.__name__} has no {', '.join(sorted(unknown))} to filter by.")
    rows = model.objects.filter(team=team)
    # The values are typed already (a page's form or the API's serializer checked them): each
    # filter applies its lookup directly, without building and validating a form per query.
    for name, value in given.items():
        rows = filterset.base_filters[name].filter(rows, value)
    return rows


def _rollups(
    *, team: Team, start: date | None, end: date | None, product: str | None = None, user_id: int | None = None
) -> QuerySet[UsageRollup]:
    """The team's daily rollup rows in the range, of the product and the person when given."""
    return _rows(UsageRollup, team=team, start=start, end=end, product=product, user_id=user_id)


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


def _by_months(
    *,
    team: Team,
    start: date | None,
    end: date | None,
    product: str | None,
    user_id: int | None,
    monthly: type[Model],
    fields: tuple[str, ...],
    sums: dict,
    daily_sums: dict | None = None,
) -> list[dict]:
    """Rows grouped by ``fields`` with ``sums``, read from the ``monthly`` rollup for the
    range's whole months and from the daily rollup (``daily_sums``, or ``sums``) for the
    days around them: one query (a UNION ALL), a group per source and part; the caller
    adds them up. A year reads about a row per person and product used each month, not a
    row per day."""
    split = ranges.split(start, end)
    parts = []
    if split.months is not None:
        first, last = split.months
        rows = _rows(monthly, team=team, start=first, end=last, product=product, user_id=user_id)
        parts.append(rows.values(*fields).annotate(**sums).order_by())
    for first, last in split.edges:
        rows = _rollups(team=team, start=first, end=last, product=product, user_id=user_id)
        parts.append(rows.values(*fields).annotate(**(daily_sums or sums)).order_by())
    if not parts:
        return []
    head, *rest = parts
    return list(head.union(*rest, all=True) if rest else head)


def _charged(
    *, team: Team, start: date | None, end: date | None, product: str | None, user_id: int | None, fields: tuple
) -> QuerySet:
    """The distinct ``fields`` (of product and person) charged in the range: a UNION of the
    whole months' and the leftover days' (at most a row per product and person)."""
    split = ranges.split(start, end)
    parts = []
    if split.months is not None:
        first, last = split.months
        rows = _rows(ProductUserMonthRollup, team=team, start=first, end=last, product=product, user_id=user_id)
        parts.append(rows.filter(USED).values_list(*fields).distinct().order_by())
    for first, last in split.edges:
        rows = _rollups(team=team, start=first, end=last, product=product, user_id=user_id)
        parts.append(rows.filter(USED).values_list(*fields).distinct().order_by())
    if not parts:
        return UsageRollup.objects.none().values_list(*fields)
    head, *rest = parts
    return head.union(*rest) if rest else head


def _charged_pairs(
    *, team: Team, start: date | None, end: date | None, product: str | None, user_id: int | None
) -> set[tuple[str, int]]:
    """Each (product, person) charged in the range. One query."""
    selection = {"team": team, "start": start, "end": end, "product": product, "user_id": user_id}
    return set(_charged(**selection, fields=("product", "user")))


SUMS = ("sum_tokens", "sum_credits", "sum_charges", "sum_denials")


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
    most tokens first. Three queries: the sums (per day and product; a person's from the
    daily rollup), who was charged (``_charged_pairs``), the names."""
    if user_id is None:
        source = _rows(ProductDayRollup, team=team, start=start, end=end, product=product)
    else:
        source = _rollups(team=team, start=start, end=end, product=product, user_id=user_id)
    sums = list(source.values("product").annotate(**_totals()).order_by())
    users: dict[str, int] = defaultdict(int)
    for code, _user in _charged_pairs(team=team, start=start, end=end, product=product, user_id=user_id):
        users[code] += 1
    rows = sorted(sums, key=lambda row: (-row["sum_tokens"], row["product"]))
    names = product_names({row["product"] for row in rows})
    return [
        {
            "product": row["product"],
            "name": names.get(row["product"], row["product"]),
            "users": users[row["product"]],
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
    """Per user: tokens, cloud credits, products charged, days charged, charges, denials and
    the last day with a charge; most tokens first. Four queries: the sums, the products
    charged, the days (each by whole months and the days around them), the people with
    their last day (a step down the ``rollup_team_user_day`` index each). (Premium only:
    the caller checks.)"""
    selection = {"team": team, "start": start, "end": end, "product": product, "user_id": user_id}
    people: dict[int, dict] = {}
    for row in _by_months(**selection, monthly=ProductUserMonthRollup, fields=("user",), sums=_totals()):
        person = people.setdefault(row["user"], {"products": 0, "days": 0} | dict.fromkeys(SUMS, 0))
        for key in SUMS:
            person[key] += row[key]
    for _code, user in _charged_pairs(**selection):
        people[user]["products"] += 1
    if not people:
        return []
    used_days = Count("day", filter=USED, distinct=True)
    for row in _by_months(
        **selection,
        monthly=ProductUserMonthRollup if product else UserMonthRollup,
        fields=("user",),
        sums={"used_days": Sum("days")},
        daily_sums={"used_days": used_days},
    ):
        if row["user"] in people:
            people[row["user"]]["days"] += row["used_days"] or 0
    last_day = (
        _rollups(team=team, start=start, end=end, product=product)
        .filter(USED, user=OuterRef("pk"))
        .order_by("-day")
        .values("day")[:1]
    )
    who = (
        User.objects.filter(pk__in=people)
        .annotate(last_used=Subquery(last_day))
        .values("pk", "email", "first_name", "last_name", "last_used")
    )
    rows = [
        {
            "user": person["email"],
            "user_id": person["pk"],
            "name": f"{person['first_name']} {person['last_name']}".strip(),
            "products": people[person["pk"]]["products"],
            "days": people[person["pk"]]["days"],
            "last_used": person["last_used"],
            **_amounts(people[person["pk"]]),
        }
        for person in who
    ]
    return sorted(rows, key=lambda row: (-row["tokens"], row["user"]))


def usage_by_day(
    *,
    team: Team,
    start: date | None = None,
    end: date | None = None,
    product: str | None = None,
    user_id: int | None = None,
) -> list[dict]:
    """Per day with usage (the team's days): tokens, cloud credits, users and products
    charged, charges and denials; oldest first. Two queries: the rollups per day and
    product, and per day (users of any product); a person's from the daily rollup."""
    if user_id is not None:
        rows = (
            _rollups(team=team, start=start, end=end, product=product, user_id=user_id)
            .values("day")
            .annotate(**_totals(), users=Count("user", filter=USED, distinct=True))
            .annotate(products=Count("product", filter=USED, distinct=True))
            .order_by("day")
        )
        return [
            {"day": row["day"], "users": row["users"], "products": row["products"], **_amounts(row)} for row in rows
        ]
    rows = (
        _rows(ProductDayRollup, team=team, start=start, end=end, product=product)
        .values("day")
        .annotate(**_totals(), products=Count("product", filter=USED), product_users=Sum("users"))
        .order_by("day")
    )
    if product:  # one row per day: the product's users
        users = {row["day"]: row["product_users"] for row in rows}
    else:
        users = dict(_rows(DayRollup, team=team, start=start, end=end).values_list("day", "users"))
    return [
        {"day": row["day"], "users": users.get(row["day"], 0), "products": row["products"], **_amounts(row)}
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
    active users (charged at least once). Two queries: the sums per day and product, and
    how many people were charged (``_charged``, counted in the database); a person's, one
    query over the daily rollup."""
    if user_id is not None:
        row = _rollups(team=team, start=start, end=end, product=product, user_id=user_id).aggregate(
            **_totals(),
            products=Count("product", filter=USED, distinct=True),
            users=Count("user", filter=USED, distinct=True),
        )
        return {**_amounts(row), "products": row["products"], "users": row["users"]}
    row = _rows(ProductDayRollup, team=team, start=start, end=end, product=product).aggregate(
        **_totals(), products=Count("product", filter=USED, distinct=True)
    )
    users = _charged(team=team, start=start, end=end, product=product, user_id=None, fields=("user",)).count()
    return {**_amounts(row), "products": row["products"], "users": users}


def tokens_by_day_and_product(
    *,
    team: Team,
    start: date | None = None,
    end: date | None = None,
    product: str | None = None,
    user_id: int | None = None,
    size: str = "day",
) -> list[dict]:
    """Tokens (and cloud credits) per day (or week, or month: ``size``; ``day`` is then its
    first day) and product, oldest first: the stacked chart. One query (the rollup per day
    and product; a person's from the daily rollup), summed per bar in the database."""
    if user_id is None:
        rows = _rows(ProductDayRollup, team=team, start=start, end=end, product=product)
    else:
        rows = _rollups(team=team, start=start, end=end, product=product, user_id=user_id)
    if size != "day":
        rows = rows.annotate(bar=BARS[size]("day", output_field=DateField())).values("bar", "product")
    else:
        rows = rows.values("day", "product")
    result = list(rows.annotate(**_totals()).order_by(*rows.query.values_select))
    for row in result:
        if "bar" in row:
            bar = row.pop("bar")
            row["day"] = bar.date() if isinstance(bar, datetime) else bar
    return result


BARS = {"week": TruncWeek, "month": TruncMonth}


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
    if per_user or user_id is not None:  # the few daily rows with a denial (rollup_team_day_denied)
        source = _rollups(team=team, start=start, end=end, product=product, user_id=user_id)
    else:
        source = _rows(ProductDayRollup, team=team, start=start, end=end, product=product)
    rows = (
        source.filter(denials__gt=0)
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
