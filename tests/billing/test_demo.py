"""The demo's packs are placed relative to the day it is seeded, so that the Flex tokens
page always has something to show: a recent purchase, a pack expiring within 90 days, one
that expired within the last 90 days, and a history back to the day tokens began."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

import pytest
from dateutil.relativedelta import relativedelta

from billing.demo import PLANS, TOKENS_START, pack_schedule


@pytest.mark.parametrize("today", [date(2026, 11, 28), date(2027, 5, 3), date(2028, 2, 29)])
@pytest.mark.parametrize("plan", PLANS, ids=lambda plan: plan.slug)
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
