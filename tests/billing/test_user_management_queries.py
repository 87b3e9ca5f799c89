"""User Management's pages cost a bounded number of queries: the same for a team of 4 as
for a team of 500 members, each with a history of assignments (issue 10, "How").

Each page is measured twice, on the personas' small team and again after 500 members and
their assignment history were added; the counts must be equal and under the page's bound.
The figures are in docs/architecture.md ("User Management").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Membership, Role, User
from billing import services
from billing.models import FlexAssignment

# Bulk statements on SQLite are counted as PostgreSQL issues them (see that fixture's docstring).
from tests.billing.test_query_bounds import _sqlite_uses_its_real_parameter_limit  # noqa: F401

TEAM = "own-team"
T0 = datetime(2025, 1, 1, tzinfo=UTC)
SCOPES = [(True, []), (False, ["autocad"]), (False, ["autocad", "revit"]), (False, ["cfd-simulation", "inventor"])]
# The bound of every page (measured: see MEASURED below); a page over it fails.
MAX_QUERIES = 20


def grow(team, members: int, history: int) -> list[Membership]:
    """``members`` more members, each with ``history`` ended assignments and (two in three)
    a current one, written in bulk: set-up, not behaviour."""
    users = User.objects.bulk_create(
        [
            User(email=f"big{n:04}@own.example", first_name=f"Big{n:04}", last_name="Member", password="!")
            for n in range(members)
        ]
    )
    memberships = Membership.objects.bulk_create([Membership(user=user, team=team, role=Role.MEMBER) for user in users])
    rows = []
    for n, user in enumerate(users):
        at = T0
        for h in range(history):
            all_products, codes = SCOPES[(n + h) % len(SCOPES)]
            rows.append(
                FlexAssignment(
                    team=team,
                    user=user,
                    all_products=all_products,
                    products=codes,
                    assigned_at=at,
                    removed_at=at + timedelta(days=10),
                )
            )
            at += timedelta(days=10)
        if n % 3:
            all_products, codes = SCOPES[n % len(SCOPES)]
            rows.append(FlexAssignment(team=team, user=user, all_products=all_products, products=codes, assigned_at=at))
    FlexAssignment.objects.bulk_create(rows, batch_size=500)
    return memberships


def count(client, method: str, path: str, data=None, *, status: int = 200) -> int:
    with CaptureQueriesContext(connection) as context:
        response = getattr(client, method)(path, data or {})
    assert response.status_code == status, (path, response.status_code)
    return len(context.captured_queries)


def pages(personas, member: Membership) -> dict[str, tuple[str, str, dict, int]]:
    """name -> (method, path, data, status). ``member`` has the long history."""

    def url(name: str, *args) -> str:
        return reverse(name, args=[TEAM, *args])

    everybody = Membership.objects.filter(team=personas.team, role=Role.MEMBER).values_list("pk", flat=True)
    return {
        "By User": ("get", url("billing:member-list"), {}, 200),
        "By User, filtered and sorted by Flex": (
            "get",
            url("billing:member-list"),
            {"flex": "assigned", "product": "autocad", "sort": "-flex"},
            200,
        ),
        "CSV export (every member)": ("get", url("billing:member-export"), {"sort": "flex"}, 200),
        "a person's page (history)": ("get", url("billing:member-detail", member.pk), {}, 200),
        "By Product": ("get", url("billing:flex-products"), {}, 200),
        "a product's users": ("get", url("billing:flex-product", "autocad"), {}, 200),
        "bulk confirmation, all matching": ("get", url("billing:member-bulk"), {"action": "assign", "all": "1"}, 200),
        "bulk confirmation, ticked ids": (
            "get",
            url("billing:member-bulk"),
            {"action": "remove", "member": list(everybody)},
            200,
        ),
        "CSV import page": ("get", url("billing:member-import"), {}, 200),
        "assign Flex (POST)": (
            "post",
            url("billing:member-flex", member.pk),
            {"scope": "list", "products": ["revit"]},
            302,
        ),
        "bulk assign (POST)": (
            "post",
            url("billing:member-bulk"),
            {"action": "assign", "scope": "all", "member": list(everybody)},
            302,
        ),
    }


@pytest.fixture
def measured(admin_client, personas):
    """Every page's count on the small team, then on the team grown to 500 members."""
    team = personas.team
    member = personas.membership(personas.member)
    admin_client.get(reverse("accounts:team-home", args=[TEAM]))  # the session remembers the team
    for n in range(6):  # the person's own history: a few rows on the small team
        services.assign_flex(team=team, user=personas.member, products=list(SCOPES[n % 4][1]) or "all", actor=None)
    small = {name: count(admin_client, *page[:3], status=page[3]) for name, page in pages(personas, member).items()}
    grow(team, 500, history=4)
    for n in range(200):  # ... and a long one on the big team
        services.assign_flex(team=team, user=personas.member, products=["autocad"] if n % 2 else "all", actor=None)
    large = {name: count(admin_client, *page[:3], status=page[3]) for name, page in pages(personas, member).items()}
    assert Membership.objects.filter(team=team).count() == 504
    assert FlexAssignment.objects.filter(team=team).count() > 2_500
    return small, large


def test_every_user_management_page_costs_the_same_queries_for_4_members_as_for_500(measured):
    small, large = measured
    print("\nqueries (4 members / 504 members):")
    for name in small:
        print(f"  {name}: {small[name]} / {large[name]}")
    assert small == large
    assert max(large.values()) <= MAX_QUERIES, large


def test_the_pages_stay_under_their_bound_with_500_members(admin_client, personas, django_assert_max_num_queries):
    grow(personas.team, 500, history=4)
    member = personas.membership(personas.member)
    for name, (method, path, data, status) in pages(personas, member).items():
        with django_assert_max_num_queries(MAX_QUERIES):
            response = getattr(admin_client, method)(path, data)
        assert response.status_code == status, name
