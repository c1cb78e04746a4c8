"""What a leaf's value may be: the value types, their parsers and their bounds."""

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from django.utils import timezone

# Bounds that keep one segment's SQL a reasonable size.
MAX_TEXT_LENGTH = 1000
MAX_DAYS = 36_500
# Every day between holds in any time zone as a UTC instant, as the database asks.
FIRST_DAY, LAST_DAY = "0001-01-02", "9999-12-30"


class BadValue(ValueError):
    """A value of the wrong type; the optional detail says more than the type does."""


@dataclass(frozen=True)
class ValueType:
    """What one op of one field takes: a description for people, a parser, and the
    kind of input a form offers for it (number, text, boolean, date or scalar)."""

    description: str
    plural: str
    parse: Callable[[Any], Any]
    kind: str


@dataclass(frozen=True)
class Moment:
    """A created_at bound: an instant, or a whole day [start, end) for a bare date."""

    start: datetime
    end: datetime | None = None

    @property
    def is_day(self) -> bool:
        return self.end is not None


def _is_number(value: Any) -> bool:
    # bool is an int in Python but never a number in a rule.
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _parse_number(value: Any) -> Decimal:
    if not _is_number(value):
        raise BadValue
    return Decimal(str(value))


def _parse_whole_number(value: Any) -> int:
    if not _is_number(value) or value != int(value):
        raise BadValue
    return int(value)


def _parse_json_number(value: Any) -> int | float:
    if not _is_number(value):
        raise BadValue
    return value


def _parse_text(value: Any) -> str:
    if not isinstance(value, str):
        raise BadValue
    if len(value) > MAX_TEXT_LENGTH:
        raise BadValue(f"longer than {MAX_TEXT_LENGTH} characters")
    # Neither can be bound as a query parameter: Postgres text holds no NUL, and a
    # lone surrogate ("\ud800" in JSON) is not UTF-8.
    if "\x00" in value:
        raise BadValue("holds a NUL character")
    if not value.isascii() and utf8_shown(value) != value:
        raise BadValue("holds a lone surrogate, which is not text")
    return value


def _parse_non_empty_text(value: Any) -> str:
    if _parse_text(value) == "":
        raise BadValue
    return value


def _parse_boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadValue
    return value


def _parse_json_scalar(value: Any) -> str | int | float | bool:
    if isinstance(value, bool) or _is_number(value):
        return value
    return _parse_text(value)


def _parse_days(value: Any) -> int:
    days = _parse_whole_number(value)
    if not 1 <= days <= MAX_DAYS:
        raise BadValue(f"not between 1 and {MAX_DAYS}")
    return days


def _parse_moment(value: Any) -> Moment:
    if not isinstance(value, str):
        raise BadValue
    tz = timezone.get_default_timezone()
    try:
        moment = _moment(value, tz)
        # The database compares instants in UTC: each bound must exist there too
        # (9999-12-31 ends in year 10000; 0001-01-01T00:00+05:00 starts in year 0).
        for bound in (moment.start, moment.end):
            if bound is not None:
                bound.astimezone(UTC)
    except OverflowError:
        raise BadValue(
            f"out of range: dates run from {FIRST_DAY} to {LAST_DAY}"
        ) from None
    return moment


def _moment(value: str, tz: tzinfo) -> Moment:
    # A bare date means that whole day in the project's time zone.
    if len(value) == 10:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise BadValue from None
        start = datetime.combine(day, time.min, tzinfo=tz)
        return Moment(start=start, end=start + timedelta(days=1))
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise BadValue from None
    if timezone.is_naive(instant):
        instant = timezone.make_aware(instant, tz)
    return Moment(start=instant)


NUMBER = ValueType("a number", "numbers", _parse_number, "number")
WHOLE_NUMBER = ValueType(
    "a whole number", "whole numbers", _parse_whole_number, "number"
)
JSON_NUMBER = ValueType("a number", "numbers", _parse_json_number, "number")
TEXT = ValueType("a string", "strings", _parse_text, "text")
NON_EMPTY_TEXT = ValueType(
    "a non-empty string", "non-empty strings", _parse_non_empty_text, "text"
)
BOOLEAN = ValueType("true or false", "booleans", _parse_boolean, "boolean")
JSON_SCALAR = ValueType(
    "a string, number or boolean",
    "strings, numbers or booleans",
    _parse_json_scalar,
    "scalar",
)
MOMENT = ValueType(
    "an ISO date (2024-05-01) or date-time (2024-05-01T09:30:00+02:00)",
    "ISO dates or date-times",
    _parse_moment,
    "date",
)
DAYS = ValueType(
    f"a whole number of days from 1 to {MAX_DAYS}", "days", _parse_days, "number"
)


def utf8_shown(text: str) -> str:
    """The text as UTF-8 can carry it: a lone surrogate escaped, "\\ud800"."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
