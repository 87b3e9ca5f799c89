"""The Flex tokens page, the home page (with its balance card) and My usage cost a fixed
number of queries, whatever the number of members, packs and ledger entries.

The large team has 500 members, 200 packs and 10,000 ledger entries (and a year of usage
rollups), built with bulk_create; the small one a handful of each. Both show every part of
each page (packs and token events in their tables, a forecast), so the same code runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Membership, Role, User
from billing.models import EntryKind, LedgerEntry, TokenPack, UsageRollup

NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
D = timedelta(days=1)
PAGES = {
    "billing:tokens": "Flex tokens",
    "accounts:team-home": "Own Team",
    "billing:my-usage": "My usage",
}
# What each page costs, measured on SQLite. Every page: the session, the signed-in user and
# the team access (3); the shell's navigation, team switcher and unread count (3). The
# session is saved (3 more, with its savepoint) only when the last team used changes, which
# ``client_for`` has done before. Then its own reads:
# - Flex tokens, 10: the balance (3), the low-balance threshold (1), the forecast (2), the
#   packs and the token events (a count and a page each, 4);
# - Home, 7: role counts, admins (with their invitations), pending invitations (3), and the
#   balance card (the balance, 3, and the threshold, 1);
# - My usage, 4: the Flex assignment, usage by product, usage by month, the product names.
MEASURED = {"billing:tokens": 16, "accounts:team-home": 13, "billing:my-usage": 10}
PRODUCTS = ["autocad", "revit", "civil-3d", "cfd-simulation"]


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def fill(team, member, *, members: int, packs: int, entries: int, tag: str = "bulk") -> None:
    """Rows straight into the tables (set-up speed; no page writes anything)."""
    users = User.objects.bulk_create(
        [User(email=f"{tag}{n}@own.example", first_name=tag, last_name=str(n), password="!") for n in range(members)]
    )
    # Every hundredth a secondary admin: the home page lists the admins.
    Membership.objects.bulk_create(
        [
            Membership(user=u, team=team, role=Role.SECONDARY_ADMIN if n % 100 == 0 else Role.MEMBER)
            for n, u in enumerate(users)
        ]
    )
    rows = []
    for n in range(packs):
        purchased = NOW - (n * 600 // max(packs, 1)) * D - timedelta(hours=n % 24)
        expires = purchased + 365 * D
        expired = expires <= NOW
        rows.append(
            TokenPack(
                team=team,
                reseller_id=team.reseller_id,
                reference=f"{tag.upper()}-{n:04}",
                tokens=1000 + n,
                remaining=Decimal(0) if expired else Decimal(500 + n),
                purchased_at=purchased,
                expires_at=expires,
                expired_at=expires if expired else None,
            )
        )
    rows = TokenPack.objects.bulk_create(rows)
    active = [p for p in rows if p.expired_at is None]
    kinds = [EntryKind.USAGE] * 6 + [EntryKind.REFUND, EntryKind.PURCHASE, EntryKind.EXPIRY, EntryKind.MOVE_OUT]
    ledger = []
    for n in range(entries):
        kind = kinds[n % len(kinds)]
        pack = (active or rows)[n % len(active or rows)]
        sign = 1 if kind in (EntryKind.REFUND, EntryKind.PURCHASE) else -1
        at = NOW - timedelta(minutes=17 * n % (120 * 24 * 60)) - timedelta(minutes=1)
        ledger.append(
            LedgerEntry(team=team, pack=pack, kind=kind, amount=sign * Decimal(1 + n % 9), at=at, note="bulk")
        )
    LedgerEntry.objects.bulk_create(ledger)
    UsageRollup.objects.bulk_create(
        [
            UsageRollup(team=team, day=(NOW - n * D).date(), product=PRODUCTS[n % 4], user=user, tokens=Decimal(7))
            for n in range(max(entries // 25, 10))
            for user in (member, users[n % len(users)] if users else member)
        ],
        ignore_conflicts=True,
    )


def queries(client, url_name: str) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(reverse(url_name, args=["own-team"]))
    assert response.status_code == 200
    assert PAGES[url_name] in response.content.decode()
    return len(context.captured_queries)


@pytest.fixture
def large(personas):
    fill(personas.team, personas.member, members=500, packs=200, entries=10_000)
    assert LedgerEntry.objects.filter(team=personas.team).count() == 10_000
    assert Membership.objects.filter(team=personas.team).count() == 504
    return personas


def client_for(client, personas, url_name: str):
    # My usage is the member's own page; the others are an admin's.
    client.force_login(personas.member if url_name == "billing:my-usage" else personas.primary_admin)
    client.get(reverse("accounts:team-home", args=["own-team"]))  # the session remembers the team
    return client


@pytest.mark.parametrize("url_name", list(PAGES))
def test_a_page_costs_a_fixed_number_of_queries_with_500_members_200_packs_and_10000_entries(
    client, large, url_name, django_assert_max_num_queries
):
    client = client_for(client, large, url_name)
    with django_assert_max_num_queries(MEASURED[url_name]):
        queries(client, url_name)


@pytest.mark.parametrize("url_name", list(PAGES))
def test_a_page_costs_the_same_for_a_small_and_a_large_team(client, personas, url_name):
    client = client_for(client, personas, url_name)
    fill(personas.team, personas.member, members=3, packs=4, entries=40, tag="few")
    small = queries(client, url_name)
    fill(personas.team, personas.member, members=500, packs=200, entries=10_000, tag="many")
    large = queries(client, url_name)
    assert small == large == MEASURED[url_name], (url_name, small, large)
