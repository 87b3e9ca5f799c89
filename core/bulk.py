"""Inserting many rows fast: plain tuples for a model's columns, no model instances.

``insert_rows(model, columns, rows)`` writes ``rows`` (tuples of Python values, in the
order of ``columns``: attribute names such as ``"team_id"``) into the model's table. Every
concrete column but the primary key must be named: model defaults are not applied here.
Rows that other rows will point at take their keys from ``reserve_ids`` first (one
statement for every table of a batch), so no ids need to come back from the inserts.

Values go through Django's own field conversion (``Field.get_db_prep_save``) wherever it
changes anything on the connection's database, so rows store exactly what ``bulk_create``
would: on PostgreSQL only JSON columns need it (psycopg adapts Decimals, aware datetimes,
strings and ids itself); on SQLite every column goes through it (aware datetimes become
naive UTC text, as Django stores them).

- **PostgreSQL**: the fastest path it offers, ``COPY ... FROM STDIN`` through psycopg 3;
  ids from the tables' sequences (``nextval`` over ``generate_series``).
- **SQLite**: ``executemany`` of an ``INSERT``; ids reserved by moving the tables'
  ``AUTOINCREMENT`` counters under the write lock.

One statement per table, whatever the number of rows. The COPY is logged and passed
through ``connection.execute_wrapper`` like any other statement, so query counts
(``CaptureQueriesContext``, the benchmarks) include it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import connections, models
from django.db.backends.utils import CursorDebugWrapper

# Field types psycopg adapts exactly as Django would: no conversion needed on PostgreSQL.
_NATIVE_ON_POSTGRESQL = {
    "AutoField",
    "BigAutoField",
    "BigIntegerField",
    "BooleanField",
    "CharField",
    "DateTimeField",
    "DecimalField",
    "ForeignKey",
    "IntegerField",
    "OneToOneField",
    "PositiveIntegerField",
    "PositiveSmallIntegerField",
    "SlugField",
    "SmallIntegerField",
    "TextField",
}


Model = type[models.Model]


def reserve_ids(wanted: dict[Model, int], *, using: str = "default") -> dict[Model, list[int]]:
    """New primary keys for rows about to be inserted (``insert_rows(..., ids=...)``): as
    many as ``wanted`` says for each model, all in one statement.

    PostgreSQL takes them from each table's sequence (``nextval``; other sessions never get
    them, committed or not). SQLite moves each table's ``AUTOINCREMENT`` counter
    (``sqlite_sequence``) past them: that write takes the database's write lock, held to the
    end of the transaction, so no other writer can take the same ids.
    """
    wanted = {model: count for model, count in wanted.items() if count > 0}
    if not wanted:
        return {}
    connection = connections[using]
    tables = {model._meta.db_table: model for model in wanted}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            part = "SELECT %s, nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)"
            params = []
            for model, count in wanted.items():
                params += [model._meta.db_table, model._meta.db_table, model._meta.pk.column, count]
            cursor.execute(" UNION ALL ".join([part] * len(wanted)), params)
            found: dict[Model, list[int]] = {model: [] for model in wanted}
            for table, pk in cursor.fetchall():
                found[tables[table]].append(pk)
            return found
        if connection.vendor != "sqlite":
            raise NotImplementedError(f"reserve_ids supports PostgreSQL and SQLite, not {connection.vendor}.")
        names = ", ".join(["%s"] * len(wanted))
        cases = " ".join(["WHEN %s THEN %s"] * len(wanted))
        params = [value for model, count in wanted.items() for value in (model._meta.db_table, count)]
        cursor.execute(
            # Only placeholders are formatted in; names and counts travel as parameters.
            f"UPDATE sqlite_sequence SET seq = seq + CASE name {cases} END "  # noqa: S608
            f"WHERE name IN ({names}) RETURNING name, seq",
            [*params, *tables],
        )
        last = dict(cursor.fetchall())
        for table in tables.keys() - last.keys():  # no row has ever been inserted: the counter starts
            cursor.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, wanted[tables[table]]])
            last[table] = wanted[tables[table]]
        return {model: list(range(last[table] - wanted[model] + 1, last[table] + 1)) for table, model in tables.items()}


def insert_rows(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[tuple],
    *,
    ids: Sequence[int] | None = None,
    using: str = "default",
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) into ``model``'s table, with the primary
    keys ``ids`` (from ``reserve_ids``, one per row) or, without them, the table's own."""
    if not rows:
        return
    connection = connections[using]
    meta = model._meta
    fields = [meta.get_field(name) for name in columns]
    expected = {f.attname for f in meta.concrete_fields if not f.primary_key}
    named = {f.attname for f in fields}
    if named != expected or len(named) != len(columns):
        missing = ", ".join(sorted(expected - named)) or "none"
        raise ValueError(f"{meta.label}: name every column but the primary key once (missing: {missing}).")
    rows = _converted(rows, fields, connection)
    quote = connection.ops.quote_name
    names = [quote(f.column) for f in fields]
    if ids is not None:
        names = [quote(meta.pk.column), *names]
        rows = [(pk, *row) for pk, row in zip(ids, rows, strict=True)]
    table = quote(meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sql = f"COPY {table} ({', '.join(names)}) FROM STDIN"
            _logged(cursor, sql, rows, lambda: _copy(cursor, sql, rows))
        else:
            # Identifiers come from the model, quoted; values travel as parameters.
            marks = ", ".join(["%s"] * len(names))
            cursor.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", rows)  # noqa: S608


def _converted(rows: Sequence[tuple], fields: list, connection) -> Sequence[tuple]:
    """The rows with each value as Django would send it, converting only the columns whose
    values the database driver would not take as they are."""
    convert: list[tuple[int, Callable[[Any], Any]]] = [
        (i, lambda value, f=field: f.get_db_prep_save(value, connection))
        for i, field in enumerate(fields)
        if connection.vendor != "postgresql" or field.get_internal_type() not in _NATIVE_ON_POSTGRESQL
    ]
    if not convert:
        return rows
    converted = []
    for row in rows:
        row = list(row)
        for i, function in convert:
            row[i] = function(row[i])
        converted.append(tuple(row))
    return converted


def _copy(cursor, sql: str, rows: Sequence[tuple]) -> None:
    with cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


def _logged(cursor, sql: str, rows: Sequence[tuple], run: Callable[[], None]) -> None:
    """Run a statement Django's cursor doesn't know (COPY) as if it had executed it: through
    the connection's execute wrappers, and into the query log when that is on."""

    def executor(sql, params, many, context):
        run()

    if isinstance(cursor, CursorDebugWrapper):
        with cursor.debug_sql(sql, rows, many=True):
            cursor._execute_with_wrappers(sql, rows, True, executor)
    else:
        cursor._execute_with_wrappers(sql, rows, True, executor)
