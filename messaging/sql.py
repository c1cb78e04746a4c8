"""Set-based writes the ORM cannot say in one statement (Postgres and SQLite alike).

On Postgres the rows travel as one binary array per column (`unnest`), bound on the
server, so the statement text is the same whatever the batch size and no value is
quoted in Python. With one placeholder per value, psycopg spent more time splitting
the query text (12 s of 106 s of worker time in a 20,000-lead run) than Postgres
spent running it; with text arrays, quoting them (1,000 receipts: 35 ms as text,
7 ms binary). Columns of plain ints or strings are packed here in one pass
(psycopg's generic list dumper scans each list twice to pick an element type, then
dumps element by element: a sixth of the workers' busy time in a 100,000-lead
benchmark); other columns go as lists for psycopg to dump. SQLite keeps the VALUES
form.
"""

import struct
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from functools import cache
from itertools import repeat

import psycopg
import psycopg.errors
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.types.json import set_json_dumps

# Binary array wire format (array_send): dimensions, has-nulls flag, element type,
# then per dimension its length and lower bound; then per element its byte length
# (-1 for NULL) and its bytes.
_HEAD = struct.Struct(">iiIii")
_EMPTY = struct.Struct(">iiI")
_LENGTH = struct.Struct(">i")
_INT8_ITEM = struct.Struct(">iq")
_NULL_ITEM = _LENGTH.pack(-1)
_INT8_OID, _INT8_ARRAY_OID = 20, 1016
_TEXT_OID, _TEXT_ARRAY_OID = 25, 1009


class _PackedInt8Array(bytes):
    """A bigint[] already in binary wire format."""


class _PackedTextArray(bytes):
    """A text[] already in binary wire format."""


class _Int8ArrayDumper(Dumper):
    format = Format.BINARY
    oid = _INT8_ARRAY_OID

    def dump(self, obj: bytes) -> bytes:
        return obj


class _TextArrayDumper(Dumper):
    format = Format.BINARY
    oid = _TEXT_ARRAY_OID

    def dump(self, obj: bytes) -> bytes:
        return obj


def _column_array(values: Sequence) -> object:
    """One column's values as a bound array: packed if all ints, or all strings or
    decimals (NULLs allowed), else the list for psycopg to dump.

    Decimals go as their exact text, which the column's numeric cast reads back
    exactly: psycopg's binary numeric dumper took 2 us a value, 5x a string's.
    """
    kinds = set(map(type, values))
    if kinds and kinds <= {Decimal, type(None)} and Decimal in kinds:
        values = [None if value is None else str(value) for value in values]
        kinds = {str, type(None)}
    if kinds == {int}:
        try:
            items = b"".join(map(_INT8_ITEM.pack, repeat(8), values))
        except struct.error:  # beyond bigint: psycopg sends numeric
            return list(values)
        head = _HEAD.pack(1, 0, _INT8_OID, len(values), 1)
        return _PackedInt8Array(head + items)
    if kinds and kinds <= {str, type(None)}:
        parts, has_null = [b""], 0
        for value in values:
            if value is None:
                parts.append(_NULL_ITEM)
                has_null = 1
            else:
                encoded = value.encode()
                parts.append(_LENGTH.pack(len(encoded)))
                parts.append(encoded)
        parts[0] = _HEAD.pack(1, has_null, _TEXT_OID, len(values), 1)
        return _PackedTextArray(b"".join(parts))
    return list(values)


def ids_array(ids: Iterable[int]) -> object:
    """Ids to bind as `%b::bigint[]` on a bulk_cursor, packed in one pass.

    Django's cursor binds a list of 2,000 ids by writing an ARRAY literal in Python
    (0.14 ms a batch); packed, it goes as it is.
    """
    return _column_array(list(ids))


_PLAN_SETTINGS = ("enable_nestloop", "enable_seqscan", "enable_bitmapscan")
_BY_KEY_PLAN = "; ".join(f"SET LOCAL {name} = off" for name in _PLAN_SETTINGS)
_DEFAULT_PLAN = "; ".join(f"SET LOCAL {name} TO DEFAULT" for name in _PLAN_SETTINGS)


