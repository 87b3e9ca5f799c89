"""Reporting > Flex token usage: the pages agree with the ledger and the API, read a bounded
number of queries, carry the range across tabs, and show By User only on Premium."""

from __future__ import annotations

import html
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import services as account_services
from billing.models import EntryKind, LedgerEntry
from tests.reporting.conftest import charge_known_events

ALL = "?range=all"
PAGES = [
    ("reporting:summary", ()),
    ("reporting:by-product", ()),
    ("reporting:product-detail", ("autocad",)),
    ("reporting:by-user", ()),
    ("reporting:user-detail", ("member",)),
    ("reporting:denials", ()),
]


def _url(name: str, personas, *args) -> str:
    args = [personas.member.pk if a == "member" else a for a in args]
    return reverse(name, args=[personas.team.slug, *args])


def _rows(table) -> list[dict]:
    return [row.record for row in table.rows]


def _ledger_usage(team) -> tuple[Decimal, Decimal]:
    usage = LedgerEntry.objects.filter(team=team, kind=EntryKind.USAGE)
    tokens = -sum((e.amount for e in usage.filter(pack__isnull=False)), Decimal(0))
    credits = -sum((e.amount for e in usage.filter(credit_balance__isnull=False)), Decimal(0))
    return tokens, credits


def test_every_report_and_the_api_show_the_ledgers_usage(admin_client, client, personas, premium_usage):
    tokens, credits = _ledger_usage(personas.team)
    assert tokens == Decimal("27.00")  # AutoCAD 7, Revit 10, a moderate CFD job 10

    summary = admin_client.get(_url("reporting:summary", personas) + ALL).context
    assert (summary["totals"]["tokens"], summary["totals"]["cloud_credits"]) == (tokens, credits)
    assert sum(b.total for b in summary["day_table"].data.data) == tokens

    products = _rows(admin_client.get(_url("reporting:by-product", personas) + ALL).context["table"])
    assert sum(r["tokens"] for r in products) == tokens
    drilled = [
        admin_client.get(_url("reporting:product-detail", personas, r["product"]) + ALL).context["totals"]["tokens"]
        for r in products
    ]
    assert drilled == [r["tokens"] for r in products]

    people = _rows(admin_client.get(_url("reporting:by-user", personas) + ALL).context["table"])
    assert sum(r["tokens"] for r in people) == tokens
    for person in people:
        detail = admin_client.get(reverse("reporting:user-detail", args=[personas.team.slug, person["user_id"]]) + ALL)
        assert detail.context["totals"]["tokens"] == person["tokens"]
        assert sum(r["tokens"] for r in _rows(detail.context["product_table"])) == person["tokens"]

    _, key = account_services.create_api_key(team=personas.team, name="reports", actor=None)
    for group in ("product", "user", "day"):
        body = client.get(
            f"/api/v1/teams/{personas.team.slug}/usage?group_by={group}", headers={"Authorization": f"Bearer {key}"}
        ).json()
        assert sum(Decimal(r["tokens"]) for r in body["rows"]) == tokens, group


def test_summary_compares_with_the_previous_period_of_the_same_length(admin_client, personas, premium_usage):
    context = admin_client.get(_url("reporting:summary", personas)).context
    figures = {f["key"]: f for f in context["figures"]}
    assert figures["tokens"]["value"] == Decimal("27.00")
    assert figures["tokens"]["change"]["delta"] == Decimal("27.00")  # nothing the 30 days before
    assert figures["users"]["value"] == 2 and figures["products"]["value"] == 3
    assert context["previous_period"].days == context["period"].days == 30


def test_a_filter_narrows_every_figure(admin_client, personas, premium_usage):
    context = admin_client.get(_url("reporting:summary", personas) + "?range=all&product=revit").context
    assert context["totals"]["tokens"] == Decimal("10.00")
    context = admin_client.get(_url("reporting:by-product", personas) + f"?range=all&user={personas.member.pk}").context
    assert {r["product"] for r in _rows(context["table"])} == {"autocad", "cfd-simulation"}


def test_tabs_carry_the_range_and_filters(admin_client, personas, premium_usage):
    response = admin_client.get(_url("reporting:by-product", personas) + "?range=6m&product=autocad")
    for tab in response.context["tabs"]:
        assert tab["url"].endswith("?range=6m&product=autocad")
    body = response.content.decode()
    assert "Last 6 completed months" in body


def test_a_custom_range_without_days_explains_itself_and_shows_the_default(admin_client, personas, premium_usage):
    response = admin_client.get(_url("reporting:summary", personas) + "?range=custom")
    assert response.status_code == 200
    assert "Give a first day, a last day or both." in html.unescape(response.content.decode())
    assert response.context["period"].key == "30d"


def test_by_user_on_standard_is_an_illustrated_upsell_not_an_error(admin_client, personas, standard_usage):
    for name, args in [("reporting:by-user", ()), ("reporting:user-detail", ("member",))]:
        response = admin_client.get(_url(name, personas, *args))
        assert response.status_code == 200
        body = html.unescape(response.content.decode())
        assert "By User is part of the Premium plan" in body
        assert "Illustrative" in body
        assert personas.member.email not in body and "Mia Member" not in body


def test_standard_reports_name_nobody(admin_client, personas, standard_usage):
    for name, args in PAGES:
        body = html.unescape(admin_client.get(_url(name, personas, *args) + ALL).content.decode())
        for user in (personas.member, personas.report_viewer, personas.secondary_admin):
            # The shell names the signed-in admin only; the reports name nobody on Standard.
            assert user.email not in body and user.last_name not in body, name


