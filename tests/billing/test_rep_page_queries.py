"""The sales rep's pages cost a fixed number of queries, whatever the number of customers,
packs and purchases: a reseller serving 2 teams with a few packs costs what one serving 200
teams with 2,000 packs (and their purchase entries) costs.

Rows go straight into the tables with bulk_create (set-up speed; no page here writes).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Team
from billing.models import EntryKind, LedgerEntry, TokenPack, UsageRollup

NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
D = timedelta(days=1)
ZONES = ["UTC", "Europe/Berlin", "America/Chicago", "Asia/Tokyo"]
# (url name, needs the team's slug, extra query)
PAGES = {
    "customers": ("billing:customer-list", False, ""),
    "customers sorted by balance, low only": ("billing:customer-list", False, "?sort=-available&low=on"),
    "customers, expiring and contract ending": ("billing:customer-list", False, "?expiring=on&contract_days=400"),
    "customers csv": ("billing:customer-export", False, ""),
    "a customer": ("billing:customer-detail", True, ""),
    "record a purchase": ("billing:customer-purchase", True, ""),
    "its confirmation": ("billing:customer-purchase", True, "?review=1&tokens=100&reference=PO-Q"),
    "move tokens": ("billing:customer-move", True, ""),
    "the planner": ("billing:customer-plan", True, ""),
    "orders": ("billing:orders", False, ""),
    "orders filtered": ("billing:orders", False, "?start=2025-01-01&end=2026-06-01&sort=team"),
    "orders csv": ("billing:orders-export-csv", False, ""),
    "orders xlsx": ("billing:orders-export-xlsx", False, ""),
}


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def fill(personas, *, teams: int, packs_per_team: int, tag: str) -> None:
    reseller = personas.team.reseller
    made = Team.objects.bulk_create(
        [
            Team(
                name=f"{tag} {n:03}",
                slug=f"{tag}-{n:03}",
                reseller=reseller,
                time_zone=ZONES[n % len(ZONES)],
                plan="premium" if n % 3 == 0 else "standard",
                contract_start=date(2022, 1, 1),
                contract_end=date(2026, 6, 1) + (n * 7) * D,
            )
            for n in range(teams)
        ]
    )
    # Own Team gets packs too: its page and its planner have something to show.
    owners = [personas.team, *made]
    packs = []
    for t, team in enumerate(owners):
        for n in range(packs_per_team):
            purchased = NOW - ((n * 150 + t * 13) % 500) * D
            expires = purchased + 365 * D
            expired = expires <= NOW
            packs.append(
                TokenPack(
                    team=team,
                    reseller_id=reseller.pk,
                    reference=f"{tag.upper()}-{t:03}-{n:02}",
                    tokens=1000,
                    remaining=Decimal(0) if expired else Decimal(100 + (t * n) % 900),
                    price=Decimal("900.00") if n % 2 else None,
                    currency="EUR" if n % 2 else "",
                    purchased_at=purchased,
                    expires_at=expires,
                    expired_at=expires if expired else None,
                    recorded_by=personas.sales_rep if n % 3 else None,
                )
            )
    packs = TokenPack.objects.bulk_create(packs)
    LedgerEntry.objects.bulk_create(
        [
            LedgerEntry(
                team_id=pack.team_id,
                pack=pack,
                kind=EntryKind.PURCHASE,
                amount=Decimal(pack.tokens),
                at=pack.purchased_at,
                actor=pack.recorded_by,
            )
            for pack in packs
        ]
    )
    UsageRollup.objects.bulk_create(
        [
            UsageRollup(
                team=personas.team, user=personas.member, day=(NOW - n * D).date(), product="autocad", tokens=Decimal(7)
            )
            for n in range(1, 91)
        ],
        ignore_conflicts=True,
    )


def cost(client, personas, name: str) -> int:
    url_name, with_team, query = PAGES[name]
    url = reverse(url_name, args=[personas.team.slug] if with_team else []) + query
    with CaptureQueriesContext(connection) as context:
        response = client.get(url)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)  # a streamed export reads as it is sent
    assert response.status_code == 200, (name, response.status_code)
    return len(context.captured_queries)


@pytest.mark.parametrize("name", list(PAGES))
def test_a_rep_page_costs_the_same_for_2_teams_and_for_200_teams_with_2000_packs(client, personas, name):
    client.force_login(personas.sales_rep)
    fill(personas, teams=2, packs_per_team=3, tag="few")
    cost(client, personas, name)  # the first page after signing in saves the session (kept alive hourly)
    small = cost(client, personas, name)
    fill(personas, teams=200, packs_per_team=10, tag="many")
    assert Team.objects.filter(reseller=personas.team.reseller).count() >= 200
    assert TokenPack.objects.filter(reseller=personas.team.reseller).count() >= 2000
    large = cost(client, personas, name)
    assert small == large, (name, small, large)
    assert large <= 20, (name, large)
