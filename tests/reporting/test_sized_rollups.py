"""The rollups sized to a question (per day and product, per day, per month, product and
person, per month and person) answer every report as the daily rollup does, whatever the
range: a Hypothesis property test.

Each example writes random usage through ``billing.rollups.RollupDelta`` in random batches
(charges, refusals, uses that charge nothing), then takes some of it back in later batches as
re-pricing and refunds do (negative changes, people who stop being charged on a day), and
asks every report selector about random ranges: whole months, days around them, open ends.
Each answer must equal what a plain reading of the daily rollup gives (``expected``), and
the ledger check's comparison of the sized rollups must be clean.

``FLEX_HYPOTHESIS_EXAMPLES`` sets the number of examples (200 by default).
"""

from __future__ import annotations

import os
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import UsageRollup
from billing.rollups import RollupDelta
from billing.selectors import sized_rollup_violations
from reporting import selectors
from tests.factories import TeamFactory, UserFactory

EXAMPLES = int(os.environ.get("FLEX_HYPOTHESIS_EXAMPLES", "200"))
FIRST = date(2026, 1, 20)  # usage on 100 days from here: four months, none of them whole at both ends
DAYS = 100
PRODUCTS = ["autocad", "cfd-simulation", "revit"]

usage = st.tuples(
    st.integers(0, DAYS - 1),  # day
    st.sampled_from(PRODUCTS),
    st.integers(0, 2),  # person
    st.sampled_from([Decimal(0), Decimal("7.50"), Decimal(25)]),  # tokens
    st.sampled_from([Decimal(0), Decimal(3)]),  # cloud credits
    st.sampled_from([0, 1, 1, 2]),  # charges
    st.sampled_from([0, 0, 1]),  # denials
)
day_in_range = st.one_of(st.none(), st.integers(-5, DAYS + 5).map(lambda n: FIRST + timedelta(days=n)))
month_start = st.integers(0, 4).map(lambda n: date(2026, 1 + n, 1))
ranges = st.one_of(
    st.tuples(day_in_range, day_in_range),
    st.tuples(
        month_start,
        month_start.map(lambda d: (d.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)),
    ),
)


def _write(team, people, batches, taken_back) -> None:
    """The batches, then one batch taking back some of what they wrote (each item once)."""
    written = [item for batch in batches for item in batch]
    back = [written[i] for i in sorted({i % len(written) for i in taken_back})]
    for batch, sign in [*((batch, 1) for batch in batches), (back, -1)]:
        delta = RollupDelta(team)
        for day, product, person, tokens, credits, charges, denials in batch:
            moment = datetime.combine(FIRST + timedelta(days=day), time(12), tzinfo=team.tz)
            delta.add(
                moment,
                product,
                people[person].pk,
                tokens=sign * tokens,
                credits=sign * credits,
                charges=sign * charges,
                denials=sign * denials,
            )
        delta.save(now=datetime(2026, 6, 1, tzinfo=UTC))


def expected(team, start, end, product=None, user_id=None) -> dict:
    """Every report's numbers from the daily rollup, plainly."""
    rows = UsageRollup.objects.filter(team=team)
    if start is not None:
        rows = rows.filter(day__gte=start)
    if end is not None:
        rows = rows.filter(day__lte=end)
    if product:
        rows = rows.filter(product=product)
    if user_id is not None:
        rows = rows.filter(user_id=user_id)
    per = {name: defaultdict(lambda: defaultdict(Decimal)) for name in ("product", "user", "day")}
    used = {name: defaultdict(set) for name in ("product", "user", "day", "user_days")}
    totals = defaultdict(Decimal)
    for row in rows:
        amounts = {"tokens": row.tokens, "cloud_credits": row.cloud_credits, "charges": row.charges}
        amounts["denials"] = row.denials
        for name, key in (("product", row.product), ("user", row.user_id), ("day", row.day)):
            for field, value in amounts.items():
                per[name][key][field] += value
                totals[field] += value if name == "product" else 0
        if row.charges:
            used["product"][row.product].add(row.user_id)
            used["user"][row.user_id].add(row.product)
            used["user_days"][row.user_id].add(row.day)
            used["day"][row.day].add((row.user_id, row.product))
    return {"per": per, "used": used, "totals": totals}


def _check(team, start, end, product=None, user_id=None) -> None:
    want = expected(team, start, end, product, user_id)
    selection = {"team": team, "start": start, "end": end, "product": product, "user_id": user_id}
    totals = selectors.usage_totals(**selection)
    assert {k: totals[k] for k in ("tokens", "cloud_credits", "charges", "denials")} == {
        k: want["totals"][k] for k in ("tokens", "cloud_credits", "charges", "denials")
    }
    assert totals["users"] == len({u for users in want["used"]["product"].values() for u in users})
    assert totals["products"] == len(want["used"]["product"])

    by_product = {row["product"]: row for row in selectors.usage_by_product(**selection)}
    assert by_product.keys() == want["per"]["product"].keys()
    for code, row in by_product.items():
        assert row["tokens"] == want["per"]["product"][code]["tokens"]
        assert (row["charges"], row["denials"]) == (
            want["per"]["product"][code]["charges"],
            want["per"]["product"][code]["denials"],
        )
        assert row["users"] == len(want["used"]["product"][code])

    by_user = {row["user_id"]: row for row in selectors.usage_by_user(**selection)}
    assert by_user.keys() == want["per"]["user"].keys()
    for user, row in by_user.items():
        assert (row["tokens"], row["cloud_credits"]) == (
            want["per"]["user"][user]["tokens"],
            want["per"]["user"][user]["cloud_credits"],
        )
        assert row["products"] == len(want["used"]["user"][user])
        assert row["days"] == len(want["used"]["user_days"][user])
        assert row["last_used"] == max(want["used"]["user_days"][user], default=None)

    by_day = {row["day"]: row for row in selectors.usage_by_day(**selection)}
    assert by_day.keys() == want["per"]["day"].keys()
    for day, row in by_day.items():
        assert (row["tokens"], row["charges"], row["denials"]) == tuple(
            want["per"]["day"][day][k] for k in ("tokens", "charges", "denials")
        )
        assert row["users"] == len({u for u, _ in want["used"]["day"][day]})
        assert row["products"] == len({p for _, p in want["used"]["day"][day]})

    chart = defaultdict(Decimal)
    for row in selectors.tokens_by_day_and_product(**selection):
        chart[row["day"]] += row["sum_tokens"]
    assert {d: t for d, t in chart.items() if t} == {
        d: v["tokens"] for d, v in want["per"]["day"].items() if v["tokens"]
    }
    denials = sum(row["denials"] for row in selectors.denials_by_day(**selection))
    assert denials == want["totals"]["denials"]


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    batches=st.lists(st.lists(usage, min_size=1, max_size=12), min_size=1, max_size=4),
    taken_back=st.lists(st.integers(0, 40), max_size=6, unique=True),
    asked=st.lists(ranges, min_size=1, max_size=3),
    product=st.sampled_from([None, None, "revit"]),
    person=st.sampled_from([None, None, 1]),
)
def test_sized_rollups_answer_as_the_daily_rollup(db, batches, taken_back, asked, product, person):
    sid = transaction.savepoint()
    try:
        team = TeamFactory(time_zone="Europe/Berlin")
        people = [UserFactory() for _ in range(3)]
        _write(team, people, batches, taken_back)
        assert sized_rollup_violations() == []
        for start, end in asked:
            _check(team, start, end)
            _check(team, start, end, product=product, user_id=people[person].pk if person is not None else None)
    finally:
        transaction.savepoint_rollback(sid)
