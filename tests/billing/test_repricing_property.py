"""Charges depend on what happened, not on when it arrived (issue 13; docs/charging.md,
"Re-pricing"): a Hypothesis property test.

Each example makes a set of events: overlapping daily sessions of two users and two
products around window ends, per-result jobs around a pack's expiry and around the cloud
credit cutoff (both within the live age limit), and refunds; with a balance that covers
them all. It logs them (a) in one batch in time order, and (b) in a random permutation
split into random batches, with (c) the expiry jobs run at random points in between; the
refunds come after the events in both. The balances, each pack's remaining tokens, the
credits left and the tokens per user, product and day must be the same, and equal to the
reference model's (``reference_model``, one batch). The ledger check stays clean.

``FLEX_HYPOTHESIS_EXAMPLES`` sets the number of examples (200 by default).
"""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Membership, Role
from billing import services
from billing.models import CloudCreditBalance, TokenPack, UsageRollup
from billing.selectors import ledger_check
from tests.billing import reference_model as rm
from tests.factories import ResellerFactory, TeamFactory, UserFactory

EXAMPLES = int(os.environ.get("FLEX_HYPOTHESIS_EXAMPLES", "200"))
M = timedelta(minutes=1)
H = timedelta(hours=1)
CUTOFF = rm.CLOUD_CREDITS_EXPIRE_AT  # the default FLEX_CLOUD_CREDITS_EXPIRE_AT
NOW = CUTOFF + 20 * H  # the cutoff lies inside the live age limit
EARLIEST = NOW - 47 * H
_unique = itertools.count(1)

minutes = st.integers(0, 47 * 60)


@st.composite
def scenarios(draw):
    expiry = NOW - draw(st.integers(60, 46 * 60)) * M  # the small pack expires in the window
    anchors = [expiry, CUTOFF, EARLIEST + draw(minutes) * M]

    def near(anchor_list):
        base = draw(st.sampled_from(anchor_list), label="anchor")
        offset = draw(st.sampled_from([-61, -1, 0, 1, 59]) | st.integers(-600, 600), label="offset")
        return min(max(base + offset * M, EARLIEST), NOW)

    events = []
    for n in range(draw(st.integers(1, 12), label="events")):
        user = draw(st.sampled_from([0, 0, 1]), label="user")
        kind = draw(st.sampled_from(["daily", "daily", "job", "job", "free"]), label="kind")
        start = near(anchors) if draw(st.booleans()) else EARLIEST + draw(minutes) * M
        event = {"id": f"e{n}", "user": user, "started_at": start}
        if kind == "daily":
            # Around window ends: sessions of minutes to more than a day.
            length = draw(st.sampled_from([4, 5, 60, 23 * 60, 24 * 60, 24 * 60 + 1, 30 * 60]), label="minutes")
            event.update(product=draw(st.sampled_from(["autocad", "revit"])), ended_at=min(start + length * M, NOW))
        elif kind == "job":
            product = draw(st.sampled_from(["cfd-simulation", "generative-design", "design-automation"]))
            event.update(product=product, quantity=draw(st.sampled_from(["1", "2", "0.5"])))
            if product == "cfd-simulation":
                event.update(variant=draw(st.sampled_from(["simple", "moderate", "complex"])), quantity="1")
        else:
            event.update(product="cloud-rendering")
        events.append(event)
    jobs = [e["id"] for e in events if e["product"] in ("cfd-simulation", "generative-design", "design-automation")]
    refunds = draw(st.lists(st.sampled_from(jobs), unique=True, max_size=2)) if jobs else []
    # (b) a permutation in random batches; (c) the expiry jobs at random points (0: before the first).
    order = draw(st.permutations(range(len(events))), label="order")
    cuts = sorted(draw(st.sets(st.integers(1, max(len(events) - 1, 1)), max_size=4), label="cuts"))
    jobs_at = draw(st.sets(st.integers(0, 4), max_size=3), label="expiry_jobs_before_batch")
    return {
        "expiry": expiry,
        "small": draw(st.integers(5, 60), label="small_pack"),
        "credits": draw(st.sampled_from([Decimal("0"), Decimal("5"), Decimal("12"), Decimal("40")])),
        "events": events,
        "refunds": refunds,
        "order": order,
        "cuts": cuts,
        "jobs_at": jobs_at,
    }


