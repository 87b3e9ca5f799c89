"""Flex assignments and the usage rollup moved to billing (billing 0005, accounts 0005,
reporting 0002): the move changes Django's model state only, so a database that holds
assignments and rollups keeps every row, and the app reads them as billing's."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [
    ("accounts", "0004_notifications_and_alert_settings"),
    ("billing", "0004_job_state"),
    ("reporting", "0001_initial"),
]
AFTER = [
    ("accounts", "0005_flexassignment_moved_to_billing"),
    ("billing", "0005_flexassignment_usagerollup"),
    ("reporting", "0002_usagerollup_moved_to_billing"),
]


def migrate(targets: list[tuple[str, str]]):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def back_to_the_latest_schema(transactional_db):
    """Whatever happens in the test, leave the database at the latest migrations: the tests
    that run after this one (the browser tests' live server among them) need every column."""
    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.usefixtures("back_to_the_latest_schema")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # the flush would take the rate sheet
def test_assignments_and_rollups_keep_their_rows_across_the_move():
    old = migrate(BEFORE)
    user = old.get_model("accounts", "User").objects.create(email="mover@example.com", password="!")
    reseller = old.get_model("accounts", "Reseller").objects.create(name="Mover Partners", slug="mover-partners")
    team = old.get_model("accounts", "Team").objects.create(
        name="Mover",
        slug="mover",
        reseller=reseller,
        plan="standard",
        time_zone="UTC",
        contract_start=date(2026, 1, 1),
        contract_end=date(2027, 1, 1),
    )
    at = datetime(2026, 3, 2, 8, tzinfo=UTC)
    assignment = old.get_model("accounts", "FlexAssignment").objects.create(
        team=team, user=user, all_products=False, products=["autocad", "revit"], assigned_at=at
    )
    rollup = old.get_model("reporting", "UsageRollup").objects.create(
        team=team, day=date(2026, 3, 2), product="autocad", user=user, tokens=Decimal("7.00"), charges=1
    )

    new = migrate(AFTER)

    moved = new.get_model("billing", "FlexAssignment").objects.get()
    assert (moved.pk, moved.team_id, moved.user_id, moved.all_products, moved.products, moved.assigned_at) == (
        assignment.pk,
        team.pk,
        user.pk,
        False,
        ["autocad", "revit"],
        at,
    )
    kept = new.get_model("billing", "UsageRollup").objects.get()
    assert (kept.pk, kept.day, kept.product, kept.tokens, kept.charges) == (
        rollup.pk,
        date(2026, 3, 2),
        "autocad",
        Decimal("7.00"),
        1,
    )
    # The app's own models read the same rows, and the constraints still hold.
    from billing.models import FlexAssignment, UsageRollup

    assert FlexAssignment.objects.get().covers("revit", at)
    assert UsageRollup.objects.filter(team_id=team.pk).count() == 1
    with pytest.raises(IntegrityError):
        FlexAssignment.objects.create(team_id=team.pk, user_id=user.pk, assigned_at=at)
