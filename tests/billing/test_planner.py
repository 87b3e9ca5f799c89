"""The purchase planner (``billing.planner``), with cases computed by hand, a property test,
and its inputs read for a team (``billing.plan_selectors``).

Conventions of the arithmetic below: every day from today to the contract's last day uses
the burn, today included; a pack pays nothing on its expiry day; balances are at the end of
the day; a purchase is proposed 7 days before the balance would run out; amounts are
multiples of 100, at least 100.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.plan_selectors import plan_inputs
from billing.planner import Lot, Proposal, Unused, plan_purchases

D = Decimal


def what_if(proposal: Proposal, tokens: int) -> Lot:
    """The proposal as a lot bought on its day, with another amount."""
    return Lot(remaining=D(tokens), expires_on=proposal.expires_on, starts_on=proposal.buy_on)


# --- hand-computed cases ---------------------------------------------------------------------------


def test_a_steady_burn_buys_once_a_week_before_the_balance_runs_out():
    plan = plan_purchases(
        today=date(2026, 6, 1),
        contract_end=date(2026, 12, 31),
        lots=[Lot(D(1000), date(2027, 3, 1), "A")],
        daily_burn=D(10),
    )

    # 1 June to 31 December: 30 + 31 + 31 + 30 + 31 + 30 + 31 = 214 days x 10 = 2,140 tokens.
    # A's 1,000 pay 100 days, 1 June to 8 September (30 + 31 + 31 + 8); 9 September is short.
    assert plan.runs_out_on == date(2026, 9, 9)
    # 9 September to 31 December: 22 + 31 + 30 + 31 = 114 days x 10 = 1,140 = 2,140 - 1,000.
    assert plan.shortfall == D("1140.00")
    # Bought 7 days before, on 2 September; it reaches past the contract, so 1,140 rounds up.
    assert plan.proposals == [
        Proposal(date(2026, 9, 2), 1200, date(2027, 9, 2), plan.proposals[0].why),
    ]
    assert "9 September 2026" in plan.proposals[0].why
    assert plan.runs_out_with_plan is None
    # 1,200 - 1,140 = 60 left on the new pack when the contract ends; nothing expires.
    assert plan.left_at_end == D("0.00")
    assert plan.left_at_end_with_plan == D("60.00")
    assert plan.expiring_unused == plan.expiring_unused_with_plan == D("0.00")
    assert plan.unavoidable == []
    assert plan.available == D("1000.00")


def test_one_step_less_than_the_proposal_would_run_out_before_the_contract_ends():
    lots = [Lot(D(1000), date(2027, 3, 1), "A")]
    args = {"today": date(2026, 6, 1), "contract_end": date(2026, 12, 31), "daily_burn": D(10)}
    proposal = plan_purchases(lots=lots, **args).proposals[0]

    # 1,100 from 9 September pay 110 days: to 27 December (22 + 31 + 30 + 27); short on the 28th.
    fewer = plan_purchases(lots=[*lots, what_if(proposal, 1100)], **args)
    assert fewer.runs_out_on == date(2026, 12, 28)
    # The proposal itself lasts: nothing left to buy.
    enough = plan_purchases(lots=[*lots, what_if(proposal, 1200)], **args)
    assert enough.runs_out_on is None
    assert enough.proposals == []
    # Every point of the projection with the plan holds tokens: the lowest is the 60 at the end.
    plan = plan_purchases(lots=lots, **args)
    assert min(p.with_plan for p in plan.points) == D("60.00")
    assert plan.points[-1].day == date(2026, 12, 31)
    assert plan.points[-1].without == D("0.00")


def test_a_contract_longer_than_a_pack_needs_two_purchases():
    plan = plan_purchases(
        today=date(2026, 1, 1),
        contract_end=date(2027, 6, 30),
        lots=[Lot(D(300), date(2026, 3, 1), "A")],
        daily_burn=D(10),
    )

    # A's 300 pay 1 to 30 January 2026 (30 days); the balance runs out on 31 January.
    assert plan.runs_out_on == date(2026, 1, 31)
    # 1 January 2026 to 30 June 2027: 365 + 181 = 546 days x 10 = 5,460; minus A's 300 = 5,160.
    assert plan.shortfall == D("5160.00")
    first, second = plan.proposals
    # Bought 24 January 2026, it expires 24 January 2027, before the contract's end. Its own
    # year, 24 January 2026 to 23 January 2027, is 365 days, of which 7 (24 to 30 January)
    # A still pays: 358 x 10 = 3,580, rounded DOWN to 3,500 so it is spent to the last token.
    assert (first.buy_on, first.tokens, first.expires_on) == (date(2026, 1, 24), 3500, date(2027, 1, 24))
    assert "rounded down" in first.why
    # 3,500 pay 350 days from 31 January 2026: to 15 January 2027 (335 days to 31 December,
    # plus 15). Short on 16 January 2027, so the second is bought on 9 January 2027.
    # 16 January to 30 June 2027: 16 + 28 + 31 + 30 + 31 + 30 = 166 days x 10 = 1,660 -> 1,700.
    assert (second.buy_on, second.tokens, second.expires_on) == (date(2027, 1, 9), 1700, date(2028, 1, 9))
    assert plan.runs_out_with_plan is None
    # 5,200 bought: the shortfall 5,160 rounded up to a hundred, the least any plan in hundreds
    # can buy. (Rounding the first up to 3,600 would lose 20 at its expiry and buy 5,300.)
    assert plan.tokens_to_buy == 5200
    assert plan.tokens_to_buy - 100 < plan.shortfall <= plan.tokens_to_buy
    assert plan.expiring_unused_with_plan == D("0.00")
    assert plan.left_at_end_with_plan == D("40.00")


def test_no_usage_proposes_nothing_and_says_so():
    plan = plan_purchases(
        today=date(2026, 6, 1),
        contract_end=date(2026, 12, 31),
        lots=[Lot(D(500), date(2026, 10, 1), "QUIET")],
        daily_burn=D(0),
    )

    assert plan.proposals == []
    assert plan.runs_out_on is None and plan.runs_out_with_plan is None
    assert any("No usage in the last 90 days" in w for w in plan.warnings)
    # Nothing spends QUIET's 500: all of them expire on 1 October, whatever is bought.
    assert plan.unavoidable == [Unused("QUIET", date(2026, 10, 1), D("500.00"))]
    assert plan.expiring_unused == D("500.00")
    assert [p.without for p in plan.points if p.day >= date(2026, 10, 1)] == [D("0.00")] * len(
        [p for p in plan.points if p.day >= date(2026, 10, 1)]
    )


def test_a_contract_ending_soon_buys_only_the_days_left():
    plan = plan_purchases(
        today=date(2026, 6, 1),
        contract_end=date(2026, 6, 10),
        lots=[Lot(D(20), date(2026, 9, 1), "A")],
        daily_burn=D(10),
    )

    # 1 to 10 June: 10 days x 10 = 100. A's 20 pay 1 and 2 June; short on 3 June. A week
    # before would be 27 May, before today: bought today. 3 to 10 June: 8 x 10 = 80, and the
    # smallest pack is 100.
    assert plan.runs_out_on == date(2026, 6, 3)
    assert [(p.buy_on, p.tokens) for p in plan.proposals] == [(date(2026, 6, 1), 100)]
    assert "rounded up to 100" in plan.proposals[0].why
    assert plan.runs_out_with_plan is None
    assert plan.left_at_end_with_plan == D("20.00")  # 100 - 80
    assert any("ends on 10 June 2026, 10 days from today" in w for w in plan.warnings)
    assert any("20 bought tokens are left" in w for w in plan.warnings)


def test_an_ended_contract_proposes_nothing():
    plan = plan_purchases(
        today=date(2026, 6, 1),
        contract_end=date(2026, 5, 31),
        lots=[Lot(D(20), date(2026, 9, 1), "A")],
        daily_burn=D(10),
    )

    assert plan.proposals == []
    assert any("contract ended on 31 May 2026" in w for w in plan.warnings)
    assert plan.points[0].without == plan.points[0].with_plan == D("20.00")


def test_a_pack_that_expires_unused_whatever_is_bought_is_named():
    plan = plan_purchases(
        today=date(2026, 6, 1),
        contract_end=date(2026, 12, 31),
        # Given out of order: the pay order, not the list, decides.
        lots=[Lot(D(1000), date(2027, 6, 1), "LATE"), Lot(D(500), date(2026, 6, 21), "EARLY")],
        daily_burn=D(10),
    )

    # EARLY pays first (earliest expiry): 1 to 20 June, 20 x 10 = 200; 300 lost on 21 June.
    assert plan.unavoidable == [Unused("EARLY", date(2026, 6, 21), D("300.00"))]
    assert plan.expiring_unused == plan.expiring_unused_with_plan == D("300.00")
    assert any(w.startswith("Pack EARLY will expire on 21 June 2026 with 300 tokens unused") for w in plan.warnings)
    # LATE's 1,000 pay 100 days from 21 June: 10 + 31 + 31 + 28, to 28 September.
    assert plan.runs_out_on == date(2026, 9, 29)
    # 29 September to 31 December: 2 + 31 + 30 + 31 = 94 days x 10 = 940 -> 1,000.
    assert [(p.buy_on, p.tokens) for p in plan.proposals] == [(date(2026, 9, 22), 1000)]
    assert plan.runs_out_with_plan is None
    # The expiry day is among the points: the balance drops by EARLY's 300 and that day's 10.
    by_day = {p.day: p for p in plan.points}
    assert by_day[date(2026, 6, 21)].without == D("990.00")  # 1,500 - 200 - 300 - 10


def test_without_a_contract_end_the_plan_looks_twelve_months_ahead():
    plan = plan_purchases(today=date(2026, 6, 1), contract_end=None, lots=[], daily_burn=D("2.50"))

    assert plan.horizon_end == date(2027, 5, 31)
    assert any("No contract end is known" in a for a in plan.assumptions)
    # No tokens: short today. 1 June 2026 to 31 May 2027 is 365 days x 2.50 = 912.50 -> 1,000.
    assert [(p.buy_on, p.tokens) for p in plan.proposals] == [(date(2026, 6, 1), 1000)]


def test_no_purchase_before_the_contract_starts():
    plan = plan_purchases(
        today=date(2026, 6, 1),
        contract_start=date(2026, 6, 15),
        contract_end=date(2026, 12, 31),
        lots=[Lot(D(50), date(2027, 1, 1), "A")],
        daily_burn=D(10),
    )

    # A pays 1 to 5 June; short from 6 June, but nothing can be bought before 15 June.
    assert plan.runs_out_on == date(2026, 6, 6)
    assert [p.buy_on for p in plan.proposals] == [date(2026, 6, 15)]
    assert plan.runs_out_with_plan == date(2026, 6, 6)
    assert any("before the contract starts on 15 June 2026" in w for w in plan.warnings)


def test_a_burn_resting_on_few_days_is_flagged():
    plan = plan_purchases(
        today=date(2026, 6, 1), contract_end=date(2026, 12, 31), lots=[], daily_burn=D(1), days_with_usage=3
    )

    assert any("3 days with usage" in w for w in plan.warnings)


def test_the_projection_is_about_weekly_and_bounded():
    plan = plan_purchases(today=date(2026, 1, 1), contract_end=date(2030, 12, 31), lots=[], daily_burn=D(10))

    # Five years, 1,826 days x 10 = 18,260, bought as 18,300 (rounded up to a hundred once).
    # Each pack is bought a week before the previous one runs dry, and each but the last is
    # rounded down, so the packs' years slide earlier: 3,600 on 1 January 2026 (360 days),
    # then 3,500 a year, and a sixth, small pack for the contract's last weeks.
    assert [(p.buy_on, p.tokens) for p in plan.proposals] == [
        (date(2026, 1, 1), 3600),
        (date(2026, 12, 20), 3500),
        (date(2027, 12, 5), 3500),
        (date(2028, 11, 19), 3500),
        (date(2029, 11, 4), 3500),
        (date(2030, 10, 20), 700),
    ]
    assert plan.shortfall == D("18260.00")
    assert plan.tokens_to_buy == 18300
    assert plan.runs_out_with_plan is None
    # At most 52 regular points over five years, plus the last day and the purchase days.
    assert len(plan.points) <= 52 + 1 + len(plan.proposals)
    assert {p.buy_on for p in plan.proposals} <= {p.day for p in plan.points}


# --- property --------------------------------------------------------------------------------------

days_offsets = st.integers(min_value=-3, max_value=400)
amounts = st.decimals(min_value=0, max_value=5000, places=2, allow_nan=False, allow_infinity=False)


@settings(max_examples=150, deadline=None)
@given(
    today=st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)),
    contract_days=st.integers(min_value=-5, max_value=1100),
    lots=st.lists(st.tuples(amounts, days_offsets), max_size=5),
    burn=st.decimals(min_value=0, max_value=300, places=2, allow_nan=False, allow_infinity=False),
    step=st.sampled_from([1, 10, 100, 500]),
    min_pack=st.sampled_from([1, 100, 1000]),
    lead_days=st.integers(min_value=0, max_value=14),
)
def test_the_plan_covers_the_contract_and_buys_only_inside_it(
    today, contract_days, lots, burn, step, min_pack, lead_days
):
    contract_end = today + timedelta(days=contract_days)
    plan = plan_purchases(
        today=today,
        contract_end=contract_end,
        lots=[Lot(amount, today + timedelta(days=offset), f"P{n}") for n, (amount, offset) in enumerate(lots)],
        daily_burn=burn,
        step=step,
        min_pack=min_pack,
        lead_days=lead_days,
    )

    if burn > 0 and contract_end >= today:
        assert plan.runs_out_with_plan is None
    for proposal in plan.proposals:
        assert today <= proposal.buy_on <= contract_end
        assert proposal.tokens >= min_pack and proposal.tokens % step == 0
        assert proposal.expires_on == proposal.buy_on + relativedelta(months=12)
    assert [p.buy_on for p in plan.proposals] == sorted(p.buy_on for p in plan.proposals)
    assert plan.tokens_to_buy >= plan.shortfall
    if not plan.shortfall:
        assert plan.proposals == []
    # Buying never takes tokens away, nor changes what the current packs lose.
    assert all(p.with_plan >= p.without >= 0 for p in plan.points)
    assert plan.expiring_unused_with_plan >= plan.expiring_unused


# --- the inputs, read for a team --------------------------------------------------------------------

NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)  # 12:00 in Berlin, the personas' team's zone
DAY = timedelta(days=1)


def revit_on(log, days_back: list[int]) -> None:
    """Revit (10 tokens a day) once on each of those days before NOW, a minute later each day
    so that no launch falls inside the previous day's window."""
    for n, back in enumerate(sorted(days_back, reverse=True)):
        start = NOW - back * DAY - timedelta(hours=1) + timedelta(minutes=n)
        log("revit", start, start + timedelta(minutes=30))


