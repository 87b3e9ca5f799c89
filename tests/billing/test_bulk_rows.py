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


@pytest.mark.django_db
def test_upsert_rows_inserts_adds_takes_back_and_replaces_in_one_statement(team):
    from datetime import date

    from billing.models import DayRollup, ProductDayRollup
    from core.bulk import Upsert, upsert_rows

    day = date(2026, 3, 2)
    amounts = ("tokens", "cloud_credits", "charges", "denials", "users")

    def write(rows, users):
        with CaptureQueriesContext(connection) as queries:
            upsert_rows(
                Upsert(ProductDayRollup, ("team_id", "day", "product"), amounts, rows),
                Upsert(DayRollup, ("team_id", "day"), (), users, replace=("users",)),
            )
        return len(queries)

    first = write([(team.pk, day, "autocad", Decimal("7.5"), Decimal(0), 1, 0, 1)], [(team.pk, day, 1)])
    # Added to the row that exists, a new row beside it, and a change taken back (negative).
    second = write(
        [
            (team.pk, day, "autocad", Decimal("2.5"), Decimal(1), 1, 1, 0),
            (team.pk, day, "revit", Decimal(3), Decimal(0), 1, 0, 1),
        ],
        [(team.pk, day, 2)],
    )
    third = write([(team.pk, day, "revit", Decimal(-3), Decimal(0), -1, 0, -1)], [(team.pk, day, 1)])

    stored = {r.product: r for r in ProductDayRollup.objects.filter(team=team)}
    assert (stored["autocad"].tokens, stored["autocad"].cloud_credits) == (Decimal("10.00"), Decimal("1.00"))
    assert (stored["autocad"].charges, stored["autocad"].denials, stored["autocad"].users) == (2, 1, 1)
    assert (stored["revit"].tokens, stored["revit"].charges, stored["revit"].users) == (Decimal("0.00"), 0, 0)
    assert DayRollup.objects.get(team=team, day=day).users == 1  # replaced, not added
    if connection.vendor == "postgresql":
        assert first == second == third == 1  # every table, inserts and updates alike, in one statement
