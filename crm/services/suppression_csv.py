"""The suppression list as CSV: export for a record, import from another system.

Columns `channel,address,reason`. An import only adds: an address suppressed
already keeps its first reason, and nothing in a file ever lifts one.
"""

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

from django.db.models import QuerySet

from crm.contacts import ContactError
from crm.models import Channel, Suppression
from crm.services.suppressions import (
    NewSuppression,
    address_normalize,
    addresses_suppress,
)
from crm.spreadsheet import formula_escaped, formula_unescaped

COLUMNS = ["channel", "address", "reason", "source", "created_at"]
# Rows inserted per statement: one INSERT of 1,000 short rows is a few ms.
IMPORT_BATCH = 1000
_ITERATOR_CHUNK = 2000


class _Echo:
    """A file-like object whose write returns the line, for streaming responses."""

    def write(self, value: str) -> str:
        return value


def suppressions_export_csv_lines(
    *, suppressions: QuerySet[Suppression]
) -> Iterator[str]:
    """The suppressions as CSV lines, header first, streamed in chunks of rows."""
    writer = csv.writer(_Echo())
    yield writer.writerow(COLUMNS)
    for row in (
        suppressions.order_by("pk")
        .values_list(*COLUMNS)
        .iterator(chunk_size=_ITERATOR_CHUNK)
    ):
        channel, address, reason, source, created_at = row
        yield writer.writerow(
            [
                channel,
                formula_escaped(address),
                reason,
                formula_escaped(source),
                created_at.isoformat(),
            ]
        )


@dataclass
class SuppressionImportReport:
    rows_read: int = 0
    added: int = 0  # new suppressions
    present: int = 0  # suppressed already, left as they were
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, why)

    def summary(self) -> str:
        return (
            f"{self.rows_read} rows read, {self.added} addresses added, "
            f"{self.present} suppressed already, {len(self.rejected)} rejected"
        )


class SuppressionFileError(Exception):
    """A file that is not a suppression CSV (no channel and address columns)."""


def suppressions_import_csv(
    *, organization_id: int, stream: TextIO, source: str
) -> SuppressionImportReport:
    """Add the file's addresses to the organization's list; bad rows by line.

    A row is `channel,address[,reason]`: the address normalized as stored, the
    reason one of Suppression.Reason (import when blank or missing). One query
    and one INSERT per IMPORT_BATCH rows.
    """
    reader = csv.reader(stream)
    header = [name.strip().lower() for name in next(reader, [])]
    if "channel" not in header or "address" not in header:
        raise SuppressionFileError(
            "the first line must name the columns: channel,address[,reason]"
        )
    at = {
        name: header.index(name)
        for name in ("channel", "address", "reason")
        if name in header
    }
    report = SuppressionImportReport()
    batch: dict[tuple[str, str], NewSuppression] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        report.rows_read += 1
        parsed = _parsed(row, at, organization_id, source)
        if isinstance(parsed, str):
            report.rejected.append((line, parsed))
            continue
        batch.setdefault((parsed.channel, parsed.address), parsed)
        if len(batch) >= IMPORT_BATCH:
            _write(organization_id, batch.values(), report)
            batch = {}
    _write(organization_id, batch.values(), report)
    return report


def _parsed(
    row: list[str], at: dict[str, int], organization_id: int, source: str
) -> NewSuppression | str:
    """The row as a suppression, or why it is not one."""

    def cell(name: str) -> str:
        index = at.get(name)
        if index is None or index >= len(row):
            return ""
        return formula_unescaped(row[index].strip())

    channel = cell("channel").lower()
    if channel not in Channel.values:
        return f"channel {channel!r} is not one of {', '.join(Channel.values)}"
    try:
        address = address_normalize(channel=channel, address=cell("address"))
    except ContactError as error:
        return str(error)
    reason = cell("reason").lower() or Suppression.Reason.IMPORT
    if reason not in Suppression.Reason.values:
        return f"reason {reason!r} is not one of {', '.join(Suppression.Reason.values)}"
    return NewSuppression(
        organization_id=organization_id,
        channel=channel,
        address=address,
        reason=reason,
        source=source,
    )


def _write(
    organization_id: int,
    suppressions: Iterable[NewSuppression],
    report: SuppressionImportReport,
) -> None:
    suppressions = list(suppressions)
    if not suppressions:
        return
    wanted = {(new.channel, new.address) for new in suppressions}
    present = {
        (channel, address)
        for channel, address in Suppression.objects.filter(
            organization_id=organization_id,
            address__in={address for _, address in wanted},
        ).values_list("channel", "address")
        if (channel, address) in wanted
    }
    addresses_suppress(
        suppressions=[
            new for new in suppressions if (new.channel, new.address) not in present
        ]
    )
    report.present += len(present)
    report.added += len(wanted) - len(present)
