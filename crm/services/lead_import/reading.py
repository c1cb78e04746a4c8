"""A lead import's CSV read: its delimiter, its header's columns, rows in batches."""

import csv
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from crm.services.lead_import.rows import Column, Row, label, parsed_rows

ATTRIBUTE_KEY_MAX_LENGTH = 64  # crm.rules.fields.ATTRIBUTE_KEY

# A header, lowercased with runs of anything but letters and digits turned into "_",
# names a field through one of these; any other header becomes an attribute.
COLUMN_ALIASES = {
    "external_id": ("external_id", "externalid", "id", "customer_id", "lead_id"),
    "name": ("name", "full_name", "fullname"),
    "first_name": ("first_name", "firstname", "given_name"),
    "last_name": ("last_name", "lastname", "surname", "family_name"),
    "phones": (
        "phone",
        "phones",
        "mobile",
        "mobile_phone",
        "cell",
        "phone_number",
        "phone_numbers",
    ),
    "emails": ("email", "emails", "e_mail", "email_address", "email_addresses"),
    "total_spend": ("total_spend", "spend", "totalspend"),
    "visits": ("visits", "visit_count"),
    "timezone": ("timezone", "time_zone", "tz"),
    "tags": ("tags", "tag"),
    "sms_opt_out": ("sms_opt_out", "sms_optout"),
    "email_opt_out": ("email_opt_out", "email_optout"),
    "opt_out": ("opt_out", "opted_out", "unsubscribed"),
}
_FIELD_BY_HEADER = {
    alias: name for name, aliases in COLUMN_ALIASES.items() for alias in aliases
}
_IDENTIFIER_FIELDS = frozenset({"external_id", "phones", "emails"})
_HEADER_JUNK = re.compile(r"[^a-z0-9]+")
_DELIMITERS = (",", ";", "\t")
# A column map's targets besides the field names: an attribute, or nothing.
ATTRIBUTE_PREFIX = "attr:"
IGNORE = "ignore"


@dataclass(slots=True)
class Batch:
    """Parsed rows, and the rows read for them: the accepted and the rejected."""

    rows: list[Row] = field(default_factory=list)
    rows_read: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


class Unreadable(ValueError):
    """The file cannot be read (on): raised once the rows before are yielded."""


def batches(
    stream: TextIO,
    *,
    batch_size: int,
    region: str,
    column_map: dict[str, str] | None = None,
) -> Iterator[Batch]:
    """The file's rows parsed, in batches; the last may be short (or empty)."""
    reader = None
    batch = Batch()
    try:
        reader = _csv_reader(stream)
        header = _read_header(reader)
        columns = _columns(header, column_map or {})
        for item in parsed_rows(reader, columns, len(header), region=region):
            batch.rows_read += 1
            if isinstance(item, Row):
                batch.rows.append(item)
            else:
                batch.rejected.append(item)
            # Rejected rows count too, so a file of bad rows is batched as well.
            if batch.rows_read >= batch_size:
                yield batch
                batch = Batch()
    except (UnicodeDecodeError, csv.Error) as error:
        yield batch
        raise _unreadable(stream, reader, error) from error
    yield batch


def _unreadable(stream: TextIO, reader: Any, error: Exception) -> Unreadable:
    """What stops the reading, on the line the reader had reached."""
    line = reader.line_num + 1 if reader else 1
    encoding = getattr(stream, "encoding", None) or "the stream's encoding"
    cause = (
        f"cannot be decoded as {encoding}"
        if isinstance(error, UnicodeDecodeError)
        else f"is not valid CSV ({error})"
    )
    # A decoder reads ahead, so the fault is on this line or a little after.
    return Unreadable(
        f"line {line} or soon after: the file {cause}; the rows before line "
        f"{line} were imported"
    )


def _csv_reader(stream: TextIO) -> Any:
    """A csv.reader over the stream, in the delimiter its header uses (, ; or tab)."""
    # Spreadsheets in many locales save "CSV" with semicolons; the header tells.
    header = stream.readline()
    delimiter = max(_DELIMITERS, key=header.count) if header else ","
    return csv.reader(itertools.chain([header], stream), delimiter=delimiter)


def _read_header(reader: Iterator[list[str]]) -> list[str]:
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        raise Unreadable("the file is empty: it needs a header line")
    return header


def _header_key(header: str) -> str:
    return _HEADER_JUNK.sub("_", header.strip().lower()).strip("_")


def column_target(header: str) -> str:
    """What the importer makes of a header by itself: a field name (a key of
    COLUMN_ALIASES), "attr:<key>", or IGNORE for a header of no letters or digits."""
    key = _header_key(header)
    if not key:
        return IGNORE
    return _FIELD_BY_HEADER.get(key) or f"{ATTRIBUTE_PREFIX}{key}"


def column_map_error(column_map: dict[str, str]) -> str | None:
    """Why a column map cannot be used, or None: each target must be a field, an
    attribute with a name, or IGNORE."""
    for header, target in column_map.items():
        if target == IGNORE or target in COLUMN_ALIASES:
            continue
        if target.startswith(ATTRIBUTE_PREFIX) and _header_key(
            target[len(ATTRIBUTE_PREFIX) :]
        ):
            continue
        return f"column {label(header)}: unknown target {label(target)}"
    return None


def preview(stream: TextIO, *, rows: int) -> tuple[list[str], list[list[str]]]:
    """The file's header and its first `rows` non-blank rows, as cells."""
    reader = _csv_reader(stream)
    header = _read_header(reader)
    first = []
    for cells in reader:
        if any(cell.strip() for cell in cells):
            first.append(cells)
            if len(first) >= rows:
                break
    return header, first


def cells_at_lines(stream: TextIO, lines: set[int]) -> dict[int, list[str]]:
    """The cells of the rows starting on `lines` (numbered as rejects are: the
    header is line 1), so rejected rows can be handed back to be fixed."""
    found: dict[int, list[str]] = {}
    reader = _csv_reader(stream)
    line = reader.line_num + 1
    for cells in reader:
        start, line = line, reader.line_num + 1
        if start in lines:
            found[start] = cells
            if len(found) == len(lines):
                break
    return found


def _columns(header: list[str], column_map: dict[str, str]) -> list[Column]:
    """The header's columns; `column_map` (header -> target, see column_target)
    overrides what the header's own name would say."""
    columns = []
    for index, title in enumerate(header):
        target = column_map.get(title) or column_target(title)
        if target == IGNORE:
            continue
        if not target.startswith(ATTRIBUTE_PREFIX):
            columns.append(Column(index=index, field=target, header=label(title)))
            continue
        key = _header_key(target[len(ATTRIBUTE_PREFIX) :])
        if key[0].isdigit():
            key = f"_{key}"
        columns.append(
            Column(
                index=index,
                field="attribute",
                header=label(title),
                key=key[:ATTRIBUTE_KEY_MAX_LENGTH],
            )
        )
    if not any(column.field in _IDENTIFIER_FIELDS for column in columns):
        raise Unreadable(
            "the header names no identifier column: it needs an external_id (or id), "
            "phone or email column; found " + ", ".join(map(label, header))
        )
    return columns
