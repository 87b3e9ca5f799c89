"""Flex for one person and for many at once: all or nothing, one audit event per person,
history kept, and bad input (a non-member, an unknown product) changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import AuditEvent
from billing import services
from billing.flex_selectors import covering, flex_product_counts, flex_products, member_flex_list
from billing.models import FlexAssignment
from tests.factories import MembershipFactory, UserFactory

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def crew(personas):
    """Three more members of the team, without Flex."""
    people = []
    for n in range(3):
        user = UserFactory(email=f"crew{n}@own.example", first_name=f"Crew{n}", last_name="Member")
        MembershipFactory(user=user, team=personas.team)
        people.append(user)
    return people


def current(team, user) -> FlexAssignment | None:
    return FlexAssignment.objects.filter(team=team, user=user, removed_at__isnull=True).first()


def flex_events(team, action: str = "flex.assigned"):
    return AuditEvent.objects.filter(team=team, action=action)


def test_bulk_assign_gives_everybody_the_assignment_with_one_audit_event_each(personas, crew):
    done = services.bulk_assign_flex(
        team=personas.team, users=crew, products=["revit", "autocad"], actor=personas.primary_admin, at=T0
    )
    assert len(done) == 3
    for user in crew:
        row = current(personas.team, user)
        assert (row.all_products, row.products, row.assigned_at, row.assigned_by) == (
            False,
            ["autocad", "revit"],
            T0,
            personas.primary_admin,
        )
    events = flex_events(personas.team)
    assert sorted(e.target_id for e in events) == sorted(str(u.pk) for u in crew)
    assert {e.actor_email for e in events} == {personas.primary_admin.email}
    assert all(e.details == {"products": ["autocad", "revit"]} for e in events)


def test_bulk_assign_keeps_history_and_leaves_people_who_already_have_it_alone(personas, crew):
    services.assign_flex(team=personas.team, user=crew[0], products="all", actor=None, at=T0)
    services.assign_flex(team=personas.team, user=crew[1], products=["revit"], actor=None, at=T0)
    before = flex_events(personas.team).count()

    done = services.bulk_assign_flex(
        team=personas.team, users=crew, products="all", actor=personas.primary_admin, at=T0 + timedelta(days=1)
    )

    assert {row.user_id for row in done} == {crew[1].pk, crew[2].pk}  # crew[0] already had all products
    assert flex_events(personas.team).count() == before + 2
    history = list(FlexAssignment.objects.filter(team=personas.team, user=crew[1]).order_by("assigned_at"))
    assert [(h.products, h.removed_at) for h in history] == [(["revit"], T0 + timedelta(days=1)), ([], None)]
    assert history[0].removed_by == personas.primary_admin
    assert current(personas.team, crew[0]).assigned_at == T0  # untouched


def test_a_tampered_selection_naming_another_teams_user_changes_nothing(personas, crew):
    foreigner = personas.outsider  # primary admin of the other team
    before = (FlexAssignment.objects.count(), AuditEvent.objects.count())
    with pytest.raises(ValidationError) as refused:
        services.bulk_assign_flex(
            team=personas.team, users=[*crew, foreigner], products="all", actor=personas.primary_admin
        )
    assert "Nothing was changed: 1 selected person is not a member of Own Team" in str(refused.value)
    assert foreigner.email not in str(refused.value)  # another team's people are not named
    assert (FlexAssignment.objects.count(), AuditEvent.objects.count()) == before


def test_bulk_remove_refuses_a_non_member_too_and_changes_nothing(personas, crew):
    services.bulk_assign_flex(team=personas.team, users=crew, products="all", actor=None, at=T0)
    with pytest.raises(ValidationError, match="not a member of Own Team"):
        services.bulk_remove_flex(team=personas.team, users=[crew[0], personas.outsider], actor=None)
    assert all(current(personas.team, user) is not None for user in crew)


def test_bulk_assign_with_an_unknown_product_changes_nothing(personas, crew):
    with pytest.raises(ValidationError, match="Unknown product code"):
        services.bulk_assign_flex(team=personas.team, users=crew, products=["autocad", "maya"], actor=None)
    assert not FlexAssignment.objects.filter(team=personas.team).exists()
    assert not flex_events(personas.team).exists()


def test_bulk_assign_needs_somebody(personas):
    with pytest.raises(ValidationError, match="Select at least one person"):
        services.bulk_assign_flex(team=personas.team, users=[], products="all", actor=None)


def test_bulk_remove_ends_assignments_with_one_audit_event_per_person_who_had_one(personas, crew):
    services.bulk_assign_flex(team=personas.team, users=crew[:2], products="all", actor=None, at=T0)
    ended = services.bulk_remove_flex(
        team=personas.team, users=crew, actor=personas.secondary_admin, at=T0 + timedelta(hours=5)
    )
    assert {row.user_id for row in ended} == {crew[0].pk, crew[1].pk}
    assert all(current(personas.team, user) is None for user in crew)
    removed = flex_events(personas.team, "flex.removed")
    assert sorted(e.target_id for e in removed) == sorted(str(u.pk) for u in crew[:2])
    row = FlexAssignment.objects.get(team=personas.team, user=crew[0])
    assert (row.removed_at, row.removed_by) == (T0 + timedelta(hours=5), personas.secondary_admin)


def test_a_bulk_change_costs_the_same_queries_for_3_people_as_for_60(personas):
    people = []
    for n in range(60):
        user = UserFactory(email=f"bulk{n}@own.example")
        MembershipFactory(user=user, team=personas.team)
        people.append(user)

    def count(users, products) -> int:
        with CaptureQueriesContext(connection) as context:
            services.bulk_assign_flex(team=personas.team, users=users, products=products, actor=None)
        return len(context.captured_queries)

    small = count(people[:3], "all")
    large = count(people[3:], "all")
    assert small == large <= 12, (small, large)
    # Changing people who all have an assignment (ends rows, then creates) is bounded too.
    assert count(people[:3], ["revit"]) == count(people[3:], ["revit"])


def test_assign_flex_for_a_non_member_is_refused(personas):
    with pytest.raises(ValidationError, match="is not a member of Own Team"):
        services.assign_flex(team=personas.team, user=personas.outsider, products="all", actor=None)
    assert not FlexAssignment.objects.filter(team=personas.team).exists()


def test_the_by_product_counts_and_the_covering_filter_agree(personas, crew):
    team = personas.team
    services.assign_flex(team=team, user=crew[0], products="all", actor=None)
    services.assign_flex(team=team, user=crew[1], products=["autocad", "revit"], actor=None)
    services.assign_flex(team=team, user=crew[2], products=["cfd-simulation"], actor=None)
    # A later assignment ended: it counts for nobody.
    services.assign_flex(team=team, user=personas.member, products=["autocad"], actor=None)
    services.remove_flex(team=team, user=personas.member, actor=None)

    counts = {c.product.code: c for c in flex_product_counts(team=team, products=flex_products())}
    assert (counts["autocad"].total, counts["autocad"].direct, counts["autocad"].through_all) == (2, 1, 1)
    assert (counts["revit"].total, counts["cfd-simulation"].total, counts["inventor"].total) == (2, 2, 1)
    for code, count in counts.items():
        covered = covering(member_flex_list(team=team), code)
        assert covered.count() == count.total, code
    # "cfd" is no code of its own: a prefix of a listed code matches nothing.
    assert not covering(member_flex_list(team=team), "cfd").filter(user=crew[2]).exists()
