"""One test per charging and paying rule of domain.md ("Charging rules"), and per choice
the code made where domain.md is silent (docs/charging.md names each test).

Every test that moves tokens ends by checking the ledger: each pack and credit balance
holds exactly the sum of its entries.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Sum

from accounts.models import Role
from billing import services
from billing.models import (
    Charge,
    CloudCreditBalance,
    EntryKind,
    LedgerEntry,
    Rate,
    TokenPack,
    UsageEvent,
    UsageRollup,
    UsageWindow,
)
from core.exceptions import Conflict
from tests.billing.conftest import T0, tokens
from tests.factories import MembershipFactory, TeamFactory, UserFactory

H = timedelta(hours=1)
MIN = timedelta(minutes=1)
DAY = timedelta(days=1)
CUTOFF = datetime(2023, 3, 29, tzinfo=UTC)  # FLEX_CLOUD_CREDITS_EXPIRE_AT by default
MEMBER = "member@own.example"


def event(event_id: str, product: str, started_at: datetime, ended_at: datetime | None = None, **fields) -> dict:
    return {
        "id": event_id,
        "user": fields.pop("user", MEMBER),
        "product": product,
        "started_at": started_at.isoformat(),
        **({"ended_at": ended_at.isoformat()} if ended_at else {}),
        **fields,
    }


def remaining(account: TokenPack | CloudCreditBalance) -> Decimal:
    account.refresh_from_db()
    return account.remaining


def usage_entries(**filters) -> list[LedgerEntry]:
    return list(LedgerEntry.objects.filter(kind=EntryKind.USAGE, **filters).order_by("at", "id"))


def assert_ledger_balances() -> None:
    """The ledger invariant: every pack and credit balance holds the sum of its entries."""
    for model in (TokenPack, CloudCreditBalance):
        for account in model.objects.annotate(total=Sum("entries__amount")):
            assert account.remaining == (account.total or 0), f"{account} holds {account.remaining}"
            assert account.remaining >= 0


def add_rate(code: str, charge_type: str, tokens: str, *, effective_from: datetime, **fields) -> Rate:
    return Rate.objects.create(
        code=code,
        name=fields.pop("name", code),
        charge_type=charge_type,
        tokens=Decimal(tokens),
        effective_from=effective_from,
        **fields,
    )


def assign(team, user, products="all", at=datetime(2022, 1, 1, tzinfo=UTC)):
    return services.assign_flex(team=team, user=user, products=products, actor=None, at=at)


# --- Per day ----------------------------------------------------------------------------------


def test_relaunch_inside_window_costs_nothing(buy, log):
    pack = buy(100)
    first = log("autocad", T0, T0 + H)
    relaunch = log("autocad", T0 + 10 * H, T0 + 12 * H)
    assert (first["status"], tokens(first)) == ("charged", 7)
    assert (relaunch["status"], relaunch["reason"], tokens(relaunch), relaunch["charges"]) == (
        "no_charge",
        "inside_window",
        0,
        [],
    )
    assert [e.amount for e in usage_entries()] == [Decimal("-7")]
    assert remaining(pack) == 93
    assert_ledger_balances()


def test_session_outliving_window_is_charged_again_at_window_end(buy, log):
    pack = buy(100)
    result = log("autocad", T0, T0 + 30 * H)
    assert tokens(result) == 14
    assert [c["at"] for c in result["charges"]] == [T0.isoformat(), (T0 + 24 * H).isoformat()]
    assert [(e.at, e.amount) for e in usage_entries()] == [(T0, -7), (T0 + 24 * H, -7)]
    assert list(UsageWindow.objects.values_list("opened_at", "closes_at")) == [
        (T0, T0 + 24 * H),
        (T0 + 24 * H, T0 + 48 * H),
    ]
    assert remaining(pack) == 86
    assert_ledger_balances()


def test_session_ending_exactly_when_its_window_closes_is_not_charged_again(buy, log):
    """Choice: a session is charged again only when it ends strictly after its window closes."""
    buy(100)
    result = log("autocad", T0, T0 + 24 * H)
    assert tokens(result) == 7
    assert len(result["charges"]) == 1
    assert_ledger_balances()


def test_relaunch_inside_a_window_that_outlives_it_is_charged_at_the_window_end(buy, log):
    buy(100)
    log("autocad", T0, T0 + H)
    result = log("autocad", T0 + 20 * H, T0 + 26 * H)  # 04:00-10:00 Tuesday, inside Monday's window
    assert tokens(result) == 7
    assert [c["at"] for c in result["charges"]] == [(T0 + 24 * H).isoformat()]
    assert_ledger_balances()


def test_window_opens_at_the_first_launch_not_inside_an_open_window(buy, log):
    buy(100)
    log("autocad", T0, T0 + H)
    log("autocad", T0 + 10 * H, T0 + 11 * H)  # inside: opens nothing
    second_day = log("autocad", T0 + 25 * H, T0 + 26 * H)  # 09:00 Tuesday: outside, opens a window
    inside_second = log("autocad", T0 + 48 * H + 30 * MIN, T0 + 49 * H)  # 08:30 Wednesday: still inside
    assert tokens(second_day) == 7
    assert second_day["charges"][0]["at"] == (T0 + 25 * H).isoformat()
    assert (inside_second["reason"], tokens(inside_second)) == ("inside_window", 0)
    assert list(UsageWindow.objects.values_list("opened_at", flat=True)) == [T0, T0 + 25 * H]
    assert_ledger_balances()


def test_windows_are_per_user(buy, log, team, personas):
    buy(100)
    assign(team, personas.secondary_admin)
    first = log("autocad", T0, T0 + H)
    colleague = log("autocad", T0 + H, T0 + 2 * H, user=personas.secondary_admin)
    assert tokens(first) == tokens(colleague) == 7
    assert_ledger_balances()


def test_products_are_charged_independently(buy, log):
    pack = buy(100)
    autocad = log("autocad", T0, T0 + 2 * H)
    revit = log("revit", T0 + H, T0 + 3 * H)
    assert (tokens(autocad), tokens(revit)) == (7, 10)
    assert sorted(UsageWindow.objects.values_list("product", flat=True)) == ["autocad", "revit"]
    assert remaining(pack) == 83
    assert_ledger_balances()


def test_grace_period_is_per_product(buy, log):
    add_rate("slow-cad", "daily", "4", effective_from=datetime(2022, 3, 29, tzinfo=UTC), grace_minutes=15)
    pack = buy(100)
    slow = log("slow-cad", T0, T0 + 10 * MIN)
    autocad = log("autocad", T0, T0 + 10 * MIN)
    assert (slow["status"], slow["reason"], tokens(slow), slow["charges"]) == ("no_charge", "grace_period", 0, [])
    assert tokens(autocad) == 7
    assert not UsageWindow.objects.filter(product="slow-cad").exists()
    assert tokens(log("slow-cad", T0 + H, T0 + H + 15 * MIN)) == 4  # exactly the grace period is charged
    assert remaining(pack) == 89
    assert_ledger_balances()


def test_session_shorter_than_the_grace_period_opens_no_window(buy, log):
    buy(100)
    log("autocad", T0, T0 + 4 * MIN)
    assert tokens(log("autocad", T0 + 5 * MIN, T0 + 5 * MIN + 5 * MIN)) == 7  # 5 minutes: not shorter
    assert UsageWindow.objects.get().opened_at == T0 + 5 * MIN
    assert_ledger_balances()


def test_usage_counts_on_the_day_its_window_opened_in_the_team_time_zone(buy, log, team, personas):
    assert team.time_zone == "Europe/Berlin"
    buy(100)
    start = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)  # 00:30 Tuesday in Berlin, still Monday in UTC
    log("autocad", start, start + 26 * H)  # outlives its window: charged again 00:30 Wednesday Berlin
    rollups = {r.day: r for r in UsageRollup.objects.filter(team=team, product="autocad", user=personas.member)}
    assert sorted(rollups) == [date(2026, 3, 3), date(2026, 3, 4)]
    assert [(rollups[d].tokens, rollups[d].charges) for d in sorted(rollups)] == [(7, 1), (7, 1)]
    assert_ledger_balances()


def test_a_late_earlier_launch_re_prices_the_window_it_now_covers(buy, log):
    """A late launch puts a later one inside its window: the later one's charge is given back."""
    pack = buy(100)
    later = log("autocad", T0 + 10 * H, T0 + 11 * H, now=T0 + 11 * H)
    earlier = log("autocad", T0, T0 + H, now=T0 + 12 * H)  # reported late
    assert (tokens(later), tokens(earlier)) == (7, 7)
    [repriced] = earlier["repriced"]
    assert (repriced["id"], repriced["before"]["tokens"], repriced["now"]["tokens"]) == (later["id"], "7.00", "0.00")
    assert (repriced["now"]["status"], repriced["now"]["reason"]) == ("no_charge", "inside_window")
    stored = UsageEvent.objects.get(event_id=later["id"])
    assert (stored.status, stored.tokens, len(stored.adjustments)) == ("no_charge", 0, 1)
    assert list(UsageWindow.objects.values_list("opened_at", flat=True)) == [T0]
    assert remaining(pack) == 93
    assert_ledger_balances()


