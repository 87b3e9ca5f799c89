"""The selectors of the Flex tokens page and My usage: the run-out forecast, token events,
the pack list's status, the next expiry and a member's own usage.

The forecast's clock: ``NOW`` is a Monday morning in June; the personas' team lives in
Europe/Berlin (UTC+2 in summer), so its days start at 22:00 UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta

from billing import services
from billing.models import EntryKind, TokenPack, pack_status
from billing.selectors import (
    ForecastStatus,
    UnusedExpiry,
    my_usage,
    next_expiry,
    pack_list,
    run_out_forecast,
    team_balance,
    token_events,
)
from tests.factories import MembershipFactory, TeamFactory, UserFactory

NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
D = timedelta(days=1)
H = timedelta(hours=1)


def bought_to_expire(expires_at: datetime) -> datetime:
    """The purchase time of a pack that expires at ``expires_at`` (packs last 12 months)."""
    return expires_at - relativedelta(months=12)


@pytest.fixture
def spender(buy):
    """A pack that pays for the usage of the forecast window and has expired by ``NOW``, so
    that the packs a test buys for the forecast start full."""
    return buy(2000, at=bought_to_expire(NOW - timedelta(minutes=1)), reference="SPENDER")


def revit_days(log, days: list[int]) -> None:
    """Revit (10 tokens a day) on each of ``days`` days before NOW, one launch a day. Each
    launch is a minute later than the day before, so it never falls inside the last window."""
    for n, back in enumerate(sorted(days, reverse=True)):
        start = NOW - back * D - H + timedelta(minutes=n)
        log("revit", start, start + 30 * timedelta(minutes=1))


@pytest.fixture
def burning_five_a_day(spender, log, team):
    """150 tokens of Revit on 15 days of the last 30 (5 a day), a CFD job inside the window
    that was refunded (it cancels out), and usage 40 days ago (outside the window)."""
    revit_days(log, [40])
    revit_days(log, list(range(1, 16)))
    job = log("cfd-simulation", NOW - 3 * D + 4 * H, variant="complex", event_id="failed-job")
    assert job["tokens"] == "35.00"
    services.refund_usage(team=team, event_id="failed-job", now=NOW - 3 * D + 5 * H)


# --- run_out_forecast -----------------------------------------------------------------------------


def test_forecast_spends_the_burn_pack_by_pack_and_counts_what_expires_unused(team, buy, burning_five_a_day):
    soon = buy(100, at=bought_to_expire(NOW + 10 * D), reference="SOON")
    later = buy(300, at=bought_to_expire(NOW + 100 * D), reference="LATER")

    forecast = run_out_forecast(team=team, now=NOW)

    assert forecast.status == ForecastStatus.OK
    assert forecast.days_with_usage == 15
    assert forecast.net_used == Decimal("150.00")  # 15 x 10; the refunded 35 cancel out
    assert forecast.burn_per_day == Decimal("5.00")
    assert forecast.available == Decimal("400.00")
    # SOON: 10 days x 5 = 50 used before it expires, 50 expire unused on its expiry.
    assert forecast.expiring_unused == [UnusedExpiry("SOON", soon.expires_at, Decimal("50.00"))]
    assert soon.expires_at == datetime(2026, 6, 11, 10, 0, tzinfo=UTC)
    # LATER: 300 / 5 = 60 days after SOON expired, well before its own expiry.
    assert forecast.runs_out_at == datetime(2026, 8, 10, 10, 0, tzinfo=UTC)
    assert forecast.runs_out_at < later.expires_at
    assert forecast.ends_by_expiry is False
    assert forecast.total_unused == Decimal("50.00")


def test_forecast_on_equal_expiry_spends_the_smallest_pack_first(team, buy, burning_five_a_day):
    at = bought_to_expire(NOW + 20 * D)
    buy(100, at=at, reference="BIG")
    buy(50, at=at, reference="SMALL")

    forecast = run_out_forecast(team=team, now=NOW)

    # SMALL lasts 10 days; BIG gets the 10 days left before both expire: 50 of its 100.
    assert forecast.expiring_unused == [UnusedExpiry("BIG", NOW + 20 * D, Decimal("50.00"))]
    assert forecast.runs_out_at == datetime(2026, 6, 21, 10, 0, tzinfo=UTC)
    assert forecast.ends_by_expiry is True


def test_forecast_when_the_last_pack_expires_before_the_burn_empties_it(team, buy, burning_five_a_day):
    buy(1000, at=bought_to_expire(NOW + 100 * D), reference="BIG")

    forecast = run_out_forecast(team=team, now=NOW)

    assert forecast.runs_out_at == datetime(2026, 9, 9, 10, 0, tzinfo=UTC)
    assert forecast.ends_by_expiry is True
    assert forecast.expiring_unused == [UnusedExpiry("BIG", NOW + 100 * D, Decimal("500.00"))]


def test_forecast_with_fractions_keeps_cents(team, buy, spender, log):
    # 7 days of AutoCAD (7 tokens) in the window: 49 / 30 = 1.6333… a day.
    for n, back in enumerate(range(7, 0, -1)):
        start = NOW - back * D + timedelta(minutes=n)
        log("autocad", start, start + H)
    buy(100, at=bought_to_expire(NOW + 30 * D), reference="P")

    forecast = run_out_forecast(team=team, now=NOW)

    assert forecast.burn_per_day == Decimal("1.63")
    # 100 - 30 x 49/30 = 51 tokens are left when the pack expires.
    assert forecast.expiring_unused == [UnusedExpiry("P", NOW + 30 * D, Decimal("51.00"))]


def test_too_little_usage_to_forecast_below_seven_days_with_usage(team, buy, spender, log):
    buy(500, at=bought_to_expire(NOW + 200 * D))
    revit_days(log, [1, 2, 3, 4, 5, 6])

    forecast = run_out_forecast(team=team, now=NOW)

    assert forecast.status == ForecastStatus.TOO_LITTLE_USAGE
    assert forecast.days_with_usage == 6
    assert forecast.runs_out_at is None and forecast.expiring_unused == []


def test_seven_days_with_usage_are_enough(team, buy, spender, log):
    buy(500, at=bought_to_expire(NOW + 200 * D))
    revit_days(log, [1, 2, 3, 4, 5, 6, 29])

    forecast = run_out_forecast(team=team, now=NOW)

    assert forecast.status == ForecastStatus.OK
    assert forecast.burn_per_day == Decimal("2.33")  # 70 / 30
    # 500 / (70/30) = 214.28… days: after the pack expires (200 days): 500 - 200 x 70/30 unused.
    assert forecast.expiring_unused[0].tokens == Decimal("33.33")


def test_days_with_usage_are_the_teams_days(team, buy, spender, log):
    """Two launches an hour apart around midnight UTC fall on one Berlin day."""
    buy(500, at=bought_to_expire(NOW + 200 * D))
    revit_days(log, [1, 2, 3, 4, 5])
    late = datetime(2026, 5, 20, 23, 30, tzinfo=UTC)  # 01:30 on May 21 in Berlin
    log("revit", late, late + 20 * timedelta(minutes=1))
    log("autocad", late + H, late + 2 * H)  # 00:30 UTC on May 21, 02:30 in Berlin

    forecast = run_out_forecast(team=team, now=NOW)

    assert forecast.days_with_usage == 6  # seven UTC days, six Berlin days
    assert forecast.status == ForecastStatus.TOO_LITTLE_USAGE


def test_no_burn_when_refunds_cancel_the_usage_out(team, buy, spender, log):
    buy(500, at=bought_to_expire(NOW + 200 * D))
    for back in range(1, 8):
        log("cfd-simulation", NOW - back * D, variant="simple", event_id=f"job-{back}")
        services.refund_usage(team=team, event_id=f"job-{back}", now=NOW - back * D + H)

    forecast = run_out_forecast(team=team, now=NOW)

    assert forecast.days_with_usage == 7
    assert forecast.net_used == Decimal("0.00")
    assert forecast.status == ForecastStatus.NO_BURN


def test_no_forecast_without_tokens(team, spender, log):
    revit_days(log, list(range(1, 11)))

    forecast = run_out_forecast(team=team, now=NOW)

    assert forecast.status == ForecastStatus.NO_TOKENS
    assert forecast.available == Decimal("0.00")


def test_another_teams_usage_does_not_count(team, buy, spender, log, personas):
    buy(500, at=bought_to_expire(NOW + 200 * D))
    revit_days(log, list(range(1, 11)))

    forecast = run_out_forecast(team=personas.other_team, now=NOW)

    assert forecast.status == ForecastStatus.NO_TOKENS
    assert forecast.days_with_usage == 0 and forecast.net_used == 0


# --- token_events ---------------------------------------------------------------------------------


@pytest.fixture
def sister(team):
    return TeamFactory(name="Sister Team", slug="sister", reseller=team.reseller)


def test_token_events_are_the_last_90_days_of_purchases_expiries_moves_and_refunds(team, buy, log, sister):
    old = buy(100, at=NOW - 400 * D, reference="OLD")  # bought long ago, expired 35 days ago
    recent = buy(200, at=NOW - 20 * D, reference="RECENT")
    moved = buy(50, at=NOW - 10 * D, reference="MOVED")
    buy(70, at=NOW - 100 * D, reference="TOO-OLD")  # its purchase is outside the 90 days
    log("autocad", NOW - 5 * D, NOW - 5 * D + H)  # usage: not a token event
    log("cfd-simulation", NOW - 4 * D, variant="moderate", event_id="job-1")
    services.refund_usage(team=team, event_id="job-1", now=NOW - 4 * D + H)
    services.expire_packs(now=NOW - 30 * D)
    services.move_pack(pack=moved, to_team=sister, now=NOW - 2 * D)

    events = list(token_events(team=team, now=NOW))

    assert [(e.kind, e.pack.reference, e.amount) for e in events] == [
        (EntryKind.MOVE_OUT, "MOVED", Decimal("-50.00")),
        (EntryKind.REFUND, "TOO-OLD", Decimal("10.00")),
        (EntryKind.PURCHASE, "MOVED", Decimal("50.00")),
        (EntryKind.PURCHASE, "RECENT", Decimal("200.00")),
        (EntryKind.EXPIRY, "OLD", Decimal("-100.00")),
    ]
    assert events[1].event.event_id == "job-1"
    # The pack that moved is the sister team's now; its arrival is the sister's event.
    [arrival] = token_events(team=sister, now=NOW)
    assert (arrival.kind, arrival.amount) == (EntryKind.MOVE_IN, Decimal("50.00"))
    assert recent.pk and old.pk


def test_token_events_of_another_team_are_not_listed(team, buy, personas):
    buy(100, at=NOW - D)
    assert list(token_events(team=personas.other_team, now=NOW)) == []


# --- pack_list, next_expiry -----------------------------------------------------------------------


def test_pack_list_status_in_sql_agrees_with_pack_status(team, buy, log):
    active = buy(100, at=NOW - 20 * D, reference="ACTIVE")
    depleted = buy(7, at=NOW - 30 * D, reference="DEPLETED")
    log("autocad", NOW - D, NOW - D + H)  # the small, earlier-expiring pack pays
    expired_unclosed = buy(10, at=NOW - 366 * D, reference="PAST-EXPIRY")  # the job has not run
    closed = buy(10, at=NOW - 400 * D, reference="CLOSED")
    services.expire_packs(now=NOW - 20 * D)

    rows = {p.reference: p.state for p in pack_list(team=team, now=NOW)}

    assert rows == {"ACTIVE": "active", "DEPLETED": "depleted", "PAST-EXPIRY": "expired", "CLOSED": "expired"}
    for pack in TokenPack.objects.filter(pk__in=[active.pk, depleted.pk, expired_unclosed.pk, closed.pk]):
        expected = pack_status(
            expires_at=pack.expires_at, closed=pack.expired_at is not None, remaining=pack.remaining, at=NOW
        )
        assert rows[pack.reference] == expected
    assert [p.reference for p in pack_list(team=team, now=NOW).filter(state="expired")] == ["CLOSED", "PAST-EXPIRY"]


def test_next_expiry_adds_up_the_active_packs_expiring_first(team, buy):
    at = datetime(2026, 1, 5, 9, tzinfo=UTC)
    buy(100, at=at)
    buy(250, at=at)
    buy(900, at=at + 10 * D)

    upcoming = next_expiry(balance=team_balance(team=team))

    assert (upcoming.tokens, upcoming.expires_at, upcoming.packs) == (
        Decimal("350.00"),
        at + relativedelta(months=12),
        2,
    )


def test_no_next_expiry_without_active_packs(team):
    assert next_expiry(balance=team_balance(team=team)) is None


# --- my_usage -------------------------------------------------------------------------------------


def test_my_usage_is_the_members_own_by_product_this_month_and_the_last_12_months(team, buy, log, personas):
    other = UserFactory(email="colleague@own.example")
    MembershipFactory(user=other, team=team)
    services.assign_flex(team=team, user=other, products="all", actor=None, at=NOW - 500 * D)
    buy(500, at=datetime(2025, 5, 1, tzinfo=UTC))
    buy(500, at=datetime(2026, 1, 1, tzinfo=UTC))
    log("autocad", NOW - 2 * D, NOW - 2 * D + H)  # May 30: last month
    log("autocad", datetime(2026, 6, 1, 7, tzinfo=UTC), datetime(2026, 6, 1, 8, tzinfo=UTC))  # today, 09:00 in Berlin
    log("revit", datetime(2025, 7, 3, 9, tzinfo=UTC), datetime(2025, 7, 3, 10, tzinfo=UTC))  # 11 months ago
    log("revit", datetime(2025, 6, 20, 9, tzinfo=UTC), datetime(2025, 6, 20, 10, tzinfo=UTC))  # before the 12 months
    log("cfd-simulation", NOW - 3 * H, variant="complex", user=other)  # somebody else's

    usage = my_usage(team=team, user=personas.member, now=NOW)

    assert (usage.month_start.isoformat(), usage.year_start.isoformat()) == ("2026-06-01", "2025-07-01")
    assert [(p.name, p.this_month, p.last_12_months) for p in usage.products] == [
        ("AutoCAD", Decimal("7.00"), Decimal("14.00")),
        ("Revit", Decimal("0.00"), Decimal("10.00")),
    ]
    assert (usage.this_month, usage.last_12_months) == (Decimal("7.00"), Decimal("24.00"))
    assert len(usage.months) == 12
    months = dict(usage.months)
    assert months[datetime(2025, 7, 1).date()] == Decimal("10.00")
    assert months[datetime(2026, 5, 1).date()] == Decimal("7.00")
    assert months[datetime(2026, 6, 1).date()] == Decimal("7.00")
    assert usage.assignment is not None and usage.assignment.all_products


def test_my_usage_names_the_products_of_a_list_assignment(team, personas):
    services.assign_flex(team=team, user=personas.member, products=["revit", "autocad"], actor=None, at=NOW - D)
    usage = my_usage(team=team, user=personas.member, now=NOW)
    assert usage.assigned_products == ["AutoCAD", "Revit"]
    assert usage.products == []


def test_my_usage_without_an_assignment(personas):
    usage = my_usage(team=personas.team, user=personas.report_viewer, now=NOW)
    assert usage.assignment is None and usage.assigned_products == []
