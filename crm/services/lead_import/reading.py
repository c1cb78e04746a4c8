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


@dataclass(slots=True)
class Batch:
    """Parsed rows, and the rows read for them: the accepted and the rejected."""

    rows: list[Row] = field(default_factory=list)
    rows_read: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


class Unreadable(ValueError):
    """The file cannot be read (on): raised once the rows before are yielded."""


def batches(stream: TextIO, *, batch_size: int, region: str) -> Iterator[Batch]:
    """The file's rows parsed, in batches; the last may be short (or empty)."""
    reader = None
    batch = Batch()
    try:
        reader = _csv_reader(stream)
        header = _read_header(reader)
        columns = _columns(header)
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


def _columns(header: list[str]) -> list[Column]:
    columns = []
    for index, title in enumerate(header):
        key = _header_key(title)
        if not key:
            continue
        name = _FIELD_BY_HEADER.get(key)
        if name:
            columns.append(Column(index=index, field=name, header=label(title)))
            continue
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