def test_in_one_batch_events_are_charged_in_time_order_and_answered_in_input_order(team, buy):
    buy(100)
    results = services.log_usage(
        team=team,
        events=[
            event("later", "autocad", T0 + 10 * H, T0 + 11 * H),
            event("earlier", "autocad", T0, T0 + H),
        ],
        now=T0 + 12 * H,
    )
    assert [(r["id"], r["status"], tokens(r)) for r in results] == [
        ("later", "no_charge", 0),
        ("earlier", "charged", 7),
    ]
    assert_ledger_balances()


def test_daily_product_needs_ended_at(log, buy):
    buy(100)
    result = log("autocad", T0)
    assert (result["status"], result["error"]["fields"]) == ("error", {"ended_at": "Required for daily products."})


# --- Per result and free ------------------------------------------------------------------------


def test_per_result_cost_is_variant_rate_times_quantity(buy, log):
    pack = buy(100)
    complex_two = log("cfd-simulation", T0, variant="complex", quantity=2)
    simple = log("cfd-simulation", T0 + H, variant="simple")
    study = log("generative-design", T0 + 2 * H)
    assert (tokens(complex_two), tokens(simple), tokens(study)) == (70, 5, 11)
    assert complex_two["charges"] == [
        {
            "at": T0.isoformat(),
            "status": "charged",
            "reason": "",
            "tokens": "70.00",
            "cloud_credits": "0.00",
            "draws": [{"pack": pack.reference, "tokens": "70.00"}],
        }
    ]
    assert [e.amount for e in usage_entries()] == [Decimal("-70"), Decimal("-5"), Decimal("-11")]
    assert remaining(pack) == 14
    assert_ledger_balances()


def test_per_result_service_with_variants_needs_a_known_variant(buy, log):
    buy(100)
    for variant in ({}, {"variant": "huge"}):
        result = log("cfd-simulation", T0, **variant)
        assert result["status"] == "error"
        assert result["error"]["fields"] == {"variant": "One of simple, moderate, complex."}
    assert not UsageEvent.objects.exists()


def test_per_hour_service_takes_decimal_quantity(buy, log):
    pack = buy(100)
    assert tokens(log("design-automation", T0, quantity="1.5")) == 3
    assert log("design-automation", T0 + H, quantity=0.25)["tokens"] == "0.50"
    assert remaining(pack) == Decimal("96.50")
    assert_ledger_balances()


def test_per_result_cost_is_rounded_half_even_to_the_cent(buy, log):
    """Choice: rate x quantity can have four decimals; it is rounded half-even to the cent."""
    buy(100)
    assert log("cloud-rendering-final", T0, quantity="0.01")["tokens"] == "0.02"  # 0.015
    assert log("cloud-rendering-final", T0 + H, quantity="0.03")["tokens"] == "0.04"  # 0.045
    assert_ledger_balances()


