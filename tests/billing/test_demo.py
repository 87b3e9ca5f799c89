"""The demo's packs are placed relative to the day it is seeded, so that the Flex tokens
page always has something to show: a recent purchase, a pack expiring within 90 days, one
that expired within the last 90 days, and a history back to the day tokens began."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

import pytest
from dateutil.relativedelta import relativedelta

from accounts.demo import RESELLERS, TEAMS
from accounts.models import SalesRep, Team
from billing.customer_selectors import customer_balance_check, customer_list
from billing.demo import PLANS, TOKENS_START, pack_schedule, seed_usage
from billing.management.commands.seed_demo import Command


@pytest.mark.parametrize("today", [date(2026, 11, 28), date(2027, 5, 3), date(2028, 2, 29)])
@pytest.mark.parametrize("plan", [p for p in PLANS if not p.history_days], ids=lambda plan: plan.slug)
def test_every_seed_day_shows_a_recent_purchase_a_pack_expiring_soon_and_a_recent_expiry(plan, today):
    packs = pack_schedule(plan, today=today)
    bought = [day for day, _ in packs]
    expires = [day + relativedelta(months=12) for day in bought]

    assert bought == sorted(bought) and bought[0] == TOKENS_START
    assert any(today - timedelta(days=90) <= day <= today for day in bought)
    assert any(today < end <= today + timedelta(days=90) for end in expires)
    assert any(today - timedelta(days=90) <= end <= today for end in expires)
    # No gap in the history longer than a pack lasts.
    assert all(later - earlier < timedelta(days=365) for earlier, later in pairwise(bought))


def test_alders_small_customers_have_a_short_history_of_their_recent_packs_only():
    """Initech and Northwind (billing/demo.py): a first pack where their history starts, no
    older packs, so that seeding stays fast."""
    today = date(2026, 12, 6)
    for plan in PLANS:
        if not plan.history_days:
            continue
        packs = pack_schedule(plan, today=today)
        assert packs[0][0] == today - timedelta(days=plan.history_days)
        assert len(packs) == len(plan.recent)


@pytest.mark.django_db
def test_the_demo_rep_has_customers_in_every_state_and_two_to_move_between():
    Command()._seed()
    seed_usage(slugs={"initech-architects", "northwind-survey"})
    rep = SalesRep.objects.get(user__email=RESELLERS[0]["rep"][0])
    alder = [spec["slug"] for spec in TEAMS if spec["reseller"] == rep.reseller.slug]
    assert len(alder) >= 2  # a pack can move between two of them
    rows = {team.slug: team for team in customer_list(teams=Team.objects.filter(slug__in=alder))}
    assert customer_balance_check(rows["initech-architects"]).is_low
    assert rows["initech-architects"].available > 0  # low, not yet empty
    assert not customer_balance_check(rows["northwind-survey"]).is_low
    assert rows["northwind-survey"].expiring == 0  # healthy: nothing expiring within 90 days
