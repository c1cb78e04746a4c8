"""ANALYZE during an import, so the lookups' plans know the leads it adds.

Postgres picks the index for each lookup from the table's statistics. While they do
not know the organization (a new one, or a table last analyzed near empty, say after
a truncate), it may probe the (organization, id) index and filter every lead of the
organization, per row: 100,000 rows would take over 10 minutes. So an import runs
ANALYZE after its first ANALYZE_FIRST_AT new leads, and again each time its new leads
have grown fourfold and outnumber the rows the statistics know of: beside 1,100,000
leads that is one run, not four (each ~0.2 s: it samples the table).
"""

from django.db import connection

from crm.models import Lead

ANALYZE_FIRST_AT = 1000

_TABLE = Lead._meta.db_table


class StatisticsRefresher:
    """Refreshes the lead table's statistics as one import's new leads grow."""

    def __init__(self) -> None:
        self.next_at = ANALYZE_FIRST_AT

    def after_batch(self, *, created: int) -> None:
        """Called with the import's new leads so far, after each batch."""
        if created >= self.next_at:
            _refresh_statistics()
            self.next_at = max(self.next_at * 4, _rows_in_statistics())


def _rows_in_statistics() -> int:
    """The lead table's size as the planner's statistics have it (0 if none yet)."""
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [_TABLE]
        )
        (rows,) = cursor.fetchone()
    return max(int(rows), 0)  # -1: never analyzed


def _refresh_statistics() -> None:
    # Only the columns the lookups filter on (the table's size is refreshed either
    # way): the JSON columns' statistics cost ANALYZE ~1 s per 100,000 rows.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"ANALYZE {_TABLE} (organization_id, external_id, phone, email)"
            )