def test_quantity_is_positive_with_at_most_two_decimals_and_at_most_100000(buy, log):
    buy(100)
    for quantity in (0, -1, "1.234", 100001, "abc", True, "NaN"):
        result = log("design-automation", T0, quantity=quantity)
        assert result["status"] == "error", quantity
        assert "quantity" in result["error"]["fields"]
    assert not UsageEvent.objects.exists()


def test_fractional_results_are_accepted_as_sent(buy, log):
    """Choice: the quantity of any per-result service may have two decimals."""
    buy(100)
    assert log("cfd-simulation", T0, variant="simple", quantity="1.5")["tokens"] == "7.50"
    assert_ledger_balances()


def test_free_product_needs_at_least_one_token(team, buy, log):
    broke = log("cloud-rendering", T0)
    assert (broke["status"], broke["reason"], tokens(broke)) == ("denied", "insufficient_balance", 0)
    assert broke["charges"][0]["status"] == "denied"
    pack = buy(1)
    free = log("cloud-rendering", T0 + H)
    assert (free["status"], free["reason"], tokens(free), free["charges"]) == ("no_charge", "free_product", 0, [])
    assert remaining(pack) == 1
    log("design-automation", T0 + 2 * H, quantity="0.25")  # 0.50 spent: 0.50 left
    assert log("cloud-rendering", T0 + 3 * H)["reason"] == "insufficient_balance"
    assert_ledger_balances()


def test_cloud_credits_do_not_make_a_free_product_available(team, log):
    """Choice: "at least 1 token" means tokens; legacy cloud credits don't count."""
    moment = datetime(2022, 6, 1, tzinfo=UTC)
    services.grant_cloud_credits(team=team, credits=Decimal("100"), granted_at=moment)
    assert log("cloud-rendering", moment + H)["reason"] == "insufficient_balance"


def test_free_product_also_needs_a_flex_assignment(buy, log, personas):
    buy(100)
    result = log("cloud-rendering", T0, user=personas.secondary_admin)
    assert (result["status"], result["reason"]) == ("denied", "not_assigned")


# --- Who may spend ------------------------------------------------------------------------------


def test_unassigned_user_is_denied_not_assigned(team, buy, log, personas):
    pack = buy(100)
    result = log("autocad", T0, T0 + H, user=personas.secondary_admin)
    assert (result["status"], result["reason"], tokens(result)) == ("denied", "not_assigned", 0)
    assert result["charges"] == [
        {
            "at": T0.isoformat(),
            "status": "denied",
            "reason": "not_assigned",
            "tokens": "0.00",
            "cloud_credits": "0.00",
            "draws": [],
        }
    ]
    assert not usage_entries()
    assert not UsageWindow.objects.exists()
    assert UsageRollup.objects.get(user=personas.secondary_admin).denials == 1
    assert UsageEvent.objects.get(event_id=result["id"]).status == "denied"
    assert remaining(pack) == 100
    assert_ledger_balances()


def test_user_outside_the_team_is_an_error(buy, log, personas):
    buy(100)
    result = log("autocad", T0, T0 + H, user=personas.outsider)
    assert (result["status"], result["error"]["code"]) == ("error", "unknown_user")


def test_assignment_to_a_product_list_covers_only_those_products(team, buy, log, personas):
    buy(100)
    assign(team, personas.secondary_admin, ["autocad"])
    autocad = log("autocad", T0, T0 + H, user=personas.secondary_admin)
    revit = log("revit", T0, T0 + H, user=personas.secondary_admin)
    assert (autocad["status"], tokens(autocad)) == ("charged", 7)
    assert (revit["status"], revit["reason"]) == ("denied", "not_assigned")
    assert_ledger_balances()


def test_assignment_history_decides_by_event_time(team, buy, log, personas):
    buy(100)
    services.remove_flex(team=team, user=personas.member, actor=None, at=T0 + 2 * H)
    before = log("generative-design", T0 + H, now=T0 + 3 * H)  # reported after the removal
    after = log("generative-design", T0 + 4 * H)
    assign(team, personas.member, ["generative-design"], at=T0 + 6 * H)
    again = log("generative-design", T0 + 7 * H)
    assert [before["status"], after["status"], again["status"]] == ["charged", "denied", "charged"]
    assert after["reason"] == "not_assigned"
    assert_ledger_balances()


def test_assignment_is_checked_at_the_session_start(team, buy, log, personas):
    """Choice: a session started while assigned keeps its later windows after a removal."""
    buy(100)
    services.remove_flex(team=team, user=personas.member, actor=None, at=T0 + 12 * H)
    assert tokens(log("autocad", T0, T0 + 30 * H)) == 14
    assert_ledger_balances()


# --- Cloud credits ------------------------------------------------------------------------------


@pytest.fixture
def credits(team):
    """100 cloud credits granted on 2022-06-01 (before the cutoff)."""
    return services.grant_cloud_credits(team=team, credits=Decimal("100"), granted_at=datetime(2022, 6, 1, tzinfo=UTC))


JUNE_2022 = datetime(2022, 6, 10, 9, tzinfo=UTC)


def test_cloud_credits_pay_eligible_services_first(buy, log, credits):
    pack = buy(100, at=datetime(2022, 6, 1, tzinfo=UTC))
    result = log("cfd-simulation", JUNE_2022, variant="moderate")
    assert (result["status"], result["tokens"], result["cloud_credits"]) == ("charged", "0.00", "10.00")
    assert result["charges"][0]["draws"] == []  # draws name packs only
    assert [(e.credit_balance_id, e.amount) for e in usage_entries()] == [(credits.pk, Decimal("-10"))]
    assert (remaining(credits), remaining(pack)) == (90, 100)
    assert UsageRollup.objects.get(product="cfd-simulation").cloud_credits == 10
    assert_ledger_balances()


def test_cloud_credits_never_pay_daily_products(buy, log, credits):
    pack = buy(100, at=datetime(2022, 6, 1, tzinfo=UTC))
    result = log("autocad", JUNE_2022, JUNE_2022 + H)
    assert (result["tokens"], result["cloud_credits"]) == ("7.00", "0.00")
    assert (remaining(credits), remaining(pack)) == (100, 93)
    assert_ledger_balances()


