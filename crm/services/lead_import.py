"""Lead import from CSV: stream rows, normalize and validate them, upsert in batches."""

import contextlib
import csv
import gc
import itertools
import json
import mmap
import operator
import os
import pickle
import re
import signal
import sys
import traceback
import zoneinfo
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache
from multiprocessing.connection import Connection
from typing import Any, TextIO

from django.conf import settings
from django.db import connection, transaction

from crm.contacts import ContactError, normalize_emails, normalize_phones
from crm.models import Lead, Organization
from crm.services.lead_bulk import (
    lead_text_encoder,
    lead_texts_insert,
    lead_values_insert,
    lead_values_update,
)
from crm.spreadsheet import formula_unescaped

# A batch is one lookup query, one read of the leads it matched and one COPY. On
# 100,000 rows, batches of 250, 1,000 and 5,000 took 15.0, 14.7 and 14.3 s: the
# size hardly matters, so it is kept small; memory holds one batch (see tests).
BATCH_SIZE = 1000

# Postgres picks the index for each lookup from the table's statistics. While they
# do not know the organization (a new one, or a table last analyzed near empty, say
# after a truncate), it may probe the (organization, id) index and filter every lead
# of the organization, per row: 100,000 rows did not finish in 10 minutes. So the
# import runs ANALYZE after its first 1,000 new leads, and again each time its new
# leads have grown fourfold and outnumber the rows the statistics know of. Beside
# 1,100,000 leads that is one run, not four (each ~0.2 s: it samples the table).
ANALYZE_FIRST_AT = 1000

EXTERNAL_ID_MAX_LENGTH = Lead._meta.get_field("external_id").max_length
NAME_MAX_LENGTH = Lead._meta.get_field("name").max_length
SPEND_MAX = Decimal("9999999999.99")  # Lead.total_spend: 12 digits, 2 of them cents
VISITS_MAX = 2_147_483_647  # PositiveIntegerField's ceiling on every database
VISITS_MAX_DIGITS = len(str(VISITS_MAX))
ATTRIBUTE_KEY_MAX_LENGTH = 64  # crm.rules.ATTRIBUTE_KEY
# Bounds of what one row may bring, as the API's lead serializer has them: a value
# past them is a mistake in the file (a shifted column, a pasted document).
ATTRIBUTE_VALUE_MAX_LENGTH = 1000
TAG_MAX_LENGTH = 64
TAGS_MAX = 100
CONTACTS_MAX = 20  # phones, and emails, a row may list
# Rejected rows kept in a report, with their line and reason; the rest are counted.
REJECTED_KEPT = 1000
# How much of a cell a reason quotes: enough to find it, never a whole document.
SHOWN_MAX = 40

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
_TAG_SEPARATORS = re.compile(r"[;|]")
# "$1,234.50", "1234.5", "0": digits with optional thousands commas and cents.
_AMOUNT = re.compile(r"\$?\s*(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?|\$?\s*(\.\d+)")
_WHOLE = re.compile(r"\d+")
# Canonical numbers only: "007" or "02139" (codes, zips) keep their leading zeros.
_NUMBER = re.compile(r"-?(?:0|[1-9]\d{0,14})(\.\d{1,10})?")
_TRUE = frozenset({"1", "true", "t", "yes", "y", "x"})
_FALSE = frozenset({"", "0", "false", "f", "no", "n"})
_CENT = Decimal("0.01")
_DELIMITERS = (",", ";", "\t")
_JSON_FIELDS = frozenset(
    f.attname
    for f in Lead._meta.concrete_fields
    if f.get_internal_type() == "JSONField"
)

