"""The demo's token history: packs, legacy cloud credits, Flex assignments and usage from
March 2022 to today, replayed through the real charging code (``log_usage``) in time
order, with the expiry jobs run as the clock passes. Deterministic: a fixed random seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.utils import timezone

from accounts.models import Membership, Role, Team
from billing import services
from billing.models import UsageEvent

START = date(2022, 3, 1)
TOKENS_START = date(2022, 3, 29)  # desktop products are paid in tokens from this day on


@dataclass(frozen=True)
class TeamPlan:
    slug: str
    credits: Decimal  # legacy cloud credits granted on START
    # Packs are placed relative to the day the demo is seeded, so that whenever it is
    # seeded the Flex tokens page shows a recent purchase, a pack expiring within 90 days
    # and, within the last 90 days, one that expired with tokens left: ``recent`` are
    # (days before the seed day, tokens), newest first; before them a pack every
    # ``PACK_EVERY_DAYS`` of ``older_tokens`` (cycled) back to TOKENS_START, which has one.
    recent: list[tuple[int, int]]
    older_tokens: list[int]
    daily_products: list[str]
    busy: float  # chance a member works with a desktop product on a working day
    unassigned: tuple[str, ...]  # members without a Flex assignment (their launches are denied)
    only: dict[str, list[str]]  # members assigned to a list of products only
    # A short history: its first pack ``history_days`` before the seed day (the oldest of
    # ``recent``), usage from the next day on, no older packs and no cloud credits. 0: since START.
    history_days: int = 0


PACK_EVERY_DAYS = 182
# A pay-per-result job that failed is refunded (by the vendor's support) at the end of its week.
FAILED_JOB_CHANCE = 0.2

PLANS = [
    TeamPlan(
        slug="acme-engineering",
        credits=Decimal("400"),
        recent=[(24, 2500), (296, 1500), (423, 3000)],
        older_tokens=[2000, 2500, 2000, 2500],
        daily_products=["autocad", "autocad", "civil-3d", "navisworks"],
        busy=0.3,
        unassigned=("gus.olsen@acme.example",),
        only={"farah.haddad@acme.example": ["autocad", "cloud-rendering"]},
    ),
    TeamPlan(
        slug="globex-design",
        credits=Decimal("900"),
        recent=[(41, 4000), (310, 2000), (402, 4000)],
        older_tokens=[3500, 3000, 3500, 3000],
        daily_products=["revit", "revit", "autocad", "inventor"],
        busy=0.45,
        unassigned=(),
        only={"marco.rossi@globex.example": ["revit", "cfd-simulation", "cloud-rendering"]},
    ),
    # Alder's small customers, in the states a rep watches for (whenever the demo is seeded):
    # Initech burns about 11 tokens a day from one pack of 1,700: low (under 20% left) by now.
    TeamPlan(
        slug="initech-architects",
        credits=Decimal(0),
        recent=[(118, 1700)],
        older_tokens=[],
        daily_products=["revit", "autocad"],
        busy=0.55,
        unassigned=(),
        only={},
        history_days=118,
    ),
    # Northwind: light use, a pack bought a month ago, nothing expiring within 90 days.
    TeamPlan(
        slug="northwind-survey",
        credits=Decimal(0),
        recent=[(30, 3000), (200, 1000)],
        older_tokens=[],
        daily_products=["autocad"],
        busy=0.3,
        unassigned=(),
        only={},
        history_days=200,
    ),
]


def pack_schedule(plan: TeamPlan, *, today: date) -> list[tuple[date, int]]:
    """The plan's purchases (day, tokens), oldest first, for a demo seeded on ``today``."""
    packs = [(today - timedelta(days=age), tokens) for age, tokens in plan.recent]
    if plan.history_days:
        return sorted(packs)
    age, n = plan.recent[-1][0] + PACK_EVERY_DAYS, 0
    while today - timedelta(days=age) > TOKENS_START + timedelta(days=PACK_EVERY_DAYS // 2):
        packs.append((today - timedelta(days=age), plan.older_tokens[n % len(plan.older_tokens)]))
        age, n = age + PACK_EVERY_DAYS, n + 1
    packs.append((TOKENS_START, plan.older_tokens[n % len(plan.older_tokens)]))
    return sorted(p for p in packs if p[0] >= TOKENS_START)


def _local(day: date, hour: float, tz) -> datetime:
    base = datetime.combine(day, time(0), tzinfo=tz)
    return (base + timedelta(hours=hour)).astimezone(UTC)


def _events(
    team: Team, plan: TeamPlan, members: list[str], until: date, rng: random.Random, start: date = START
) -> Iterator[dict]:
    """Plausible usage, day by day from ``start``, in the team's time zone."""
    tz = team.tz
    serial = 0
    day = start
    while day <= until:
        weekday = day.weekday() < 5
        for email in members:
            # Somebody without an assignment tries now and then (and is denied).
            busy = plan.busy / 6 if email in plan.unassigned else plan.busy
            if not weekday or (day < TOKENS_START and rng.random() > 0.03) or rng.random() > busy:
                continue
            choices = [p for p in plan.daily_products if p in plan.only.get(email, plan.daily_products)]
            product = rng.choice(choices)
            start = 7.5 + rng.random() * 3
            kind = rng.random()
            if kind < 0.06:
                length = rng.uniform(0.02, 0.07)  # a quick look: under the grace period
            elif kind < 0.10:
                length = rng.uniform(20, 30)  # left running overnight: outlives its window
            else:
                length = rng.uniform(1.5, 8.5)
            serial += 1
            yield {
                "id": f"demo-{serial}",
                "user": email,
                "product": product,
                "started_at": _local(day, start, tz),
                "ended_at": _local(day, start + length, tz),
            }
            if rng.random() < 0.12:  # a second product the same day
                serial += 1
                second = _local(day, start + length + 0.5, tz)
                yield {
                    "id": f"demo-{serial}",
                    "user": email,
                    "product": "autocad" if product != "autocad" else "revit",
                    "started_at": second,
                    "ended_at": second + timedelta(hours=rng.uniform(0.5, 3)),
                }
            if rng.random() < 0.05:
                serial += 1
                yield {
                    "id": f"demo-{serial}",
                    "user": email,
                    "product": "cfd-simulation",
                    "variant": rng.choice(["simple", "simple", "moderate", "complex"]),
                    "started_at": _local(day, 14 + rng.random() * 3, tz),
                    "quantity": rng.choice([1, 1, 2]),
                    "failed": rng.random() < FAILED_JOB_CHANCE,
                }
            if rng.random() < 0.015:
                serial += 1
                yield {
                    "id": f"demo-{serial}",
                    "user": email,
                    "product": "generative-design",
                    "started_at": _local(day, 15, tz),
                }
            if rng.random() < 0.02:
                serial += 1
                yield {
                    "id": f"demo-{serial}",
                    "user": email,
                    "product": "design-automation",
                    "started_at": _local(day, 16, tz),
                    "quantity": rng.choice(["0.5", "1.5", "3"]),
                }
            if rng.random() < 0.04:
                serial += 1
                yield {
                    "id": f"demo-{serial}",
                    "user": email,
                    "product": "cloud-rendering",
                    "started_at": _local(day, 12, tz),
                }
        day += timedelta(days=1)


def seed_usage(
    *,
    until: datetime | None = None,
    progress: Callable[[int, str], None] | None = None,
    slugs: set[str] | None = None,
) -> int:
    """Replay the demo history for each demo team that has none yet (of ``slugs`` only, when
    given: the browser tests replay the small customers); returns events logged."""
    until = until or timezone.now()
    total = 0
    for plan in PLANS:
        if slugs is not None and plan.slug not in slugs:
            continue
        team = Team.objects.filter(slug=plan.slug).first()
        if team is None or UsageEvent.objects.filter(team=team).exists():
            continue
        rng = random.Random(f"flexadmin-demo-{plan.slug}")
        admin = Membership.objects.filter(team=team, role=Role.PRIMARY_ADMIN).select_related("user").first()
        actor = admin.user if admin else None
        members = list(
            Membership.objects.filter(team=team, role__in=[Role.MEMBER, Role.SECONDARY_ADMIN, Role.PRIMARY_ADMIN])
            .order_by("user__email")
            .values_list("user__email", flat=True)
        )
        today = timezone.localtime(until, team.tz).date()
        first_day = today - timedelta(days=plan.history_days) if plan.history_days else START
        start_at = _local(first_day, 9, team.tz)
        if plan.credits:
            services.grant_cloud_credits(team=team, credits=plan.credits, granted_at=start_at, actor=None)
        for membership in Membership.objects.filter(team=team).select_related("user"):
            email = membership.user.email
            if email in plan.unassigned or membership.role == Role.REPORT_VIEWER:
                continue
            services.assign_flex(
                team=team, user=membership.user, products=plan.only.get(email, "all"), actor=actor, at=start_at
            )
        purchases = [
            (_local(day, 10, team.tz), tokens)
            for day, tokens in pack_schedule(plan, today=today)
            if team.contract_start <= day <= team.contract_end
        ]
        # A short history's usage starts the day after its first pack (bought at 10:00).
        events_from = first_day + timedelta(days=1) if plan.history_days else START
        events = list(_events(team, plan, members, today, rng, start=events_from))
        events = [e for e in events if (e.get("ended_at") or e["started_at"]) <= until]
        # Replay week by week: purchases and expiries happen as the clock passes them.
        week: list[dict] = []
        week_end = start_at + timedelta(days=7)
        for event in [*events, None]:
            if event is None or event["started_at"] >= week_end:
                # A pack pays only from its purchase time on, so recording the week's
                # purchases before its events changes nothing for the earlier ones.
                while purchases and purchases[0][0] < week_end:
                    at, tokens = purchases.pop(0)
                    if at <= until:
                        services.record_purchase(
                            team=team,
                            reference=f"{plan.slug.upper()}-{at:%Y%m%d}",
                            tokens=tokens,
                            purchased_at=at,
                            actor=None,
                            now=at,
                            notify_admins=False,  # history, not news
                        )
                for chunk_start in range(0, len(week), 1000):
                    chunk = [
                        {
                            **{k: v for k, v in e.items() if k != "failed"},
                            "started_at": e["started_at"].isoformat(),
                            **({"ended_at": e["ended_at"].isoformat()} if e.get("ended_at") else {}),
                        }
                        for e in week[chunk_start : chunk_start + 1000]
                    ]
                    # Received when the week ended, or now for the week still running: never in the future.
                    results = services.log_usage(team=team, events=chunk, now=min(week_end, until), historical=True)
                    charged = {r["id"] for r in results if r["status"] == "charged"}
                    for e in week[chunk_start : chunk_start + 1000]:
                        if e.get("failed") and e["id"] in charged:
                            services.refund_usage(team=team, event_id=e["id"], now=min(week_end, until))
                total += len(week)
                services.expire_packs(now=min(week_end, until))
                services.expire_cloud_credits(now=min(week_end, until))
                if progress:
                    progress(len(week), f"{team.name} {week_end:%Y-%m}")
                week = []
                while event is not None and event["started_at"] >= week_end:
                    week_end += timedelta(days=7)
            if event is not None:
                week.append(event)
    services.expire_packs(now=until)
    services.expire_cloud_credits(now=until)
    return total


def estimated_events() -> int:
    """A rough count for the progress bar (the replay reports actual numbers as it goes)."""
    years = (timezone.now().date() - START).days / 365
    return int(years * 1300) + 300  # about what the long histories produce per year, and the short ones