def test_cloud_credits_pay_only_services_that_used_to_take_them(buy, log, credits):
    add_rate("new-service", "per_result", "3", effective_from=datetime(2022, 3, 29, tzinfo=UTC))
    buy(100, at=datetime(2022, 6, 1, tzinfo=UTC))
    result = log("new-service", JUNE_2022)
    assert (result["tokens"], result["cloud_credits"]) == ("3.00", "0.00")
    assert remaining(credits) == 100
    assert_ledger_balances()


def test_a_job_is_never_split_between_credits_and_tokens(team, buy, log):
    balance = services.grant_cloud_credits(
        team=team, credits=Decimal("20"), granted_at=datetime(2022, 6, 1, tzinfo=UTC)
    )
    pack = buy(100, at=datetime(2022, 6, 1, tzinfo=UTC))
    big = log("cfd-simulation", JUNE_2022, variant="complex")  # 35 > 20 credits: all tokens
    small = log("cfd-simulation", JUNE_2022 + H, variant="moderate")  # 10 <= 20 credits: all credits
    assert (big["tokens"], big["cloud_credits"]) == ("35.00", "0.00")
    assert (small["tokens"], small["cloud_credits"]) == ("0.00", "10.00")
    assert (remaining(balance), remaining(pack)) == (10, 65)
    assert_ledger_balances()


def test_expired_cloud_credits_do_not_pay(team, buy, log, credits):
    buy(100, at=datetime(2023, 1, 1, tzinfo=UTC))
    before = log("cfd-simulation", CUTOFF - H, variant="simple")
    after = log("cfd-simulation", CUTOFF + H, variant="simple")
    assert before["cloud_credits"] == "5.00"
    assert (after["tokens"], after["cloud_credits"]) == ("5.00", "0.00")
    # Live usage from before the cutoff, reported after it: judged at its own time.
    late = log("cfd-simulation", CUTOFF - 2 * H, now=CUTOFF + 2 * H, variant="simple")
    assert (late["tokens"], late["cloud_credits"]) == ("0.00", "5.00")
    assert remaining(credits) == 90
    services.expire_cloud_credits(now=CUTOFF + 3 * H)
    assert remaining(credits) == 0
    assert LedgerEntry.objects.get(credit_balance=credits, kind=EntryKind.EXPIRY).amount == -90
    assert_ledger_balances()


def test_the_cloud_credit_cutoff_is_a_setting(team, buy, log, settings):
    settings.FLEX_CLOUD_CREDITS_EXPIRE_AT = T0
    balance = services.grant_cloud_credits(team=team, credits=Decimal("50"), granted_at=T0 - 10 * DAY)
    buy(100)
    assert balance.expires_at == T0
    assert log("generative-design", T0 - H)["cloud_credits"] == "11.00"
    assert log("generative-design", T0 + H)["tokens"] == "11.00"
    with pytest.raises(ValidationError):
        services.grant_cloud_credits(team=team, credits=Decimal("5"), granted_at=T0)
    assert_ledger_balances()


# --- Which tokens pay ---------------------------------------------------------------------------


def test_tokens_come_from_earliest_expiry_first(buy, log):
    newer = buy(100, at=datetime(2026, 1, 1, tzinfo=UTC))
    older = buy(100, at=datetime(2025, 12, 1, tzinfo=UTC))
    log("revit", T0, T0 + H)
    assert (remaining(older), remaining(newer)) == (90, 100)
    assert_ledger_balances()


def test_on_equal_expiry_the_smallest_pack_pays_first(buy, log):
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    large = buy(100, at=moment)
    small = buy(50, at=moment)
    log("revit", T0, T0 + H)
    assert (remaining(small), remaining(large)) == (40, 100)
    assert_ledger_balances()


def test_then_the_oldest_purchase(buy, log):
    # 2025-02-28 and 2025-02-29 don't both exist; 2024-02-28 + 12 months == 2024-02-29 + 12 months.
    leap = buy(100, at=datetime(2024, 2, 29, 9, tzinfo=UTC))
    older = buy(100, at=datetime(2024, 2, 28, 9, tzinfo=UTC))
    assert leap.expires_at == older.expires_at == datetime(2025, 2, 28, 9, tzinfo=UTC)
    log("revit", datetime(2024, 6, 3, 8, tzinfo=UTC), datetime(2024, 6, 3, 9, tzinfo=UTC))
    assert (remaining(older), remaining(leap)) == (90, 100)
    assert_ledger_balances()


def test_one_charge_may_draw_on_several_packs(buy, log):
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    small = buy(5, at=moment, reference="SMALL")
    large = buy(100, at=moment, reference="LARGE")
    result = log("cfd-simulation", T0, variant="moderate")
    assert result["charges"][0]["draws"] == [{"pack": "SMALL", "tokens": "5.00"}, {"pack": "LARGE", "tokens": "5.00"}]
    assert [(e.pack_id, e.amount) for e in usage_entries()] == [(small.pk, -5), (large.pk, -5)]
    assert (remaining(small), remaining(large)) == (0, 95)
    assert_ledger_balances()


def test_insufficient_balance_is_denied_and_nothing_is_drawn(buy, log):
    pack = buy(30)
    result = log("cfd-simulation", T0, variant="complex")
    assert (result["status"], result["reason"], tokens(result)) == ("denied", "insufficient_balance", 0)
    assert result["charges"][0]["draws"] == []
    assert not usage_entries()
    assert remaining(pack) == 30
    assert UsageEvent.objects.get(event_id=result["id"]).status == "denied"
    assert UsageRollup.objects.get(product="cfd-simulation").denials == 1
    assert_ledger_balances()


def test_balance_never_goes_negative(buy, log):
    pack = buy(10)
    assert log("autocad", T0, T0 + H)["status"] == "charged"
    revit = log("revit", T0, T0 + H)
    assert (revit["status"], revit["reason"]) == ("denied", "insufficient_balance")
    assert remaining(pack) == 3
    assert not UsageWindow.objects.filter(product="revit").exists()  # a denied launch opens no window
    assert_ledger_balances()