_UPDATED_FIELDS = [
    "external_id",
    "name",
    "phones",
    "emails",
    "phone",
    "email",
    "total_spend",
    "visits",
    "timezone",
    "attributes",
    "tags",
    "sms_opt_out",
    "email_opt_out",
]


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (from `line` on); `report` is so far."""

    def __init__(self, message: str, *, report: "ImportReport") -> None:
        super().__init__(message)
        self.report = report


class RowError(ValueError):
    """One row that cannot be imported; the message is the reason reported."""


@dataclass
class ImportReport:
    """What an import did: each accepted row created a lead or updated one.

    `rejected` holds the first REJECTED_KEPT rejected rows as (line, reason);
    `rejected_count` counts them all.
    """

    rows_read: int = 0
    created: int = 0
    updated: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    rejected_count: int = 0

    def summary(self) -> str:
        return (
            f"created {self.created}, updated {self.updated}, "
            f"rejected {self.rejected_count}"
        )

    def add_rejected(self, rejected: list[tuple[int, str]]) -> None:
        room = REJECTED_KEPT - len(self.rejected)
        if room > 0:
            self.rejected.extend(rejected[:room])
        self.rejected_count += len(rejected)


@dataclass(slots=True)
class _Row:
    line: int
    external_id: str = ""
    phones: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    sms_opt_out: bool = False
    email_opt_out: bool = False


# A row's fields as a tuple: rows are pickled so (and rebuilt with _Row(*fields)),
# as pickling dataclasses field by field cost as much as all the rest of the
# importing process's Python.
_row_fields = operator.attrgetter(*_Row.__slots__)


@dataclass(frozen=True, slots=True)
class _Column:
    index: int
    field: str  # a COLUMN_ALIASES key, or "attribute"
    header: str  # as written in the file, for reasons
    key: str = ""  # the attribute's key


def lead_import_csv(
    *,
    organization: Organization,
    stream: TextIO,
    batch_size: int = BATCH_SIZE,
    region: str | None = None,
    progress: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """Import the CSV in `stream` into the organization's leads; return the report.

    The stream is read row by row and written a batch at a time (each batch in its
    own transaction), so memory is that of one batch whatever the file's size, and
    an interrupted import can simply be run again: rows upsert. On Linux a forked
    child process reads and parses the stream (see _read_ahead), which nothing else
    may read meanwhile; it is gone when this returns or raises.

    A row finds its lead by external id; failing that, by primary phone, then by
    primary email (a row with an external id only claims a lead that has none, so
    two customers of a source system sharing a phone stay two leads). Later rows win
    field by field: a non-empty cell replaces the value, an empty one leaves it;
    phones, emails and tags add to the lists (the row's phone becomes the primary);
    attributes merge; an opt-out is set but never cleared by an import.

    A row is rejected whole, and recorded as (line, reason) with the header as line
    1, when a phone, email, spend, visits, timezone or opt-out is present but
    invalid, or it has no external id, phone or email. ImportFileError is raised when
    the file has no header, no identifier column, or cannot be read from some line
    on; the batches before it are imported. `progress` is called after each batch.
    """
    report = ImportReport()
    region = region or settings.CRM_DEFAULT_PHONE_REGION
    batches = _read_ahead(_batches(stream, batch_size=batch_size, region=region))
    analyze_at = ANALYZE_FIRST_AT
    # The collector would walk every object of the process (Django's, some 80,000)
    # again and again as batches come and go; the import's own are still collected.
    # A process that froze its objects itself (a pre-forking server) keeps them so.
    freezing = gc.get_freeze_count() == 0
    if freezing:
        gc.freeze()
    try:
        for batch in batches:
            report.rows_read += batch.rows_read
            report.add_rejected(batch.rejected)
            _upsert_batch(organization, batch, report)
            if report.created >= analyze_at:
                _refresh_statistics()
                analyze_at = max(analyze_at * 4, _rows_in_statistics())
            if progress:
                progress(report)
    except _Unreadable as error:
        raise ImportFileError(str(error), report=report) from error.__cause__
    finally:
        batches.close()  # stops the parse process, even on a database error
        if freezing:
            gc.unfreeze()
    return report


_FORK = sys.platform == "linux"


def _read_ahead(batches: Iterator["_Batch"]) -> Generator["_Prepared", None, None]:
    """The batches, parsed and prepared in a child process while the caller writes.

    Parsing is Python through and through (2 s per 100,000 rows); in a thread it
    took the GIL from the writes, and every answer from Postgres then waited for
    the parse thread's switch interval. A forked child parses on the other core
    instead, and prepares each batch (_prepared) so that the importing process,
    which waits on Postgres in turn, has as little Python left as can be. The
    pipe's buffer holds the child a batch ahead at most, so memory stays flat. An
    exception parsing (ImportFileError's _Unreadable) arrives after the batches
    before it, its cause kept; the child is killed and reaped however the consumer
    ends. A bare os.fork, not multiprocessing, which refuses to start children from
    a daemonic process such as a Celery worker's. Off Linux (no fork, or a fork
    that macOS's system libraries may not survive) batches are prepared in line.
    """
    text = _text if connection.vendor == "postgresql" else None
    if not _FORK:
        for batch in batches:
            yield _prepared(batch, text)
        return
    _timezones()  # cached in this process, so not rebuilt by every child
    # Texts are made while the last batch written made new leads: a file imported
    # again (every row an update) would spend a fifth of the child's time on them.
    wants_texts = mmap.mmap(-1, 1)  # shared with the child
    wants_texts[0] = 1
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        status = 1
        try:
            os.close(read)
            sender = Connection(write, readable=False)
            _prepare_in_child(batches, sender, text, wants_texts)
            status = 0
        except BaseException:
            traceback.print_exc()  # what the importer reports as the child's end
        finally:
            os._exit(status)
    os.close(write)
    receiver = Connection(read, writable=False)
    try:
        while True:
            try:
                kind, value = receiver.recv()
            except EOFError:
                raise RuntimeError(
                    "the lead import's parse process ended before the file did"
                ) from None
            if kind == "batch":
                yield value
                wants_texts[0] = value.created > 0
            elif kind == "error":
                error, cause = value
                raise error from cause
            else:
                return
    finally:
        receiver.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # it holds nothing to clean up
        os.waitpid(pid, 0)


def _prepare_in_child(
    batches: Iterator["_Batch"],
    sender: Connection,
    text: Callable[[tuple], str] | None,
    wants_texts: mmap.mmap,
) -> None:
    """The child's side of _read_ahead: send each batch, then the end or the error."""
    # Ctrl-C reaches the whole process group; the importer stops the child itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The collector would otherwise walk (and so copy, page by page) every object
    # inherited from the parent: it made the child's CPU half as much again.
    gc.freeze()
    try:
        try:
            for batch in batches:
                prepared = _prepared(batch, text if wants_texts[0] else None)
                sender.send(("batch", prepared))
        except Exception as error:  # noqa: BLE001 (re-raised in the importer)
            sender.send(("error", (error, error.__cause__)))
        else:
            sender.send(("end", None))
    except BrokenPipeError:
        pass  # the importer stopped reading: it failed or was interrupted


@dataclass(slots=True)
class _Prepared:
    """A parsed batch, with what writing it needs worked out where it was parsed.

    `keys` are the rows' lookup keys by column, each once; `texts` each row's lead,
    were it new, as COPY text (Postgres only, else empty); `independent` says no
    two rows share a key. So when the lookup finds no lead, each row of an
    independent batch is a new lead exactly as its text says, and the rows
    themselves, kept pickled, are never unpickled: the usual case of new leads.
    """

    rows_read: int
    rejected: list[tuple[int, str]]
    size: int
    keys: dict[str, list[str]]
    texts: list[str]
    independent: bool
    pickled_rows: bytes
    created: int = 0  # how many new leads it made, once written

    def rows(self) -> list[_Row]:
        return list(itertools.starmap(_Row, pickle.loads(self.pickled_rows)))


def _prepared(batch: "_Batch", text: Callable[[tuple], str] | None) -> _Prepared:
    rows = batch.rows
    present = {
        "external_id": [row.external_id for row in rows if row.external_id],
        "phone": [row.phones[0] for row in rows if row.phones],
        "email": [row.emails[0] for row in rows if row.emails],
    }
    keys = {column: list(dict.fromkeys(values)) for column, values in present.items()}
    texts = []
    if text:
        for row in rows:
            lead = _Lead()
            _apply(row, lead)
            texts.append(text(_values(lead)))
    return _Prepared(
        rows_read=batch.rows_read,
        rejected=batch.rejected,
        size=len(rows),
        keys=keys,
        texts=texts,
        independent=all(len(keys[c]) == len(present[c]) for c in present),
        pickled_rows=pickle.dumps(
            list(map(_row_fields, rows)), protocol=pickle.HIGHEST_PROTOCOL
        ),
    )


@dataclass(slots=True)
class _Batch:
    rows: list[_Row] = field(default_factory=list)
    rows_read: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


class _Unreadable(ValueError):
    """The file cannot be read (on): raised once the rows before are yielded."""


def _batches(stream: TextIO, *, batch_size: int, region: str) -> Iterator[_Batch]:
    """The file's rows parsed, in batches; the last may be short (or empty)."""
    reader = None
    batch = _Batch()
    try:
        reader = _csv_reader(stream)
        header = _read_header(reader)
        columns = _columns(header)
        for item in _rows(reader, columns, len(header), region=region):
            batch.rows_read += 1
            if isinstance(item, _Row):
                batch.rows.append(item)
            else:
                batch.rejected.append(item)
            # Rejected rows count too, so a file of bad rows is batched as well.
            if batch.rows_read >= batch_size:
                yield batch
                batch = _Batch()
    except (UnicodeDecodeError, csv.Error) as error:
        yield batch
        line = reader.line_num + 1 if reader else 1
        encoding = getattr(stream, "encoding", None) or "the stream's encoding"
        cause = (
            f"cannot be decoded as {encoding}"
            if isinstance(error, UnicodeDecodeError)
            else f"is not valid CSV ({error})"
        )
        # A decoder reads ahead, so the fault is on this line or a little after.
        raise _Unreadable(
            f"line {line} or soon after: the file {cause}; the rows before line "
            f"{line} were imported"
        ) from error
    yield batch


def _csv_reader(stream: TextIO) -> Any:
    """A csv.reader over the stream, in the delimiter its header uses (, ; or tab)."""
    # Spreadsheets in many locales save "CSV" with semicolons; the header tells.
    header = stream.readline()
    delimiter = max(_DELIMITERS, key=header.count) if header else ","
    return csv.reader(itertools.chain([header], stream), delimiter=delimiter)


def _read_header(reader: Iterator[list[str]]) -> list[str]:
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        raise _Unreadable("the file is empty: it needs a header line")
    return header


def _header_key(header: str) -> str:
    return _HEADER_JUNK.sub("_", header.strip().lower()).strip("_")


def _columns(header: list[str]) -> list[_Column]:
    columns = []
    for index, title in enumerate(header):
        key = _header_key(title)
        if not key:
            continue
        name = _FIELD_BY_HEADER.get(key)
        if name:
            columns.append(_Column(index=index, field=name, header=_label(title)))
            continue
        if key[0].isdigit():
            key = f"_{key}"
        columns.append(
            _Column(
                index=index,
                field="attribute",
                header=_label(title),
                key=key[:ATTRIBUTE_KEY_MAX_LENGTH],
            )
        )
    if not any(column.field in _IDENTIFIER_FIELDS for column in columns):
        raise _Unreadable(
            "the header names no identifier column: it needs an external_id (or id), "
            "phone or email column; found " + ", ".join(map(_label, header))
        )
    return columns


def _rows(
    reader: Iterable[list[str]],
    columns: list[_Column],
    width: int,
    *,
    region: str,
) -> Iterator[_Row | tuple[int, str]]:
    """Each non-blank row parsed, or (line, reason) for one that cannot be."""
    line = reader.line_num + 1  # type: ignore[attr-defined]
    for cells in reader:
        start, line = line, reader.line_num + 1  # type: ignore[attr-defined]
        if not any(cells) or not any(cell.strip() for cell in cells):
            continue
        try:
            if len(cells) > width and any(cell.strip() for cell in cells[width:]):
                raise RowError(
                    f"has {len(cells)} fields, the header has {width}: "
                    "is a comma inside a value not quoted?"
                )
            # Postgres stores no NUL in text or JSON; one join finds it in C.
            if "\x00" in "".join(cells):
                raise RowError(_nul_reason(cells, columns))
            yield _parse(cells, columns, start, region=region)
        except (RowError, ContactError) as error:
            yield start, str(error)


def _parse(cells: list[str], columns: list[_Column], line: int, *, region: str) -> _Row:
    row = _Row(line=line)
    phone_cells, email_cells = [], []
    first = last = ""
    for column in columns:
        if column.index >= len(cells):
            continue
        text = cells[column.index].strip()
        if not text:
            continue
        if text[0] == "'":  # as the export escapes a formula (crm.spreadsheet)
            text = formula_unescaped(text)
        name = column.field
        if name == "phones":
            phone_cells.append(text)
        elif name == "emails":
            email_cells.append(text)
        elif name == "attribute":
            if len(text) > ATTRIBUTE_VALUE_MAX_LENGTH:  # inline: the hot path
                _bounded(text, column.header, ATTRIBUTE_VALUE_MAX_LENGTH)
            row.attributes[column.key] = _attribute_value(text)
        elif name == "external_id":
            if len(text) > EXTERNAL_ID_MAX_LENGTH:
                _bounded(text, column.header, EXTERNAL_ID_MAX_LENGTH)
            row.external_id = row.external_id or text
        elif name == "name":
            if len(text) > NAME_MAX_LENGTH:  # spaces squeezed, it may still fit
                _bounded(" ".join(text.split()), column.header, NAME_MAX_LENGTH)
            row.values.setdefault("name", " ".join(text.split()))
        elif name == "first_name":
            first = text
        elif name == "last_name":
            last = text
        elif name == "total_spend":
            row.values["total_spend"] = _amount(text, column.header)
        elif name == "visits":
            row.values["visits"] = _whole(text, column.header)
        elif name == "timezone":
            row.values["timezone"] = _timezone(text, column.header)
        elif name == "tags":
            row.tags = _unique(
                [*row.tags, *(t.strip() for t in _TAG_SEPARATORS.split(text))]
            )
            if len(text) > TAG_MAX_LENGTH:  # else no tag of the cell is longer
                tag = max(row.tags, key=len)
                _bounded(tag, f"tag in {column.header}", TAG_MAX_LENGTH)
            if len(row.tags) > TAGS_MAX:
                raise RowError(f"{column.header}: more than {TAGS_MAX} tags")
        else:
            opted_out = _flag(text, column.header)
            if name in ("sms_opt_out", "opt_out"):
                row.sms_opt_out = row.sms_opt_out or opted_out
            if name in ("email_opt_out", "opt_out"):
                row.email_opt_out = row.email_opt_out or opted_out
    if "name" not in row.values and (first or last):
        row.values["name"] = _bounded(
            " ".join(f"{first} {last}".split()), "name", NAME_MAX_LENGTH
        )
    row.phones = normalize_phones(phone_cells, region=region)
    row.emails = normalize_emails(email_cells)
    if len(row.phones) > CONTACTS_MAX:
        raise RowError(f"more than {CONTACTS_MAX} phones")
    if len(row.emails) > CONTACTS_MAX:
        raise RowError(f"more than {CONTACTS_MAX} emails")
    if not (row.external_id or row.phones or row.emails):
        raise RowError("no identifier: the row needs an external id, phone or email")
    return row


def _amount(text: str, header: str) -> Decimal:
    if _AMOUNT.fullmatch(text):
        try:
            value = Decimal(text.lstrip("$ ").replace(",", "")).quantize(
                _CENT, rounding=ROUND_HALF_UP
            )
        except InvalidOperation:
            pass
        else:
            if value <= SPEND_MAX:
                return value
    raise RowError(f"invalid {header} {_shown(text)}: not a non-negative amount")


def _whole(text: str, header: str) -> int:
    # The length first: int() refuses strings of thousands of digits.
    if (
        len(text) <= VISITS_MAX_DIGITS
        and _WHOLE.fullmatch(text)
        and int(text) <= VISITS_MAX
    ):
        return int(text)
    raise RowError(f"invalid {header} {_shown(text)}: not a non-negative whole number")


def _bounded(text: str, header: str, maximum: int) -> str:
    if len(text) > maximum:
        raise RowError(
            f"invalid {header} {_shown(text)}: longer than {maximum} characters"
        )
    return text


def _shown(text: str) -> str:
    """The cell quoted for a reason: at most SHOWN_MAX characters, printable."""
    return f'"{_label(text)}"'


def _label(text: str) -> str:
    """Text as reasons show it: at most SHOWN_MAX characters, printable (no NUL)."""
    text = text.strip()
    if len(text) > SHOWN_MAX:
        text = text[: SHOWN_MAX - 1] + "…"
    if not text.isprintable():
        text = "".join(c if c.isprintable() else "?" for c in text)
    return text


def _nul_reason(cells: list[str], columns: list[_Column]) -> str:
    for column in columns:
        if column.index < len(cells) and "\x00" in cells[column.index]:
            return f"{column.header} contains a NUL character"
    return "contains a NUL character"


@cache
def _timezones() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


def _timezone(text: str, header: str) -> str:
    name = _timezones().get(text.lower())
    if name is None:
        raise RowError(f"invalid {header} {_shown(text)}: not an IANA time zone")
    return name


def _flag(text: str, header: str) -> bool:
    value = text.lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise RowError(f"invalid {header} {_shown(text)}: expected yes or no")


def _attribute_value(text: str) -> Any:
    # Numbers stored as JSON numbers are what segment rules compare with gt/lt.
    if _NUMBER.fullmatch(text):
        return float(text) if "." in text else int(text)
    return text


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(value for value in values if value))


def _merged(first: list[str], then: list[str]) -> list[str]:
    """_unique([*first, *then]), where the row's list (unique already) is one."""
    if not then or then == first:
        return first
    if not first:
        return _unique(then)
    return _unique([*first, *then])


class _Lead:
    """A lead as the import sees it: the fields it writes, and the id once saved.

    A plain slotted object rather than a Lead: model instances cost more to build
    than all the rest of an import's writing (6 s per 100,000 rows). `text` is its
    COPY text while it is new and as one row made it, "" otherwise.
    """

    __slots__ = ("pk", "text", *_UPDATED_FIELDS)

    def __init__(self, pk: int | None = None, *values: Any) -> None:
        # One unpacking, in _UPDATED_FIELDS' order: a third of the cost of setattr.
        self.pk = pk
        self.text = ""
        (
            self.external_id,
            self.name,
            self.phones,
            self.emails,
            self.phone,
            self.email,
            self.total_spend,
            self.visits,
            self.timezone,
            self.attributes,
            self.tags,
            self.sms_opt_out,
            self.email_opt_out,
        ) = values or _NEW_LEAD


# A lead's fields, in order, as a tuple (attrgetter does it in C).
_values = operator.attrgetter(*_UPDATED_FIELDS)

# A new lead's values, the model's defaults; never mutated (_apply assigns).
_NEW_LEAD = tuple(Lead._meta.get_field(name).get_default() for name in _UPDATED_FIELDS)

# A lead's values as COPY text, for Postgres.
_text = lead_text_encoder(_UPDATED_FIELDS)


def _upsert_batch(
    organization: Organization, batch: _Prepared, report: ImportReport
) -> None:
    """Apply the rows to the leads they find (or new ones): two reads, two writes."""
    if not batch.size:
        return
    existing = _existing_leads(organization, batch.keys)
    if not existing and batch.independent and batch.texts:
        with transaction.atomic():
            lead_texts_insert(
                organization_id=organization.pk,
                fields=_UPDATED_FIELDS,
                texts=batch.texts,
            )
        report.created += batch.size
        batch.created = batch.size
        return
    rows = batch.rows()
    by_external_id: dict[str, _Lead] = {}
    by_phone: dict[str, list[_Lead]] = {}
    by_email: dict[str, list[_Lead]] = {}
    for lead in existing:
        if lead.external_id:
            by_external_id[lead.external_id] = lead
        if lead.phone:
            by_phone.setdefault(lead.phone, []).append(lead)
        if lead.email:
            by_email.setdefault(lead.email, []).append(lead)
    before = {lead.pk: _values(lead) for lead in existing}
    created: list[_Lead] = []

    for i, row in enumerate(rows):
        lead = _match(row, by_external_id, by_phone, by_email)
        if lead is None:
            lead = _Lead()
            lead.text = batch.texts[i] if batch.texts else ""
            created.append(lead)
            report.created += 1
        else:
            lead.text = ""  # no longer what one row made of it, if it was new
            report.updated += 1
        _apply(row, lead)
        # Later rows of the batch must find this lead by its new keys, first.
        if lead.external_id:
            by_external_id[lead.external_id] = lead
        if lead.phone:
            _put_first(by_phone, lead.phone, lead)
        if lead.email:
            _put_first(by_email, lead.email, lead)

    batch.created = len(created)
    changed = []
    for lead in existing:
        values = _values(lead)
        if values != before[lead.pk]:
            changed.append((lead.pk, *values))
    with transaction.atomic():
        if connection.vendor == "postgresql":
            lead_texts_insert(
                organization_id=organization.pk,
                fields=_UPDATED_FIELDS,
                texts=[lead.text or _text(_values(lead)) for lead in created],
            )
        else:
            lead_values_insert(
                organization_id=organization.pk,
                fields=_UPDATED_FIELDS,
                values=[_values(lead) for lead in created],
            )
        lead_values_update(fields=_UPDATED_FIELDS, values=changed)


_TABLE = Lead._meta.db_table


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
    # way): the JSON columns' statistics made ANALYZE cost ~1 s per 100,000 rows.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"ANALYZE {_TABLE} (organization_id, external_id, phone, email)"
            )


