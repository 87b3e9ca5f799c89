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
    packs: list[tuple[date, int]]  # (purchase day, tokens)
    daily_products: list[str]
    busy: float  # chance a member works with a desktop product on a working day
    unassigned: tuple[str, ...]  # members without a Flex assignment (their launches are denied)
    only: dict[str, list[str]]  # members assigned to a list of products only


PLANS = [
    TeamPlan(
        slug="acme-engineering",
        credits=Decimal("400"),
        packs=[
            (date(2022, 3, 29), 2500),
            (date(2022, 9, 26), 2500),
            (date(2023, 3, 20), 2500),
            (date(2023, 9, 12), 2500),
            (date(2024, 3, 18), 2500),
            (date(2024, 9, 16), 2000),
            (date(2025, 3, 17), 3000),
            (date(2025, 9, 22), 2500),
            (date(2026, 3, 16), 2500),
            (date(2026, 9, 14), 2500),
        ],
        daily_products=["autocad", "autocad", "civil-3d", "navisworks"],
        busy=0.3,
        unassigned=("gus.olsen@acme.example",),
        only={"farah.haddad@acme.example": ["autocad", "cloud-rendering"]},
    ),
    TeamPlan(
        slug="globex-design",
        credits=Decimal("900"),
        packs=[
            (date(2022, 3, 29), 3000),
            (date(2022, 9, 1), 2500),
            (date(2023, 3, 1), 3000),
            (date(2023, 8, 15), 3000),
            (date(2024, 2, 20), 4000),
            (date(2024, 8, 20), 3000),
            (date(2025, 2, 18), 4000),
            (date(2025, 8, 19), 3500),
            (date(2026, 2, 17), 4000),
            (date(2026, 8, 18), 3500),
        ],
        daily_products=["revit", "revit", "autocad", "inventor"],
        busy=0.45,
        unassigned=(),
        only={"marco.rossi@globex.example": ["revit", "cfd-simulation", "cloud-rendering"]},
    ),
]


def _local(day: date, hour: float, tz) -> datetime:
    base = datetime.combine(day, time(0), tzinfo=tz)
    return (base + timedelta(hours=hour)).astimezone(UTC)


def _events(team: Team, plan: TeamPlan, members: list[str], until: date, rng: random.Random) -> Iterator[dict]:
    """Plausible usage, day by day, in the team's time zone."""
    tz = team.tz
    serial = 0
    day = START
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


def seed_usage(*, until: datetime | None = None, progress: Callable[[int, str], None] | None = None) -> int:
    """Replay the demo history for each demo team that has none yet; returns events logged."""
    until = until or timezone.now()
    total = 0
    for plan in PLANS:
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
        start_at = _local(START, 9, team.tz)
        services.grant_cloud_credits(team=team, credits=plan.credits, granted_at=start_at, actor=None)
        for membership in Membership.objects.filter(team=team).select_related("user"):
            email = membership.user.email
            if email in plan.unassigned or membership.role == Role.REPORT_VIEWER:
                continue
            services.assign_flex(
                team=team, user=membership.user, products=plan.only.get(email, "all"), actor=actor, at=start_at
            )
        purchases = [(_local(day, 10, team.tz), tokens) for day, tokens in plan.packs]
        events = list(_events(team, plan, members, timezone.localtime(until, team.tz).date(), rng))
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
                        )
                for chunk_start in range(0, len(week), 1000):
                    chunk = [
                        {
                            **e,
                            "started_at": e["started_at"].isoformat(),
                            **({"ended_at": e["ended_at"].isoformat()} if e.get("ended_at") else {}),
                        }
                        for e in week[chunk_start : chunk_start + 1000]
                    ]
                    services.log_usage(team=team, events=chunk, now=week_end, historical=True)
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
    return int(years * 1300)  # about what the plans above produce per year