def test_a_denied_window_recharge_stops_further_charges_of_that_session(buy, log, settings):
    """Choice: the event is "charged" if any window was; the reason names the denial."""
    settings.FLEX_MAX_EVENT_AGE_HOURS = 200  # a live session may then run for 100 hours
    pack = buy(15)
    result = log("autocad", T0, T0 + 100 * H)  # four windows wanted, tokens for two
    assert [c["status"] for c in result["charges"]] == ["charged", "charged", "denied"]
    assert (result["status"], result["reason"], tokens(result)) == ("charged", "insufficient_balance", 14)
    assert Charge.objects.count() == 3
    assert UsageWindow.objects.count() == 2
    assert remaining(pack) == 1
    assert_ledger_balances()


def test_a_pack_bought_after_the_charge_time_does_not_pay(buy, log):
    pack = buy(100, at=T0 + H)
    before = log("generative-design", T0, now=T0 + 2 * H)
    after = log("generative-design", T0 + 2 * H)
    assert (before["status"], before["reason"]) == ("denied", "insufficient_balance")
    assert after["status"] == "charged"
    assert remaining(pack) == 89
    assert_ledger_balances()


def test_a_pack_past_its_expiry_never_pays_even_before_the_expiry_job_ran(team, buy, log):
    pack = buy(100, at=T0 - timedelta(days=365))
    assert pack.expires_at == T0
    at_expiry = log("generative-design", T0)
    assert at_expiry["reason"] == "insufficient_balance"
    assert (remaining(pack), TokenPack.objects.get(pk=pack.pk).expired_at) == (100, None)
    # Usage from before the expiry, reported after it, is judged at its own time: the pack pays.
    reported_late = log("generative-design", T0 - H, now=T0 + H)
    assert (reported_late["status"], reported_late["charges"][0]["draws"]) == (
        "charged",
        [{"pack": pack.reference, "tokens": "11.00"}],
    )
    # The historical import follows the same rule.
    [imported] = services.log_usage(
        team=team, events=[event("imported", "generative-design", T0 - 2 * H)], now=T0 + H, historical=True
    )
    assert imported["status"] == "charged"
    assert remaining(pack) == 78
    assert_ledger_balances()


# --- Event age, duplicates, rates ---------------------------------------------------------------


def test_event_older_than_max_age_is_refused_event_too_old(team, buy, log, settings):
    buy(100)
    too_old = log("autocad", T0 - 50 * H, T0 - 49 * H, now=T0)
    assert (too_old["status"], too_old["error"]["code"]) == ("error", "event_too_old")
    assert "historical import" in too_old["error"]["message"]
    assert log("autocad", T0 - 48 * H, T0 - 47 * H, now=T0)["status"] == "charged"
    settings.FLEX_MAX_EVENT_AGE_HOURS = 2
    assert log("generative-design", T0 - 3 * H, now=T0)["error"]["code"] == "event_too_old"
    assert UsageEvent.objects.count() == 1
    assert_ledger_balances()


def test_a_live_session_that_started_before_the_age_limit_is_refused_whole(team, buy, log):
    buy(1000)
    long_ago = log("autocad", T0 - 20 * 24 * H, T0 - H, now=T0)

    assert (long_ago["status"], long_ago["error"]["code"]) == ("error", "event_too_old")
    assert long_ago["error"]["fields"] == {"started_at": "Too old for the live API."}
    assert "started more than 48 hours ago" in long_ago["error"]["message"]
    assert not UsageEvent.objects.exists() and not UsageRollup.objects.exists()
    # The same session through the historical import is charged a window per day.
    session = {
        "id": "long",
        "user": "member@own.example",
        "product": "autocad",
        "started_at": (T0 - 20 * 24 * H).isoformat(),
        "ended_at": (T0 - H).isoformat(),
    }
    replayed = services.log_usage(team=team, events=[session], now=T0, historical=True)[0]
    assert (replayed["status"], len(replayed["charges"])) == ("charged", 20)


def test_historical_import_accepts_old_events(team, buy):
    pack = buy(100, at=datetime(2025, 6, 1, tzinfo=UTC))
    start = datetime(2025, 7, 1, 8, tzinfo=UTC)
    [result] = services.log_usage(
        team=team, events=[event("old", "autocad", start, start + H)], now=T0, historical=True
    )
    assert (result["status"], tokens(result)) == ("charged", 7)
    assert remaining(pack) == 93
    assert_ledger_balances()


def test_started_at_in_the_future_is_refused(buy, log):
    buy(100)
    result = log("generative-design", T0 + 10 * MIN, now=T0)
    assert result["error"]["fields"] == {"started_at": "In the future."}


def test_live_session_ending_in_the_future_is_refused(team, buy, log):
    """A window is charged when the session reaches it, not in advance."""
    pack = buy(100)
    result = log("autocad", T0 - H, T0 + 3 * DAY, now=T0)
    assert result["error"]["fields"] == {"ended_at": "In the future."}
    assert remaining(pack) == 100
    assert_ledger_balances()


def test_no_rate_in_force_is_an_error(team, buy):
    buy(100, at=datetime(2022, 1, 2, tzinfo=UTC))
    [result] = services.log_usage(
        team=team,
        events=[event("early", "generative-design", datetime(2022, 3, 1, tzinfo=UTC))],
        now=T0,
        historical=True,
    )
    assert result["error"]["code"] == "no_rate"


def test_duplicate_id_is_replayed_not_recharged(team, buy):
    pack = buy(100)
    same = event("job-1", "generative-design", T0)
    first, copy = services.log_usage(team=team, events=[same, same], now=T0)
    assert (first["replayed"], copy["replayed"]) == (False, True)
    assert {**copy, "replayed": False} == first
    [later] = services.log_usage(team=team, events=[same], now=T0 + H)
    assert later == {**first, "replayed": True}
    assert UsageEvent.objects.count() == 1
    assert len(usage_entries()) == 1
    assert remaining(pack) == 89
    assert_ledger_balances()


