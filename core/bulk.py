"""Inserting many rows fast: plain tuples for a model's columns, no model instances.
(``upsert_rows`` at the end adds rows into tables keyed by a unique constraint.)

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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Upsert:
    """Rows to add into a table keyed by a unique constraint: a new key is inserted; an
    existing one gets ``add``'s columns added to it and ``replace``'s set. Each row is a
    tuple of ``key``, then ``add``, then ``replace`` values (attribute names, as
    ``insert_rows``'s columns). Keys must be unique within ``rows``."""

    model: Model
    key: Sequence[str]
    add: Sequence[str]
    rows: Sequence[tuple]
    replace: Sequence[str] = ()

    @property
    def columns(self) -> list[str]:
        return [*self.key, *self.add, *self.replace]


def upsert_rows(*upserts: Upsert, using: str = "default") -> None:
    """Write every ``Upsert``, adding in the database (``column = column + change``).

    A row whose changes are all zero or more is inserted, or added to the row it clashes
    with (``INSERT ... ON CONFLICT DO UPDATE``). A row with a negative change is added to
    the row that exists (``UPDATE``): a proposed new row must pass the table's CHECKs before
    the database looks for a clash, so a negative one would fail even where it was only
    meant to be added. The caller keeps that row in existence (a rollup takes back only
    what it counted).

    - **PostgreSQL**: one statement for all of them, whatever the number of rows: each
      part's rows travel as one array per column (``unnest``), the parts joined as
      data-modifying ``WITH`` queries.
    - **SQLite**: one ``executemany`` per part.
    """
    connection = connections[using]
    parts = []
    for upsert in upserts:
        width = len(upsert.key)
        changes = slice(width, width + len(upsert.add))
        taken = [row for row in upsert.rows if any(value < 0 for value in row[changes])]
        added = [row for row in upsert.rows if not any(value < 0 for value in row[changes])]
        parts += [(upsert, rows, sql) for rows, sql in ((added, _insert_sql), (taken, _update_sql)) if rows]
    if not parts:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            statements, params = [], []
            for upsert, rows, sql in parts:
                statements.append(sql(upsert, connection))
                fields = [upsert.model._meta.get_field(name) for name in upsert.columns]
                params += [list(values) for values in zip(*_converted(rows, fields, connection), strict=True)]
            heads = [f"w{i} AS ({statement})" for i, statement in enumerate(statements[:-1])]
            cursor.execute((f"WITH {', '.join(heads)} " if heads else "") + statements[-1], params)
            return
        if connection.vendor != "sqlite":
            raise NotImplementedError(f"upsert_rows supports PostgreSQL and SQLite, not {connection.vendor}.")
        for upsert, rows, sql in parts:
            fields = [upsert.model._meta.get_field(name) for name in upsert.columns]
            rows = _converted(rows, fields, connection)
            if sql is _update_sql:  # SET's values first, then the key's
                width = len(upsert.key)
                rows = [(*row[width:], *row[:width]) for row in rows]
            cursor.executemany(sql(upsert, connection), rows)


def _names(upsert: Upsert, connection) -> tuple[str, dict[str, str], list]:
    meta = upsert.model._meta
    quote = connection.ops.quote_name
    fields = [meta.get_field(name) for name in upsert.columns]
    return quote(meta.db_table), {f.attname: quote(f.column) for f in fields}, fields


def _insert_sql(upsert: Upsert, connection) -> str:
    """One part's ``INSERT ... ON CONFLICT DO UPDATE``."""
    table, column, fields = _names(upsert, connection)
    names = ", ".join(column.values())
    key = ", ".join(column[name] for name in upsert.key)
    sets = [f"{column[n]} = {table}.{column[n]} + EXCLUDED.{column[n]}" for n in upsert.add]
    sets += [f"{column[n]} = EXCLUDED.{column[n]}" for n in upsert.replace]
    conflict = f"ON CONFLICT ({key}) DO UPDATE SET {', '.join(sets)}"
    # Identifiers and types come from the model, quoted; values travel as parameters.
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
        return f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}) {conflict}"  # noqa: S608
    marks = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {table} ({names}) VALUES ({marks}) {conflict}"  # noqa: S608


def _update_sql(upsert: Upsert, connection) -> str:
    """One part's ``UPDATE`` of rows that exist."""
    table, column, fields = _names(upsert, connection)
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
        given = ", ".join(column.values())
        sets = [f"{column[n]} = {table}.{column[n]} + given.{column[n]}" for n in upsert.add]
        sets += [f"{column[n]} = given.{column[n]}" for n in upsert.replace]
        match = " AND ".join(f"{table}.{column[n]} = given.{column[n]}" for n in upsert.key)
        return (
            f"UPDATE {table} SET {', '.join(sets)} "  # noqa: S608
            f"FROM unnest({arrays}) AS given({given}) WHERE {match}"
        )
    sets = [f"{column[n]} = {column[n]} + %s" for n in upsert.add] + [f"{column[n]} = %s" for n in upsert.replace]
    match = " AND ".join(f"{column[n]} = %s" for n in upsert.key)
    return f"UPDATE {table} SET {', '.join(sets)} WHERE {match}"  # noqa: S608
