"""Fast bulk inserts for the hot paths (the processor's taps, list imports, per-row audit).

The ORM's ``bulk_create`` spent most of its time building model instances and preparing
values field by field (profiled: ~60–75 % of a batch). ``fast_insert`` builds one
``INSERT … VALUES (%s, …)`` from the model's metadata and runs it with ``executemany`` (on
PostgreSQL one ``INSERT … SELECT * FROM unnest(…)`` with an array per column, or COPY); only
the columns that need adapting (datetimes, JSON, UUIDs) go through Django's own adapters, so a
renamed column or a new backend cannot drift. ``ON CONFLICT (…) DO NOTHING`` is available for
idempotent inserts (SQLite ≥ 3.24 and PostgreSQL both support it).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from functools import cache, partial
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction

Adapter = Callable[[Any], Any] | None
# how a column's values are adapted: by Django's datetime adapter, by the field's own
# get_db_prep_save (JSON, UUID), or not at all
Adapting = tuple[str, "models.Field[Any, Any]"] | None
# the unique key whose duplicates are skipped: one field, or several (a partitioned table's
# unique keys include its partition key)
Conflict = str | tuple[str, ...] | None


def _column(model: type[models.Model], name: str) -> str:
    """The column of field ``name`` (a concrete field: never a reverse relation)."""
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field) and field.column is not None, name
    return field.column


@cache
def _plan(
    model: type[models.Model], fields: tuple[str, ...], conflict: Conflict, vendor: str
) -> tuple[str, tuple[Adapting, ...]]:
    meta = model._meta
    quote = connection.ops.quote_name
    columns: list[str] = []
    adapting: list[Adapting] = []
    for name in fields:
        field = meta.get_field(name)
        assert isinstance(field, models.Field), name
        columns.append(quote(_column(model, name)))
        if isinstance(field, models.DateTimeField):
            # PostgreSQL takes an aware datetime as it is (its backend's adapter returns it)
            adapting.append(None if vendor == "postgresql" else ("datetime", field))
        elif isinstance(field, models.UUIDField) and vendor == "postgresql":
            adapting.append(("uuid", field))  # a UUID as it is; only a string is converted
        elif isinstance(field, models.JSONField | models.UUIDField):
            adapting.append(("field", field))
        else:
            adapting.append(None)
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(columns)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(columns))})"
    )
    sql += _on_conflict(model, conflict)
    return sql, tuple(adapting)


def _uuid(field: models.Field[Any, Any], value: Any) -> Any:
    """PostgreSQL: what Django's ``get_db_prep_save`` makes of a UUID field's value, in one call
    per value where that is three. With the datetimes no longer adapted on PostgreSQL, the
    processor's CPU per 1,000 taps fell by a tenth (issue 14; docs/benchmarks.md)."""
    return value if value is None or isinstance(value, uuid.UUID) else field.to_python(value)


def _adapters(adapting: tuple[Adapting, ...]) -> list[tuple[int, Callable[[Any], Any]]]:
    """The adapters bound to this thread's connection object itself: ``django.db.connection`` is
    a proxy that looks the connection up in a context-local on every attribute access, and the
    UUID field's adapter reads it per value (profiled: a sixth of the processor's own time)."""
    conn = connections[DEFAULT_DB_ALIAS]
    out: list[tuple[int, Callable[[Any], Any]]] = []
    for i, spec in enumerate(adapting):
        if spec is None:
            continue
        kind, field = spec
        if kind == "datetime":
            out.append((i, conn.ops.adapt_datetimefield_value))
        elif kind == "uuid":
            out.append((i, partial(_uuid, field)))
        else:
            out.append((i, partial(field.get_db_prep_save, connection=conn)))
    return out