def test_duplicate_id_in_one_batch_charges_the_first_in_input_order(team, buy):
    buy(100)
    results = services.log_usage(
        team=team,
        events=[
            event("job-1", "cfd-simulation", T0, variant="complex"),
            event("job-1", "cfd-simulation", T0 - H, variant="simple"),
        ],
        now=T0,
    )
    assert [(r["replayed"], r["tokens"]) for r in results] == [(False, "35.00"), (True, "35.00")]
    assert UsageEvent.objects.get().variant == "complex"
    # A copy of a refused event repeats the refusal; the id stays free for a corrected retry.
    refused, copy = services.log_usage(
        team=team,
        events=[
            event("job-2", "cfd-simulation", T0, variant="huge"),
            event("job-2", "cfd-simulation", T0, variant="simple"),
        ],
        now=T0,
    )
    assert refused["status"] == copy["status"] == "error"
    assert not UsageEvent.objects.filter(event_id="job-2").exists()
    assert_ledger_balances()


def test_same_id_in_another_team_is_another_event(team, buy, personas):
    buy(100)
    sibling = TeamFactory(reseller=team.reseller)
    MembershipFactory(user=personas.member, team=sibling, role=Role.MEMBER)
    assign(sibling, personas.member)
    services.record_purchase(team=sibling, reference="SIB-1", tokens=50, purchased_at=T0 - DAY, now=T0)
    services.log_usage(team=team, events=[event("job-1", "generative-design", T0)], now=T0)
    [other] = services.log_usage(team=sibling, events=[event("job-1", "generative-design", T0)], now=T0)
    assert (other["status"], other["replayed"]) == ("charged", False)
    assert_ledger_balances()


def test_rate_change_prices_usage_at_the_rate_in_force_then(buy, log):
    add_rate("autocad", "daily", "9", effective_from=T0 + 12 * H, name="AutoCAD")
    pack = buy(100)
    result = log("autocad", T0, T0 + 30 * H)  # window at T0 priced 7, window at T0+24h priced 9
    assert [c["tokens"] for c in result["charges"]] == ["7.00", "9.00"]
    assert tokens(log("autocad", T0 + 50 * H, T0 + 51 * H)) == 9
    assert remaining(pack) == 75
    assert_ledger_balances()


# --- Refunds ------------------------------------------------------------------------------------


def test_refund_returns_tokens_to_the_packs_that_paid(team, buy, log):
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    small = buy(5, at=moment)
    large = buy(100, at=moment)
    job = log("cfd-simulation", T0, variant="moderate")
    refund = services.refund_usage(team=team, event_id=job["id"], now=T0 + H)
    assert (refund["refunded_tokens"], refund["forfeited_tokens"], refund["replayed"]) == ("10.00", "0.00", False)
    assert (remaining(small), remaining(large)) == (5, 100)
    refunds = LedgerEntry.objects.filter(kind=EntryKind.REFUND).order_by("pack__tokens")
    assert [(e.pack_id, e.amount, e.at) for e in refunds] == [(small.pk, 5, T0 + H), (large.pk, 5, T0 + H)]
    assert UsageEvent.objects.get(event_id=job["id"]).refunded_at == T0 + H
    assert UsageRollup.objects.get(product="cfd-simulation").tokens == 0
    assert_ledger_balances()


def test_refund_of_a_credit_paid_job_returns_the_credits(team, buy, log, credits):
    job = log("cfd-simulation", JUNE_2022, variant="complex")
    refund = services.refund_usage(team=team, event_id=job["id"], now=JUNE_2022 + H)
    assert (refund["refunded_cloud_credits"], refund["refunded_tokens"]) == ("35.00", "0.00")
    assert remaining(credits) == 100
    assert_ledger_balances()


def test_refund_of_an_expired_pack_stays_expired(team, buy, log):
    expiring = buy(5, at=T0 - timedelta(days=360))  # expires five days after T0
    fresh = buy(100)
    job = log("cfd-simulation", T0, variant="moderate")
    refund = services.refund_usage(team=team, event_id=job["id"], now=expiring.expires_at + H)
    assert (refund["refunded_tokens"], refund["forfeited_tokens"]) == ("5.00", "5.00")
    assert (remaining(expiring), remaining(fresh)) == (0, 100)
    assert services.expire_packs(now=expiring.expires_at + 2 * H) == 1
    assert not LedgerEntry.objects.filter(pack=expiring, kind__in=[EntryKind.REFUND, EntryKind.EXPIRY]).exists()
    assert_ledger_balances()


def test_refund_to_a_pack_moved_to_another_team_is_forfeited(team, buy, log):
    """Choice: the pack now belongs to another team, which must not gain this team's refund."""
    pack = buy(100)
    job = log("generative-design", T0)
    sibling = TeamFactory(reseller=team.reseller)
    services.move_pack(pack=pack, to_team=sibling, now=T0 + H)
    refund = services.refund_usage(team=team, event_id=job["id"], now=T0 + 2 * H)
    assert (refund["refunded_tokens"], refund["forfeited_tokens"]) == ("0.00", "11.00")
    assert remaining(pack) == 89
    assert not LedgerEntry.objects.filter(kind=EntryKind.REFUND).exists()
    assert_ledger_balances()


def test_refund_twice_is_replayed(team, buy, log):
    pack = buy(100)
    job = log("generative-design", T0)
    first = services.refund_usage(team=team, event_id=job["id"], now=T0 + H)
    again = services.refund_usage(team=team, event_id=job["id"], now=T0 + 2 * H)
    assert again == {**first, "replayed": True}
    assert LedgerEntry.objects.filter(kind=EntryKind.REFUND).count() == 1
    assert remaining(pack) == 100
    assert_ledger_balances()


def test_daily_products_cannot_be_refunded(team, buy, log):
    buy(100)
    session = log("autocad", T0, T0 + H)
    with pytest.raises(ValidationError, match="Only per-result jobs"):
        services.refund_usage(team=team, event_id=session["id"], now=T0 + 2 * H)
    assert not LedgerEntry.objects.filter(kind=EntryKind.REFUND).exists()


def test_only_a_charged_job_of_the_team_can_be_refunded(team, buy, log):
    denied = log("generative-design", T0)  # no tokens yet
    with pytest.raises(ValidationError, match="not charged"):
        services.refund_usage(team=team, event_id=denied["id"], now=T0 + H)
    with pytest.raises(ValidationError, match="no usage event"):
        services.refund_usage(team=team, event_id="nope", now=T0 + H)


