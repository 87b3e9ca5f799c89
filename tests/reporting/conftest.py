"""A team with a known set of charged and refused events, for the report pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone

from billing import services


@dataclass
class Usage:
    team: object
    events: list[dict]
    results: list[dict]


def _daily(event_id: str, user, product: str, start) -> dict:
    return {
        "id": event_id,
        "user": user.email,
        "product": product,
        "started_at": start.isoformat(),
        "ended_at": (start + timedelta(hours=2)).isoformat(),
    }


def charge_known_events(personas, *, premium: bool, count: int = 1) -> Usage:
    """Two people charged for AutoCAD, Revit and a CFD job over a few days (``count``
    rounds of them), and a person without Flex refused once."""
    team = personas.team
    if premium:
        team.plan = "premium"
        team.save(update_fields=["plan"])
    for user in (personas.member, personas.report_viewer):
        services.assign_flex(team=team, user=user, products="all", actor=None, at=timezone.now() - timedelta(days=60))
    now = timezone.now()
    services.record_purchase(team=team, reference="R-1", tokens=100_000, purchased_at=now - timedelta(days=50), now=now)
    events = []
    for round_ in range(count):
        day = now - timedelta(days=2 + round_ % 20, hours=1)
        events += [
            _daily(f"a-{round_}", personas.member, "autocad", day),
            _daily(f"r-{round_}", personas.report_viewer, "revit", day - timedelta(days=1)),
            {
                "id": f"j-{round_}",
                "user": personas.member.email,
                "product": "cfd-simulation",
                "variant": "moderate",
                "quantity": 1,
                "started_at": (day - timedelta(days=3)).isoformat(),
            },
        ]
    events.append(_daily("denied-1", personas.secondary_admin, "autocad", now - timedelta(days=1, hours=1)))
    results = []
    for i in range(0, len(events), 1000):
        results += services.log_usage(team=team, events=events[i : i + 1000], now=now, historical=True)
    return Usage(team=team, events=events, results=results)


@pytest.fixture
def standard_usage(personas) -> Usage:
    return charge_known_events(personas, premium=False)


@pytest.fixture
def premium_usage(personas) -> Usage:
    return charge_known_events(personas, premium=True)
