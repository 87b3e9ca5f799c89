"""Billing fixtures: a team with an assigned user and a clock the tests set."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing import services

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday


@pytest.fixture
def team(personas):
    services.assign_flex(
        team=personas.team,
        user=personas.member,
        products="all",
        actor=personas.primary_admin,
        at=datetime(2022, 1, 1, tzinfo=UTC),
    )
    return personas.team


@pytest.fixture
def buy(team):
    """buy(tokens, at=..., reference=...) records a pack for the team. Set-up: the admins'
    "new pack" notice is left out (tests/billing/test_rep_pages.py tests it), so that tests
    counting the jobs' notices count only those."""
    counter = iter(range(1, 10_000))

    def _buy(tokens: int, at: datetime = datetime(2026, 1, 1, tzinfo=UTC), reference: str | None = None):
        pack, _ = services.record_purchase(
            team=team,
            reference=reference or f"ORDER-{next(counter)}",
            tokens=tokens,
            purchased_at=at,
            now=at,
            notify_admins=False,
        )
        return pack

    return _buy


@pytest.fixture
def log(team, personas):
    """log(product, start, end=None, now=None, **fields) charges one event and returns its result."""
    counter = iter(range(1, 1_000_000))

    def _log(product, started_at, ended_at=None, *, now=None, user=None, event_id=None, **fields):
        event = {
            "id": event_id or f"ev-{next(counter)}",
            "user": (user or personas.member).email,
            "product": product,
            "started_at": started_at.isoformat(),
            **({"ended_at": ended_at.isoformat()} if ended_at else {}),
            **fields,
        }
        return services.log_usage(team=team, events=[event], now=now or (ended_at or started_at))[0]

    return _log


def tokens(result) -> Decimal:
    return Decimal(result["tokens"])