# --- Batches and input --------------------------------------------------------------------------


def test_one_bad_event_does_not_spoil_the_batch(team, buy):
    pack = buy(100)
    results = services.log_usage(
        team=team,
        events=[
            event("good-1", "generative-design", T0),
            event("unknown-product", "photoshop", T0),
            event("unknown-user", "generative-design", T0, user="nobody@own.example"),
            event("no-end", "autocad", T0),
            "not an object",
            {**event("naive", "generative-design", T0), "started_at": "2026-03-02T08:00:00"},
            event("good-2", "revit", T0, T0 + H),
        ],
        now=T0 + H,
    )
    assert [r["status"] for r in results] == ["charged", "error", "error", "error", "error", "error", "charged"]
    assert [r["error"]["code"] for r in results[1:6]] == [
        "unknown_product",
        "unknown_user",
        "invalid",
        "invalid",
        "invalid",
    ]
    assert results[4]["id"] is None
    assert set(UsageEvent.objects.values_list("event_id", flat=True)) == {"good-1", "good-2"}
    assert remaining(pack) == 79
    assert_ledger_balances()


def test_a_batch_holds_1_to_1000_events(team):
    for events in ([], [event(f"e{i}", "autocad", T0, T0 + H) for i in range(1001)], "nope"):
        with pytest.raises(ValidationError):
            services.log_usage(team=team, events=events, now=T0)


def test_naive_times_are_refused(team, buy):
    buy(100)
    results = services.log_usage(
        team=team,
        events=[
            {**event("a", "generative-design", T0), "started_at": "2026-03-02T08:00:00"},
            {**event("b", "autocad", T0), "ended_at": "2026-03-02T09:00:00"},
            {**event("c", "generative-design", T0), "started_at": datetime(2026, 3, 2, 8)},
            {**event("d", "generative-design", T0), "started_at": "yesterday"},
        ],
        now=T0 + H,
    )
    assert [r["error"]["fields"] for r in results] == [
        {"started_at": "A time zone offset is required."},
        {"ended_at": "A time zone offset is required."},
        {"started_at": "A time zone offset is required."},
        {"started_at": "Not an ISO 8601 time."},
    ]
    assert not UsageEvent.objects.exists()
    with pytest.raises(ValidationError):
        services.record_purchase(team=team, reference="NAIVE", tokens=5, purchased_at=datetime(2026, 1, 1), now=T0)
    with pytest.raises(ValidationError):
        services.grant_cloud_credits(team=team, credits=Decimal("5"), granted_at=datetime(2022, 6, 1))


# --- Jobs, moves and purchases ------------------------------------------------------------------


def test_expire_packs_writes_one_entry_and_is_idempotent(buy, log):
    pack = buy(100, at=T0 - timedelta(days=365) + DAY)  # expires a day after T0
    empty = buy(7, at=T0 - timedelta(days=365) + DAY)
    log("autocad", T0, T0 + H)  # paid by the 7-token pack: it is the smaller
    log("revit", T0 + H, T0 + 2 * H)
    assert services.expire_packs(now=T0 + 2 * DAY) == 2
    assert services.expire_packs(now=T0 + 3 * DAY) == 0
    [entry] = LedgerEntry.objects.filter(kind=EntryKind.EXPIRY)
    assert (entry.pack_id, entry.amount, entry.at) == (pack.pk, -90, pack.expires_at)
    pack.refresh_from_db()
    empty.refresh_from_db()
    assert (pack.remaining, pack.expired_at, pack.status()) == (0, T0 + 2 * DAY, "expired")
    assert (empty.remaining, empty.expired_at) == (0, T0 + 2 * DAY)
    assert_ledger_balances()


def test_expire_packs_leaves_unexpired_packs_alone(buy):
    pack = buy(100)
    assert services.expire_packs(now=pack.expires_at - MIN) == 0
    assert services.expire_packs(now=pack.expires_at) == 1
    assert_ledger_balances()


def test_move_pack_to_another_team_of_the_same_reseller_only(team, buy, log, personas):
    pack = buy(100)
    log("generative-design", T0)
    sibling = TeamFactory(reseller=team.reseller)
    with pytest.raises(ValidationError, match="same reseller"):
        services.move_pack(pack=pack, to_team=personas.other_team, now=T0 + H)
    with pytest.raises(ValidationError, match="already belongs"):
        services.move_pack(pack=pack, to_team=team, now=T0 + H)
    moved = services.move_pack(pack=pack, to_team=sibling, now=T0 + H)
    assert (moved.team_id, remaining(pack)) == (sibling.pk, 89)
    entries = LedgerEntry.objects.filter(kind__in=[EntryKind.MOVE_OUT, EntryKind.MOVE_IN]).order_by("id")
    assert [(e.team_id, e.kind, e.amount) for e in entries] == [
        (team.pk, "move_out", -89),
        (sibling.pk, "move_in", 89),
    ]
    # The usage stays with the team that spent it; the moved tokens now pay for the sibling.
    assert usage_entries()[0].team_id == team.pk
    assert log("generative-design", T0 + 2 * H)["reason"] == "insufficient_balance"
    member = UserFactory(email="sib@sibling.example")
    MembershipFactory(user=member, team=sibling, role=Role.MEMBER)
    assign(sibling, member)
    [paid] = services.log_usage(
        team=sibling, events=[event("s1", "generative-design", T0 + 2 * H, user=member.email)], now=T0 + 2 * H
    )
    assert paid["charges"][0]["draws"] == [{"pack": pack.reference, "tokens": "11.00"}]
    assert_ledger_balances()


def test_an_expired_or_empty_pack_cannot_move(team, buy, log):
    sibling = TeamFactory(reseller=team.reseller)
    old = buy(10, at=T0 - timedelta(days=400))
    with pytest.raises(ValidationError, match="expired"):
        services.move_pack(pack=old, to_team=sibling, now=T0)
    spent = buy(11)
    log("generative-design", T0)
    with pytest.raises(ValidationError, match="no tokens left"):
        services.move_pack(pack=spent, to_team=sibling, now=T0 + H)


