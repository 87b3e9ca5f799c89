"""``core.bulk.insert_rows`` stores what ``bulk_create`` would, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Charge, UsageEvent
from billing.services.usage import CHARGE_COLUMNS, EVENT_COLUMNS
from core.bulk import insert_rows, reserve_ids
from tests.factories import UserFactory

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
COLUMNS = EVENT_COLUMNS  # every column of a usage event but its key


def _row(team, user, n: int) -> tuple:
    result = {"id": f"e{n}", "status": "charged", "tokens": "7.00", "charges": [{"at": AT.isoformat()}]}
    return (
        team.pk,
        f"e{n}",
        user.pk,
        "autocad",
        "",
        AT + timedelta(minutes=n),
        AT + timedelta(hours=2),
        Decimal("1.5"),
        "charged",
        "",
        Decimal("7"),
        Decimal("0.00"),
        None,
        result,
        None,
        AT,
        [],
    )


@pytest.mark.django_db
def test_rows_come_back_as_bulk_create_stores_them(team):
    user = UserFactory()
    rows = [_row(team, user, n) for n in range(3)]
    ids = reserve_ids({UsageEvent: 3})[UsageEvent]
    insert_rows(UsageEvent, COLUMNS, rows, ids=ids)
    twin = UsageEvent.objects.bulk_create([UsageEvent(**dict(zip(COLUMNS, _row(team, user, 9), strict=True)))])[0]
    stored = {e.pk: e for e in UsageEvent.objects.filter(team=team)}
    assert len(ids) == 3 and len(set(ids)) == 3
    for pk, row in zip(ids, rows, strict=True):
        event = stored[pk]
        assert event.event_id == row[1]  # each row got its reserved id
        assert event.started_at == row[5] and event.started_at.tzinfo is not None
        assert event.quantity == Decimal("1.50") and event.tokens == Decimal("7.00")
        assert event.result == row[13] and event.adjustments == [] and event.refund is None
    # Time lookups see the rows as they see bulk_create's (same stored form on SQLite too).
    assert set(UsageEvent.objects.filter(team=team, started_at__gte=AT).values_list("pk", flat=True)) == {*ids, twin.pk}
    assert UsageEvent.objects.filter(team=team, started_at=AT + timedelta(minutes=1)).get().pk == ids[1]


@pytest.mark.django_db
def test_dependent_rows_use_reserved_ids_in_one_statement_per_table(team):
    user = UserFactory()
    UsageEvent.objects.bulk_create([UsageEvent(**dict(zip(COLUMNS, _row(team, user, 999), strict=True)))])
    with CaptureQueriesContext(connection) as queries:
        ids = reserve_ids({UsageEvent: 500, Charge: 500})
        insert_rows(UsageEvent, COLUMNS, [_row(team, user, n) for n in range(500)], ids=ids[UsageEvent])
        insert_rows(
            Charge,
            CHARGE_COLUMNS,
            [(pk, AT, "charged", "", Decimal("7"), Decimal("0"), None) for pk in ids[UsageEvent]],
            ids=ids[Charge],
        )
    assert len(queries) <= 3 + (connection.vendor == "sqlite")  # SQLite starts a table's counter once
    assert Charge.objects.filter(event__team=team).count() == 500
    # Rows inserted the usual way afterwards get ids of their own.
    later = UsageEvent.objects.bulk_create([UsageEvent(**dict(zip(COLUMNS, _row(team, user, 1000), strict=True)))])
    assert later[0].pk > max(ids[UsageEvent])


@pytest.mark.django_db
def test_every_column_but_the_key_must_be_named(team):
    with pytest.raises(ValueError, match="missing: adjustments"):
        insert_rows(UsageEvent, COLUMNS[:-1], [_row(team, UserFactory(), 0)[:-1]])
    assert reserve_ids({UsageEvent: 0}) == {}
    with CaptureQueriesContext(connection) as queries:
        insert_rows(UsageEvent, COLUMNS, [])
    assert not queries