def _existing_leads(
    organization: Organization, keys: dict[str, list[str]]
) -> list[_Lead]:
    if connection.vendor == "postgresql":
        return _existing_leads_postgres(organization, keys)
    found = set()
    for key, values in keys.items():
        if values:
            matches = organization.leads.filter(**{f"{key}__in": values})
            found.update(matches.exclude(**{key: ""}).values_list("pk", flat=True))
    if not found:
        return []
    # Oldest first, so of two leads sharing a phone the row finds the same one always.
    matches = organization.leads.filter(pk__in=found).order_by("pk")
    return [_Lead(*values) for values in matches.values_list("pk", *_UPDATED_FIELDS)]


_SPEND_AT = 1 + _UPDATED_FIELDS.index("total_spend")  # in a record, after the id


def _existing_leads_postgres(
    organization: Organization, keys: dict[str, list[str]]
) -> list[_Lead]:
    # One probe of the key's index per value. Given "key IN (1,000 values)" the
    # planner prefers scanning every lead once the table has some 50,000 (measured:
    # 12 ms a key at 50,000 leads, growing with the table, against 1 ms); OFFSET 0
    # keeps it from flattening the lateral join back into that.
    # `key <> ''` lets the external id use its partial unique index.
    probes, params = [], []
    for key, values in keys.items():
        if values:
            column = connection.ops.quote_name(key)
            # The values go as one JSON text: psycopg quotes a text[] parameter
            # value by value in Python, ~3 ms a batch; json encodes it in C.
            probes.append(
                f"SELECT lead.id FROM jsonb_array_elements_text(%s::jsonb) "
                f"AS wanted(value) "
                f"CROSS JOIN LATERAL (SELECT id FROM {_TABLE} WHERE "
                f"organization_id = %s AND {column} = wanted.value AND {column} <> '' "
                f"OFFSET 0) AS lead"
            )
            params += [json.dumps(values), organization.pk]
    if not probes:
        return []
    # The leads found come back in the same round trip, as one JSON text: a single
    # json.loads in C instead of psycopg decoding each row and json.loads for each
    # of its four JSON fields (3.4 s per 100,000 updated rows). The amount goes as
    # text, to come back the exact Decimal. Oldest first, so of two leads sharing
    # a phone the row finds the same one always.
    fields = [
        f"lead.{connection.ops.quote_name(name)}"
        + ("::text" if name == "total_spend" else "")
        for name in ["id", *_UPDATED_FIELDS]
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH found AS MATERIALIZED ({' UNION '.join(probes)}) "
            f"SELECT json_agg(json_build_array({', '.join(fields)}) "
            f"ORDER BY lead.id)::text FROM found CROSS JOIN LATERAL "
            f"(SELECT * FROM {_TABLE} WHERE id = found.id OFFSET 0) AS lead",
            params,
        )
        (text,) = cursor.fetchone()
    leads = []
    for record in json.loads(text) if text else ():
        record[_SPEND_AT] = Decimal(record[_SPEND_AT])
        leads.append(_Lead(*record))
    return leads