def fast_insert(
    model: type[models.Model],
    fields: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    ignore_conflicts_on: Conflict = None,
    returning: Sequence[str] = (),
    stage_ready: bool = False,
) -> list[tuple[Any, ...]]:
    """Insert ``rows`` (tuples in ``fields`` order; foreign keys as ids, e.g. ``device_id``
    given as field name ``device``). Identifiers come from the model; values are parameters.
    ``returning``: fields to return for every row actually inserted (with
    ``ignore_conflicts_on``, the rows that were new) — one statement, no query before it.
    ``stage_ready``: the caller ran ``stage_sql`` in this transaction (PostgreSQL, with
    ``returning``)."""
    if not rows:
        return []
    sql, adapting = _plan(model, tuple(fields), ignore_conflicts_on, connection.vendor)
    active = _adapters(adapting)
    if active:
        prepared = []
        for row in rows:
            values = list(row)
            for i, adapt in active:
                values[i] = adapt(values[i])
            prepared.append(values)
    else:
        prepared = [list(r) for r in rows]
    if returning:
        return _insert_returning(model, tuple(fields), ignore_conflicts_on, tuple(returning), prepared, stage_ready)
    if connection.vendor == "postgresql" and ignore_conflicts_on is None and len(prepared) > 500:
        _copy(model, fields, prepared)
        return []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                _unnest_sql(model, tuple(fields), ignore_conflicts_on), [list(c) for c in zip(*prepared, strict=True)]
            )
        else:
            cursor.executemany(sql, prepared)
    return []


SQLITE_MAX_PARAMS = 32_766  # SQLite ≥ 3.32's limit on parameters per statement


