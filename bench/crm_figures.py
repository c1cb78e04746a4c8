"""The CRM's figures for the benchmark: segment previews and CSV lead import, timed.

Both run on Postgres, beside whatever else the database holds (the benchmark's own
leads, say), because that is where a marketer meets them.
"""

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from django.db import DatabaseError, connection

from crm.models import Lead, Organization
from crm.selectors import segment_preview
from crm.services.demo_data import demo_leads_csv
from crm.services.lead_import import lead_import_csv

# Rules a marketer previews, over the fields the demo leads fill: ranges on indexed
# numbers, a tag, substrings, dates, attributes, flags and a list.
PREVIEW_RULES = {
    "every lead": {"field": "visits", "op": "gte", "value": 0},
    "spend above 500": {"field": "total_spend", "op": "gt", "value": 500},
    "visits and spend": {
        "and": [
            {"field": "visits", "op": "gte", "value": 3},
            {"field": "total_spend", "op": "gt", "value": 100},
        ]
    },
    "a tag": {"field": "tags", "op": "contains", "value": "vip"},
    "name contains": {"field": "name", "op": "contains", "value": "ann"},
    "created within 30 days": {
        "field": "created_at",
        "op": "within_last_days",
        "value": 30,
    },
    "an attribute or visits": {
        "or": [
            {"field": "attributes.loyalty_tier", "op": "eq", "value": "gold"},
            {"field": "visits", "op": "gt", "value": 10},
        ]
    },
    "not opted out": {"field": "opted_out", "op": "eq", "value": False},
    "email contains": {"field": "email", "op": "contains", "value": "example.net"},
    "two time zones": {
        "field": "timezone",
        "op": "in",
        "value": ["America/Chicago", "America/Denver"],
    },
}
PREVIEW_REPEATS = 3
IMPORT_ORGANIZATION_SLUG = "bench-import"


def database_checkpoint() -> bool:
    """Write back every dirty page now, so a timed step that follows does not pay
    for the step before it: Postgres checkpoints after about 0.5 GB of WAL, as much
    as one benchmark run of 100,000 leads writes. False without the privilege."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    except DatabaseError:  # not a superuser, nor granted pg_checkpoint
        return False
    return True


def preview_seconds(*, organization: Organization) -> dict[str, float]:
    """Per rule of PREVIEW_RULES, the median seconds of a preview (count and sample)."""
    timings = {}
    for name, rules in PREVIEW_RULES.items():
        runs = []
        for _ in range(PREVIEW_REPEATS):
            started = time.perf_counter()
            segment_preview(organization=organization, rules=rules)
            runs.append(time.perf_counter() - started)
        timings[name] = round(statistics.median(runs), 3)
    return timings


@dataclass(frozen=True)
class ImportFigures:
    rows: int
    new_seconds: float
    new_rows_per_s: int
    update_seconds: float
    update_rows_per_s: int


def import_figures(*, rows: int, directory: Path) -> ImportFigures:
    """Import a demo CSV of `rows` rows as new leads, then again as updates.

    The file is written once per size and kept in `directory`. The leads go to an
    organization of their own, emptied (and the table vacuumed) before the first
    import and emptied after the second, so every run imports new leads into the
    same table.
    """
    path = directory / f"bench-import-{rows}.csv"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        demo_leads_csv(path=partial, count=rows, seed=rows)
        partial.rename(path)
    organization, _ = Organization.objects.get_or_create(
        slug=IMPORT_ORGANIZATION_SLUG, defaults={"name": "Bench import"}
    )
    _leads_drop(organization, vacuum=True)
    database_checkpoint()
    try:
        new = _timed_import(organization, path)
        again = _timed_import(organization, path)
    finally:
        _leads_drop(organization, vacuum=False)
    return ImportFigures(
        rows=rows,
        new_seconds=round(new, 3),
        new_rows_per_s=round(rows / new),
        update_seconds=round(again, 3),
        update_rows_per_s=round(rows / again),
    )


def _timed_import(organization: Organization, path: Path) -> float:
    with open(path, newline="", encoding="utf-8") as stream:
        started = time.perf_counter()
        report = lead_import_csv(organization=organization, stream=stream)
        seconds = time.perf_counter() - started
    if report.rejected or report.created + report.updated != report.rows_read:
        raise RuntimeError(f"the benchmark's CSV did not import cleanly: {report}")
    return seconds


def _leads_drop(organization: Organization, *, vacuum: bool) -> None:
    """Delete the organization's leads in one statement (the benchmark's own, with
    nothing else pointing at them); VACUUM so the next import finds no dead rows."""
    table = Lead._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE organization_id = %s", [organization.pk]
        )
        if vacuum:
            cursor.execute(f"VACUUM ANALYZE {table}")