def _set_up(s):
    n = next(_unique)
    team = TeamFactory(slug=f"prop-{n}", reseller=ResellerFactory(slug=f"prop-reseller-{n}"))
    emails = []
    for i in range(2):
        user = UserFactory(email=f"u{i}-{n}@prop.example")
        Membership.objects.create(user=user, team=team, role=Role.PRIMARY_ADMIN if i == 0 else Role.MEMBER)
        services.assign_flex(team=team, user=user, products="all", actor=None, at=datetime(2022, 1, 1, tzinfo=UTC))
        emails.append(user.email)
    packs = [("SMALL", s["small"], s["expiry"] - relativedelta(months=12)), ("BIG", 10_000, NOW - 100 * 24 * H)]
    for reference, tokens, at in packs:
        services.record_purchase(team=team, reference=reference, tokens=tokens, purchased_at=at, now=NOW)
    if s["credits"]:
        services.grant_cloud_credits(team=team, credits=s["credits"], granted_at=CUTOFF - 30 * 24 * H)
    return team, emails


def _raw(event, emails) -> dict:
    raw = {**event, "user": emails[event["user"]], "started_at": event["started_at"].isoformat()}
    if "ended_at" in event:
        raw["ended_at"] = event["ended_at"].isoformat()
    return raw


def _state(team) -> dict:
    index = {m.user_id: int(m.user.email[1]) for m in Membership.objects.filter(team=team).select_related("user")}
    return {
        "packs": dict(TokenPack.objects.filter(team=team).values_list("reference", "remaining")),
        "credits": sorted(CloudCreditBalance.objects.filter(team=team).values_list("remaining", flat=True)),
        "usage": {
            (day, product, index[user_id]): (tokens, credits)
            for day, product, user_id, tokens, credits in UsageRollup.objects.filter(team=team).values_list(
                "day", "product", "user_id", "tokens", "cloud_credits"
            )
            if tokens or credits
        },
    }


def _run(s, *, in_order: bool) -> dict:
    sid = transaction.savepoint()
    try:
        team, emails = _set_up(s)
        events = [_raw(e, emails) for e in s["events"]]
        if in_order:  # (a) one batch in time order, the expiry jobs after it
            batches, jobs_before = [sorted(events, key=lambda e: (e["started_at"], e["id"]))], set()
        else:  # (b) a permutation in random batches, (c) the expiry jobs before some of them
            permuted = [events[i] for i in s["order"]]
            edges = [0, *[c for c in s["cuts"] if c < len(events)], len(events)]
            batches = [permuted[a:b] for a, b in itertools.pairwise(edges) if b > a]
            jobs_before = s["jobs_at"]
        for number, batch in enumerate(batches):
            if number in jobs_before:
                services.expire_packs(now=NOW)
                services.expire_cloud_credits(now=NOW)
            results = services.log_usage(team=team, events=batch, now=NOW)
            # Valid events, and the balance covers them all.
            assert all(r["status"] not in ("error", "denied") for r in results), results
        for event_id in s["refunds"]:
            services.refund_usage(team=team, event_id=event_id, now=NOW)
        services.expire_packs(now=NOW)
        services.expire_cloud_credits(now=NOW)
        check = ledger_check(now=NOW)
        assert check.ok, check.violations
        return _state(team)
    finally:
        transaction.savepoint_rollback(sid)


def _model(s) -> dict:
    emails = ["u0", "u1"]
    model = rm.FlexModel(members=emails)
    for email in emails:
        model.assign_flex(user=email, products="all", at=datetime(2022, 1, 1, tzinfo=UTC))
    model.record_purchase(reference="SMALL", tokens=s["small"], purchased_at=s["expiry"] - relativedelta(months=12))
    model.record_purchase(reference="BIG", tokens=10_000, purchased_at=NOW - 100 * 24 * H)
    if s["credits"]:
        model.grant_cloud_credits(key=1, credits=s["credits"], granted_at=CUTOFF - 30 * 24 * H)
    events = [
        rm.Event(
            id=e["id"],
            user=emails[e["user"]],
            product=e["product"],
            started_at=e["started_at"],
            ended_at=e.get("ended_at"),
            variant=e.get("variant", ""),
            quantity=Decimal(e.get("quantity", "1")),
        )
        for e in s["events"]
    ]
    model.log_usage(sorted(events, key=lambda e: (e.started_at, e.id)), now=NOW)
    for event_id in s["refunds"]:
        model.refund_usage(event_id=event_id, now=NOW)
    model.expire_packs(now=NOW)
    model.expire_cloud_credits(now=NOW)
    return {
        "packs": {r: p.remaining for r, p in model.packs.items()},
        "credits": sorted(c.remaining for c in model.credits.values()),
        "usage": {
            (day, product, int(user[1])): (g.tokens, g.cloud_credits)
            for (day, product, user), g in model.nonempty_rollups().items()
            if g.tokens or g.cloud_credits
        },
    }


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
@given(s=scenarios())
def test_the_outcome_is_the_same_whatever_the_arrival_order_batches_and_expiry_job_times(db, s):
    in_order = _run(s, in_order=True)
    shuffled = _run(s, in_order=False)
    assert shuffled == in_order
    assert in_order == _model(s)