def _insert_returning(
    model: type[models.Model],
    fields: tuple[str, ...],
    conflict: Conflict,
    returning: tuple[str, ...],
    prepared: list[list[Any]],
    stage_ready: bool,
) -> list[tuple[Any, ...]]:
    quote = connection.ops.quote_name
    tail = " RETURNING " + ", ".join(quote(_column(model, f)) for f in returning)
    # atomic: the staging table empties at each commit, so COPY and INSERT share one transaction.
    # Inside the caller's, no savepoint: a failure here fails the caller's whole transaction
    # anyway, and SAVEPOINT and RELEASE were two round trips a batch on the processor's hot path
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            fetched = _staged_insert(cursor.cursor, model, fields, conflict, tail, prepared, stage_ready)
        else:
            columns = ", ".join(quote(_column(model, f)) for f in fields)
            on_conflict = _on_conflict(model, conflict)
            marks = "(" + ", ".join(["%s"] * len(fields)) + ")"
            per = max(1, SQLITE_MAX_PARAMS // len(fields))
            fetched = []
            for start in range(0, len(prepared), per):
                chunk = prepared[start : start + per]
                cursor.execute(
                    f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "  # noqa: S608 (names from the model)
                    f"VALUES {', '.join([marks] * len(chunk))}{on_conflict}{tail}",
                    [v for row in chunk for v in row],
                )
                fetched.extend(cursor.fetchall())
    if connection.vendor == "postgresql":
        return fetched  # psycopg's binary results are the fields' Python types already (uuid.UUID, int)
    converters = [_from_db(model, f) for f in returning]
    return [tuple(convert(v) for convert, v in zip(converters, row, strict=True)) for row in fetched]


def _staged_insert(
    raw: Any,
    model: type[models.Model],
    fields: tuple[str, ...],
    conflict: Conflict,
    tail: str,
    prepared: list[list[Any]],
    stage_ready: bool,
) -> list[tuple[Any, ...]]:
    """PostgreSQL: binary COPY into a temporary staging table (emptied at commit), then one
    ``INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING``. COPY's rows are encoded in C; an
    ``unnest`` of arrays has every element quoted in Python — twice the rows per second
    (measured 2026-12-03: ~31,000 vs ~15,000 tap rows/s). Runs on Django's connection, inside
    the caller's transaction."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    stage = quote(f"stage_{model._meta.db_table}")
    columns = ", ".join(quote(_column(model, f)) for f in fields)
    conn = raw.connection
    cur = psycopg.Cursor(conn)  # server-side binding, binary results: no text round trip
    if not stage_ready:
        cur.execute(stage_sql(model, fields))
    types = _stage_types(conn, stage, columns)
    with cur.copy(f"COPY {stage} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:  # noqa: S608
        copy.set_types(types)
        for row in prepared:
            copy.write_row(row)
    on_conflict = _on_conflict(model, conflict)
    cur.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage}{on_conflict}{tail}", binary=True)  # noqa: S608
    rows: list[tuple[Any, ...]] = cur.fetchall()
    return rows


def stage_sql(model: type[models.Model], fields: Sequence[str]) -> str:
    """PostgreSQL: the statements that make ``model``'s staging table ready for an insert of
    ``fields`` (``fast_insert(…, returning=…)``): made if missing, emptied. Run in the insert's
    transaction, by the insert itself or, with ``stage_ready``, by its caller in a round trip
    it makes anyway. The same statements each time (not once per connection): a pooler may hand
    the transaction any server session; IF NOT EXISTS makes it a catalog lookup, and emptying
    it lets a second insert in one transaction start clean."""
    quote = connection.ops.quote_name
    stage = quote(f"stage_{model._meta.db_table}")
    columns = ", ".join(quote(_column(model, f)) for f in fields)
    return (
        f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS SELECT {columns} "  # noqa: S608 (names from the model)
        f"FROM {quote(model._meta.db_table)} WITH NO DATA; DELETE FROM {stage}"
    )


_types: dict[tuple[str, str], list[int]] = {}


def _stage_types(conn: Any, stage: str, columns: str) -> list[int]:
    """The staging table's column type OIDs (binary COPY needs them; built-in types, the same
    OIDs in every database), looked up once per process."""
    key = (stage, columns)
    if key not in _types:
        cur = psycopg.Cursor(conn)
        cur.execute(f"SELECT {columns} FROM {stage} LIMIT 0")  # noqa: S608
        _types[key] = [d.type_code for d in cur.description or ()]
    return _types[key]


def _on_conflict(model: type[models.Model], conflict: Conflict) -> str:
    if not conflict:
        return ""
    names = (conflict,) if isinstance(conflict, str) else conflict
    quote = connection.ops.quote_name
    return f" ON CONFLICT ({', '.join(quote(_column(model, n)) for n in names)}) DO NOTHING"


def _from_db(model: type[models.Model], name: str) -> Callable[[Any], Any]:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field), name
    if isinstance(field, models.UUIDField):
        return lambda v: v if v is None or isinstance(v, uuid.UUID) else uuid.UUID(v)
    return lambda v: v


@cache
def _unnest_sql(model: type[models.Model], fields: tuple[str, ...], conflict: Conflict) -> str:
    """PostgreSQL: ``INSERT … SELECT * FROM unnest(%s::type[], …)`` — one statement with one
    array per column. Twice the rows per second of a pipelined ``executemany``, which still
    sends every row as a statement of its own (measured: ~11,000 vs ~6,000 tap rows/s)."""
    quote = connection.ops.quote_name
    columns, arrays = [], []
    for name in fields:
        field = model._meta.get_field(name)
        assert isinstance(field, models.Field), name
        columns.append(quote(_column(model, name)))
        arrays.append(f"%s::{field.db_type(connection)}[]")
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(columns)}) "  # noqa: S608 (names from the model)
        f"SELECT * FROM unnest({', '.join(arrays)})"
    )
    sql += _on_conflict(model, conflict)
    return sql


def _copy(model: type[models.Model], fields: Sequence[str], rows: list[list[Any]]) -> None:
    """PostgreSQL's COPY: several times faster than a pipelined executemany for big batches
    (list imports, the July run), inside the same transaction."""
    meta = model._meta
    quote = connection.ops.quote_name
    columns = ", ".join(quote(_column(model, name)) for name in fields)
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor under Django's wrapper
        with raw.copy(f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
