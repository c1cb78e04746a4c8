"""Set-based writes the ORM cannot say in one statement (Postgres and SQLite alike)."""

from collections.abc import Sequence

from django.db import connection


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
    row_sql = "(" + ", ".join(f"CAST(%s AS {kind})" for _, kind in columns) + ")"
    values_sql = ", ".join([row_sql] * len(rows))
    sql = (
        f"WITH v({names}) AS (VALUES {values_sql}) "
        f"UPDATE {table} AS t SET {assignments} FROM v "
        f"WHERE t.id = v.{columns[0][0]} AND {condition} RETURNING t.id"
    )
    if connection.vendor == "sqlite":
        # SQLite's RETURNING sees only the target table, and not by its alias.
        sql = sql.removesuffix("RETURNING t.id") + "RETURNING id"
    flat = [value for row in rows for value in row]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*flat, *params])
        return [row[0] for row in cursor.fetchall()]


def insert_ignoring_conflicts(
    *, table: str, columns: Sequence[str], rows: Sequence[Sequence], returning: str
) -> list[tuple]:
    """INSERT rows, skipping those that hit a unique constraint; return what went in.

    Unlike `bulk_create(ignore_conflicts=True)` this says exactly which rows were new,
    so counters can be moved by what really happened when two runs race.
    """
    if not rows:
        return []
    row_sql = "(" + ", ".join(["%s"] * len(columns)) + ")"
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) "
        f"VALUES {', '.join([row_sql] * len(rows))} "
        f"ON CONFLICT DO NOTHING RETURNING {returning}"
    )
    flat = [value for row in rows for value in row]
    with connection.cursor() as cursor:
        cursor.execute(sql, flat)
        return cursor.fetchall()