def test_plan_inputs_average_the_last_90_whole_days_and_list_the_active_packs(
    team, buy, log, django_assert_num_queries
):
    buy(2000, at=NOW - 100 * DAY, reference="MAIN")  # expires 21 February 2027, 11:00 in Berlin
    buy(50, at=datetime(2025, 5, 1, tzinfo=UTC), reference="OLD")  # expired 1 May 2026
    # 23:30 UTC is already 30 May in Berlin: the expiry's day is the team's.
    buy(300, at=datetime(2026, 5, 29, 23, 30, tzinfo=UTC), reference="LATE-NIGHT")
    # 91 days back (2 March: outside the window, paid by OLD), 9 days inside, and today (not over).
    revit_on(log, [91, *range(1, 10), 0])

    with django_assert_num_queries(2):
        inputs = plan_inputs(team=team, now=NOW)

    assert inputs.today == date(2026, 6, 1)
    # 3 March to 31 May: 90 days, 9 of them with 10 tokens: 90 / 90 = 1.00 a day.
    assert inputs.burn_days == 90
    assert inputs.days_with_usage == 9
    assert inputs.daily_burn == D("1.00")
    # MAIN paid the ten days since OLD expired (9 in the window and today): 2,000 - 100.
    assert inputs.lots == [
        Lot(D("1900.00"), date(2027, 2, 21), "MAIN"),
        Lot(D("300.00"), date(2027, 5, 30), "LATE-NIGHT"),
    ]
    assert (inputs.contract_start, inputs.contract_end) == (team.contract_start, team.contract_end)
    plan = inputs.plan(step=100)
    assert plan.daily_burn == D("1.00")
    assert plan.available == D("2200.00")


def test_a_contract_that_began_within_the_window_averages_over_its_own_days(team, buy, log):
    buy(2000, at=NOW - 100 * DAY, reference="MAIN")
    revit_on(log, [1, 2, 3])
    team.contract_start = date(2026, 5, 2)  # 30 whole days before today
    team.save(update_fields=["contract_start"])

    inputs = plan_inputs(team=team, now=NOW)

    # 2 to 31 May: 30 days; 30 tokens / 30 = 1.00 a day (not 30 / 90).
    assert inputs.burn_days == 30
    assert inputs.daily_burn == D("1.00")


def test_a_team_without_usage_plans_nothing(team, buy):
    buy(500, at=NOW - 10 * DAY, reference="IDLE")

    plan = plan_inputs(team=team, now=NOW).plan()

    assert plan.daily_burn == D("0.00")
    assert plan.proposals == []
    assert any("No usage in the last 90 days" in w for w in plan.warnings)


def test_a_step_of_zero_is_refused():
    with pytest.raises(ValueError, match="step"):
        plan_purchases(today=date(2026, 6, 1), contract_end=None, lots=[], daily_burn=D(1), step=0)
