"""One CSV row of a lead import parsed and validated: its cells become a Row."""

import re
import zoneinfo
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache
from operator import attrgetter
from typing import Any

from crm.contacts import ContactError, normalize_emails, normalize_phones
from crm.models import Lead
from crm.spreadsheet import formula_unescaped

EXTERNAL_ID_MAX_LENGTH = Lead._meta.get_field("external_id").max_length
NAME_MAX_LENGTH = Lead._meta.get_field("name").max_length
SPEND_MAX = Decimal("9999999999.99")  # Lead.total_spend: 12 digits, 2 of them cents
VISITS_MAX = 2_147_483_647  # PositiveIntegerField's ceiling on every database
VISITS_MAX_DIGITS = len(str(VISITS_MAX))
# Bounds of what one row may bring, as the API's lead serializer has them: a value
# past them is a mistake in the file (a shifted column, a pasted document).
ATTRIBUTE_VALUE_MAX_LENGTH = 1000
TAG_MAX_LENGTH = 64
TAGS_MAX = 100
CONTACTS_MAX = 20  # phones, and emails, a row may list
# How much of a cell a reason quotes: enough to find it, never a whole document.
SHOWN_MAX = 40

_TAG_SEPARATORS = re.compile(r"[;|]")
# "$1,234.50", "1234.5", "0": digits with optional thousands commas and cents.
_AMOUNT = re.compile(r"\$?\s*(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?|\$?\s*(\.\d+)")
_WHOLE = re.compile(r"\d+")
# Canonical numbers only: "007" or "02139" (codes, zips) keep their leading zeros.
_NUMBER = re.compile(r"-?(?:0|[1-9]\d{0,14})(\.\d{1,10})?")
_TRUE = frozenset({"1", "true", "t", "yes", "y", "x"})
_FALSE = frozenset({"", "0", "false", "f", "no", "n"})
_CENT = Decimal("0.01")


class RowError(ValueError):
    """One row that cannot be imported; the message is the reason reported."""


@dataclass(slots=True)
class Row:
    """A parsed row: its identifiers, and what it brings to the lead it finds."""

    line: int
    external_id: str = ""
    phones: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    sms_opt_out: bool = False
    email_opt_out: bool = False


# A row's fields as a tuple: rows are pickled so (and rebuilt with Row(*fields)), as
# pickling dataclasses field by field costs as much as the rest of the importing
# process's Python.
row_fields = attrgetter(*Row.__slots__)


@dataclass(frozen=True, slots=True)
class Column:
    """A header cell that names something: a lead field, or an attribute."""

    index: int
    field: str  # a reading.COLUMN_ALIASES key, or "attribute"
    header: str  # as written in the file, for reasons
    key: str = ""  # the attribute's key


def parsed_rows(
    reader: Iterable[list[str]],
    columns: list[Column],
    width: int,
    *,
    region: str,
) -> Iterator[Row | tuple[int, str]]:
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
            yield parse_row(cells, columns, start, region=region)
        except (RowError, ContactError) as error:
            yield start, str(error)


def parse_row(
    cells: list[str], columns: list[Column], line: int, *, region: str
) -> Row:
    """The row's cells as a Row; RowError (or ContactError) says what is wrong."""
    row = Row(line=line)
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
        # The columns every file has are parsed inline: this loop is the hot path.
        if name == "phones":
            phone_cells.append(text)
        elif name == "emails":
            email_cells.append(text)
        elif name == "attribute":
            if len(text) > ATTRIBUTE_VALUE_MAX_LENGTH:
                _bounded(text, column.header, ATTRIBUTE_VALUE_MAX_LENGTH)
            row.attributes[column.key] = _attribute_value(text)
        elif name == "external_id":
            if len(text) > EXTERNAL_ID_MAX_LENGTH:
                _bounded(text, column.header, EXTERNAL_ID_MAX_LENGTH)
            row.external_id = row.external_id or text
        elif name == "first_name":
            first = text
        elif name == "last_name":
            last = text
        else:
            _parse_value(row, name, text, column.header)
    if "name" not in row.values and (first or last):
        row.values["name"] = _bounded(
            " ".join(f"{first} {last}".split()), "name", NAME_MAX_LENGTH
        )
    _parse_contacts(row, phone_cells, email_cells, region=region)
    return row


def _parse_value(row: Row, name: str, text: str, header: str) -> None:
    """A cell of the name, spend, visits, timezone, tags or an opt-out column."""
    if name == "name":
        if len(text) > NAME_MAX_LENGTH:  # spaces squeezed, it may still fit
            _bounded(" ".join(text.split()), header, NAME_MAX_LENGTH)
        row.values.setdefault("name", " ".join(text.split()))
    elif name == "total_spend":
        row.values["total_spend"] = _amount(text, header)
    elif name == "visits":
        row.values["visits"] = _whole(text, header)
    elif name == "timezone":
        row.values["timezone"] = _timezone(text, header)
    elif name == "tags":
        row.tags = unique(
            [*row.tags, *(t.strip() for t in _TAG_SEPARATORS.split(text))]
        )
        if len(text) > TAG_MAX_LENGTH:  # else no tag of the cell is longer
            tag = max(row.tags, key=len)
            _bounded(tag, f"tag in {header}", TAG_MAX_LENGTH)
        if len(row.tags) > TAGS_MAX:
            raise RowError(f"{header}: more than {TAGS_MAX} tags")
    else:
        opted_out = _flag(text, header)
        if name in ("sms_opt_out", "opt_out"):
            row.sms_opt_out = row.sms_opt_out or opted_out
        if name in ("email_opt_out", "opt_out"):
            row.email_opt_out = row.email_opt_out or opted_out


def _parse_contacts(
    row: Row, phone_cells: list[str], email_cells: list[str], *, region: str
) -> None:
    """The row's phones and emails normalized; a row needs one identifier at least."""
    row.phones = normalize_phones(phone_cells, region=region)
    row.emails = normalize_emails(email_cells)
    if len(row.phones) > CONTACTS_MAX:
        raise RowError(f"more than {CONTACTS_MAX} phones")
    if len(row.emails) > CONTACTS_MAX:
        raise RowError(f"more than {CONTACTS_MAX} emails")
    if not (row.external_id or row.phones or row.emails):
        raise RowError("no identifier: the row needs an external id, phone or email")


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
    return f'"{label(text)}"'


def label(text: str) -> str:
    """Text as reasons show it: at most SHOWN_MAX characters, printable (no NUL)."""
    text = text.strip()
    if len(text) > SHOWN_MAX:
        text = text[: SHOWN_MAX - 1] + "…"
    if not text.isprintable():
        text = "".join(c if c.isprintable() else "?" for c in text)
    return text


def _nul_reason(cells: list[str], columns: list[Column]) -> str:
    for column in columns:
        if column.index < len(cells) and "\x00" in cells[column.index]:
            return f"{column.header} contains a NUL character"
    return "contains a NUL character"


@cache
def timezones() -> dict[str, str]:
    """IANA time zone names by their lowercase spelling (built once a process)."""
    return {name.lower(): name for name in zoneinfo.available_timezones()}


def _timezone(text: str, header: str) -> str:
    name = timezones().get(text.lower())
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


def unique(values: Iterable[str]) -> list[str]:
    """The non-empty values, each once, in their first order."""
    return list(dict.fromkeys(value for value in values if value))