def test_premium_by_user_drill_down_shows_days_used_per_week(admin_client, personas, premium_usage):
    response = admin_client.get(_url("reporting:user-detail", personas, "member") + ALL)
    grid = _rows(response.context["grid"])
    assert sum(sum(week["days"].values()) for week in grid) == 2  # an AutoCAD day and a CFD job day
    assert "Days used per week" in response.content.decode()


def test_denials_by_day_product_and_reason(admin_client, personas, premium_usage):
    context = admin_client.get(_url("reporting:denials", personas) + ALL).context
    (reason,) = _rows(context["reason_table"])
    assert (reason["product"], reason["reason"], reason["denials"]) == ("autocad", "not_assigned", 1)
    (day,) = _rows(context["day_table"])
    assert (day["product"], day["denials"], day["user"]) == ("autocad", 1, personas.secondary_admin.email)
    assert "User" in [c.header for c in context["day_table"].columns]


def test_denials_on_standard_have_no_user_column(admin_client, personas, standard_usage):
    context = admin_client.get(_url("reporting:denials", personas) + ALL).context
    assert "User" not in [c.header for c in context["day_table"].columns]
    assert context["total"] == 1


def test_every_report_shows_data_as_of(admin_client, personas, premium_usage):
    for name, args in PAGES:
        body = admin_client.get(_url(name, personas, *args)).content.decode()
        assert "Data as of <time" in body, name


def test_reporting_is_in_the_navigation_of_report_viewers_not_members(client, personas):
    client.force_login(personas.report_viewer)
    home = reverse("accounts:team-home", args=[personas.team.slug])
    assert reverse("reporting:summary", args=[personas.team.slug]) in client.get(home).content.decode()
    client.force_login(personas.member)
    assert reverse("reporting:summary", args=[personas.team.slug]) not in client.get(home).content.decode()


# What each page costs, measured on SQLite: the shell's 8 (session, user, team access;
# navigation, team switcher, unread count; the session is saved only when the team changes,
# so not here: the first page of the test remembered the team), then the
# report's range and filters (the products, 2; on Premium the people, 1) and "Data as of"
# (1), then its own reads (a range of whole months and one with days around them cost the
# same: the two rollups are read in one UNION):
# - Summary, 3: the totals (2: the sums per day and product, the people charged) and
#   tokens by bar and product (a bounded range adds 2: the previous period's totals);
# - By Product, 3: per product, the people charged, the names; a product, 6: its totals
#   (2), by bar, its users (3: the sums, the products and the days used, the people);
# - By User, 4: the sums, the products charged, the days used, the people;
# - a person, 4: days used per week, per product (3: sums, products charged, names), the totals;
# - Denials, 4: by day and product (and user) with the names (2), by reason with the names
#   (2: the reasons are read from the denied usage events, one aggregate query).
MEASURED = {
    "reporting:summary": 15,
    "reporting:by-product": 15,
    "reporting:product-detail": 19,
    "reporting:by-user": 16,
    "reporting:user-detail": 17,
    "reporting:denials": 16,
}
# A range of whole months (all dates) and one with days around them (the past 30 days,
# across a month's end, and a custom range inside a month).
RANGES = [ALL, "?range=30d", "?range=custom&start=2026-01-03&end=2026-01-20"]


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("name,args", PAGES)
def test_report_queries_do_not_grow_with_the_number_of_events(client, personas, name, args):
    charge_known_events(personas, premium=True, count=1)
    client.force_login(personas.primary_admin)
    urls = [_url(name, personas, *args) + query for query in RANGES]
    client.get(urls[0])  # the session remembers the team: saved once, not by every page
    few = [_queries(client, url) for url in urls]
    charge_known_events_more(personas)
    many = [_queries(client, url) for url in urls]
    assert many == few, f"{name}: {few} queries with 4 events, {many} with 124"
    assert max(few) <= MEASURED[name] + 2, f"{name}: {few} queries"  # + 2: the previous period's totals
    assert few[0] <= MEASURED[name], f"{name}: {few} queries"


def charge_known_events_more(personas) -> None:
    """Another 120 charged events on other days, by the same people and products."""
    from datetime import timedelta

    from django.utils import timezone

    from billing import services

    now = timezone.now()
    events = []
    for i in range(40):
        day = now - timedelta(days=3 + i, hours=1)
        for user, product in (
            (personas.member, "autocad"),
            (personas.report_viewer, "revit"),
            (personas.member, "revit"),
        ):
            events.append(
                {
                    "id": f"more-{i}-{user.pk}-{product}",
                    "user": user.email,
                    "product": product,
                    "started_at": day.isoformat(),
                    "ended_at": (day + timedelta(hours=1)).isoformat(),
                }
            )
    services.log_usage(team=personas.team, events=events, now=now, historical=True)


@pytest.mark.parametrize(
    "name,table,columns",
    [
        ("reporting:by-product", "table", ["name", "tokens", "cloud_credits", "charges", "users", "denials", "share"]),
        ("reporting:by-user", "table", ["label", "tokens", "products", "days", "last_used"]),
        ("reporting:denials", "day_table", ["day-day", "day-product_name", "day-label", "day-denials"]),
    ],
)
def test_every_column_sorts_both_ways(admin_client, personas, premium_usage, name, table, columns):
    for column in columns:
        prefix, _, field = column.rpartition("-")
        for order in (field, f"-{field}"):
            response = admin_client.get(
                reverse(name, args=[personas.team.slug]) + f"?range=all&{prefix}{'-' if prefix else ''}sort={order}"
            )
            assert response.status_code == 200, (column, order)