def _match(
    row: _Row,
    by_external_id: dict[str, _Lead],
    by_phone: dict[str, list[_Lead]],
    by_email: dict[str, list[_Lead]],
) -> _Lead | None:
    if row.external_id and row.external_id in by_external_id:
        return by_external_id[row.external_id]
    for contacts, index, attribute in (
        (row.phones, by_phone, "phone"),
        (row.emails, by_email, "email"),
    ):
        if not contacts:
            continue
        for lead in index.get(contacts[0], ()):
            # The lead may have changed its primary contact earlier in the batch.
            if getattr(lead, attribute) != contacts[0]:
                continue
            if row.external_id and lead.external_id:
                continue
            return lead
    return None


def _put_first(index: dict[str, list[_Lead]], key: str, lead: _Lead) -> None:
    leads = index.setdefault(key, [])
    if not leads or leads[0] is not lead:
        leads.insert(0, lead)


def _apply(row: _Row, lead: _Lead) -> None:
    if row.external_id:
        lead.external_id = row.external_id
    for name, value in row.values.items():
        setattr(lead, name, value)
    # A row's lists are unique already, so a new lead (empty lists), or one holding
    # just what the row holds (a file imported again), just takes them; neither
    # list nor dict is ever changed in place, so sharing them is safe.
    if row.phones or row.emails:
        # As Lead.set_contacts: the first of each list mirrors in phone / email.
        phones = _merged(row.phones, lead.phones)
        emails = _merged(row.emails, lead.emails)
        lead.phones, lead.emails = phones, emails
        lead.phone = phones[0] if phones else ""
        lead.email = emails[0] if emails else ""
    if row.tags:
        lead.tags = _merged(lead.tags, row.tags)
    if row.attributes and lead.attributes != row.attributes:
        lead.attributes = (
            {**lead.attributes, **row.attributes} if lead.attributes else row.attributes
        )
    lead.sms_opt_out = lead.sms_opt_out or row.sms_opt_out
    lead.email_opt_out = lead.email_opt_out or row.email_opt_out