def test_record_purchase_is_idempotent_on_reference_and_conflicts_on_other_data(team, personas):
    at = datetime(2026, 1, 1, tzinfo=UTC)
    pack, created = services.record_purchase(team=team, reference="PO-1", tokens=100, purchased_at=at, now=at)
    again, created_again = services.record_purchase(
        team=team, reference=" PO-1 ", tokens=100, purchased_at=at, now=at + H
    )
    assert (created, created_again, again.pk) == (True, False, pack.pk)
    for changed in ({"tokens": 101}, {"purchased_at": at + H}, {"price": Decimal("5")}, {"currency": "EUR"}):
        with pytest.raises(Conflict):
            services.record_purchase(
                team=team, **{"reference": "PO-1", "tokens": 100, "purchased_at": at, "now": at + H, **changed}
            )
    sibling = TeamFactory(reseller=team.reseller)
    with pytest.raises(Conflict):
        services.record_purchase(team=sibling, reference="PO-1", tokens=100, purchased_at=at, now=at)
    # References are unique per reseller: another reseller's customer may reuse it.
    _, other_created = services.record_purchase(
        team=personas.other_team, reference="PO-1", tokens=100, purchased_at=at, now=at
    )
    assert other_created
    assert LedgerEntry.objects.filter(pack=pack, kind=EntryKind.PURCHASE).count() == 1
    assert_ledger_balances()


def test_record_purchase_retry_without_a_purchase_time_returns_the_first_pack(team):
    pack, _ = services.record_purchase(team=team, reference="PO-2", tokens=100, now=T0)
    again, created = services.record_purchase(team=team, reference="PO-2", tokens=100, now=T0 + H)
    assert (again.pk, created, again.purchased_at) == (pack.pk, False, T0)
    assert TokenPack.objects.count() == 1


def test_purchase_outside_the_contract_is_refused(team):
    assert (team.contract_start, team.time_zone) == (date(2022, 1, 1), "Europe/Berlin")
    # The contract's days are the team's days: 23:30 UTC on New Year's Eve is 00:30 in Berlin.
    services.record_purchase(
        team=team, reference="IN", tokens=5, purchased_at=datetime(2021, 12, 31, 23, 30, tzinfo=UTC), now=T0
    )
    with pytest.raises(ValidationError, match="outside the contract"):
        services.record_purchase(
            team=team, reference="OUT", tokens=5, purchased_at=datetime(2021, 12, 31, 22, 30, tzinfo=UTC), now=T0
        )
    with pytest.raises(ValidationError, match="future"):
        services.record_purchase(team=team, reference="LATER", tokens=5, purchased_at=T0 + H, now=T0)
    for bad in (0, -5, 1.5, True):
        with pytest.raises(ValidationError):
            services.record_purchase(team=team, reference=f"BAD-{bad}", tokens=bad, now=T0)
    assert list(TokenPack.objects.values_list("reference", flat=True)) == ["IN"]


def test_pack_expires_twelve_months_after_purchase(team, settings):
    at = datetime(2026, 1, 15, 10, tzinfo=UTC)
    pack, _ = services.record_purchase(team=team, reference="A", tokens=5, purchased_at=at, now=at)
    assert pack.expires_at == datetime(2027, 1, 15, 10, tzinfo=UTC)
    leap = datetime(2024, 2, 29, 10, tzinfo=UTC)
    pack, _ = services.record_purchase(team=team, reference="B", tokens=5, purchased_at=leap, now=leap)
    assert pack.expires_at == datetime(2025, 2, 28, 10, tzinfo=UTC)
    settings.FLEX_PACK_TERM_MONTHS = 6
    pack, _ = services.record_purchase(team=team, reference="C", tokens=5, purchased_at=at, now=at)
    assert pack.expires_at == datetime(2026, 7, 15, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    "field,value",
    [
        ("id", "bad\x00id"),
        ("user", "\ud800@example.com"),
        ("product", "auto\x00cad"),
        ("started_at", "2026-03-02T08:00:00-20:02"),
        ("started_at", "0001-01-01T00:00:00+05:00"),
        ("started_at", "1859-03-02T08:00:00+00:00"),
    ],
)
def test_text_and_times_the_database_cannot_keep_are_refused_per_event(team, buy, personas, field, value):
    buy(100)
    valid = {
        "id": "fine-1",
        "user": personas.member.email,
        "product": "cfd-simulation",
        "variant": "simple",
        "started_at": "2026-03-02T08:00:00+00:00",
    }
    results = services.log_usage(
        team=team, events=[{**valid, "id": "bad-1", field: value}, valid], now=datetime(2026, 3, 2, 9, tzinfo=UTC)
    )
    assert results[0]["status"] == "error" and field in results[0]["error"]["fields"]
    assert results[1]["status"] == "charged"


def test_live_spending_below_the_low_balance_line_alerts_the_admins_after_commit(
    team, buy, personas, django_capture_on_commit_callbacks
):
    from accounts.models import Notification

    buy(100, at=datetime(2026, 3, 1, tzinfo=UTC))
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    jobs = [
        {
            "id": f"job-{n}",
            "user": personas.member.email,
            "product": "cfd-simulation",
            "variant": "complex",
            "started_at": (now - timedelta(hours=1)).isoformat(),
        }
        for n in range(3)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        services.log_usage(team=team, events=jobs[:2], now=now)  # 70 of 100 spent: 30% left
    assert not Notification.objects.filter(kind="low_balance").exists()
    with django_capture_on_commit_callbacks(execute=True):
        services.log_usage(team=team, events=jobs[2:], now=now)  # 105 > 100: denied, nothing spent
    assert not Notification.objects.filter(kind="low_balance").exists()
    with django_capture_on_commit_callbacks(execute=True):
        services.log_usage(
            team=team, events=[{**jobs[0], "id": "job-small", "variant": "moderate", "quantity": 2}], now=now
        )
    assert Notification.objects.filter(kind="low_balance", user=personas.primary_admin).count() == 1