def update_from_rows(
    *,
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence],
    assignments: str,
    condition: str = "TRUE",
    params: Sequence = (),
) -> list[int]:
    """Update `table` row by row from `rows` in one statement; return the ids touched.

    `columns` names and types the values of each row (the first is the row's id);
    `assignments` and `condition` refer to them as `v.<name>` and to the table as `t`.
    `params` fill placeholders in `assignments` then `condition`. Rows that the
    condition excludes are left alone, which is how callers make a write conditional
    on the state they claimed (and so exact under races).
    """
    if not rows:
        return []
    names = ", ".join(name for name, _ in columns)
    if connection.vendor != "postgresql":
        row_sql = "(" + ", ".join(f"CAST(%s AS {kind})" for _, kind in columns) + ")"
        values = [value for row in rows for value in row]
        # SQLite's RETURNING sees only the target table, and not by its alias.
        sql = (
            f"WITH v({names}) AS (VALUES {', '.join([row_sql] * len(rows))}) "
            f"UPDATE {table} AS t SET {assignments} FROM v "
            f"WHERE t.id = v.{columns[0][0]} AND {condition} RETURNING id"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*values, *params])
            return [row[0] for row in cursor.fetchall()]
    (key, key_type), *others = columns
    arrays = ", ".join(
        ["(SELECT ids FROM keys)"] + [f"%b::{_untyped(t)}[]" for _, t in others]
    )
    values = [_column_array(column) for column in zip(*rows, strict=True)]
    # The ids once more, as the table's index condition, and a hash join: each row
    # found by primary key, whatever the statistics say. Left to choose, the
    # planner, told by an ANALYZE of a smaller table that no log is `processing`,
    # scans the table and re-reads the whole batch for each row it finds (2 s for
    # 1,000 rows).
    sql = (
        f"WITH keys(ids) AS (SELECT %b::{key_type}[]),"
        f" v({names}) AS (SELECT * FROM unnest({arrays})) "
        f"UPDATE {table} AS t SET {assignments} FROM v "
        f"WHERE t.id = v.{key} AND t.id = ANY((SELECT ids FROM keys)::{key_type}[])"
        f" AND {condition} RETURNING t.id"
    )
    with transaction.atomic(savepoint=False), by_key_plan(), bulk_cursor() as cursor:
        cursor.execute(sql, [*values, *params])
        return [row[0] for row in cursor.fetchall()]


@contextmanager
def by_key_plan() -> Iterator[None]:
    """Inside a transaction: plan the statements within as lookups by index.

    For the pipeline's reads and writes of a batch of rows by id, whatever the
    statistics say: the log table grows from nothing during a campaign, and with
    statistics from when it was small, Postgres scans all of it for 200 ids
    (5 to 13 ms a claim at 20,000 logs). Without autovacuum (this project's CI)
    the statistics are never fresh. Plain index scans, not bitmap scans: only
    those mark the entries of dead row versions (a claimed log's old entry in the
    due index) so the next scan skips them; a bitmap scan visits each again, 3.5
    ms a claim.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(_BY_KEY_PLAN)
    yield
    with connection.cursor() as cursor:
        cursor.execute(_DEFAULT_PLAN)


def insert_ignoring_conflicts(
    *, table: str, columns: Sequence[str], rows: Sequence[Sequence], returning: str
) -> list[tuple]:
    """INSERT rows, skipping those that hit a unique constraint; return what went in.

    Unlike `bulk_create(ignore_conflicts=True)` this says exactly which rows were new,
    so counters can be moved by what really happened when two runs race.
    """
    if not rows:
        return []
    if connection.vendor == "postgresql":
        types = column_types(table)
        arrays = ", ".join(f"%b::{types[name]}[]" for name in columns)
        source = f"SELECT * FROM unnest({arrays})"
        values = [_column_array(column) for column in zip(*rows, strict=True)]
    else:
        row_sql = "(" + ", ".join(["%s"] * len(columns)) + ")"
        source = "VALUES " + ", ".join([row_sql] * len(rows))
        values = [value for row in rows for value in row]
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) {source} "
        f"ON CONFLICT DO NOTHING RETURNING {returning}"
    )
    with bulk_cursor() as cursor:
        cursor.execute(sql, values)
        return cursor.fetchall()


def copy_rows(*, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> bool:
    """COPY rows into `table` (Postgres), all or none: False, and nothing written,
    if one of them meets a unique key that exists, for the caller to insert them
    another way (insert_ignoring_conflicts).

    What the database floor does, in binary: psycopg writes a row in C (text COPY
    took 16 us a row of a log, binary 2.5 us) and Postgres parses no timestamps.
    Values as for insert_ignoring_conflicts; a jsonb column's are JSON text.
    """
    types = column_types(table)
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            set_json_dumps(_json_as_given, context=cursor.cursor)
            with cursor.copy(sql) as copy:
                copy.set_types([types[name] for name in columns])
                for row in rows:
                    copy.write_row(row)
    except psycopg.errors.UniqueViolation:
        return False
    return True


def _json_as_given(text: str) -> str:
    """psycopg's JSON dumps for values that are JSON text already."""
    return text


def _untyped(kind: str) -> str:
    """`varchar(12)` -> `varchar`: the array cast without the length or precision.

    Casting an array to a type with a modifier checks every element while the
    statement is planned (array_map: 5% of Postgres's time in the benchmark); the
    column's own modifier still checks each value as it is written.
    """
    return kind.split("(", 1)[0]


@cache
def column_types(table: str) -> dict[str, str]:
    """The table's column types as Postgres spells them, without modifiers
    (`character varying`, not `character varying(120)`; see _untyped)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute"
            " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            [table],
        )
        return dict(cursor.fetchall())


@contextmanager
def bulk_cursor() -> Iterator[CursorWrapper]:
    """On Postgres a cursor that binds parameters on the server (Django's binds them
    into the query text), still through Django's wrapper: errors, execute wrappers."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as raw:
        raw.adapters.register_dumper(_PackedInt8Array, _Int8ArrayDumper)
        raw.adapters.register_dumper(_PackedTextArray, _TextArrayDumper)
        yield CursorWrapper(raw, connection)
