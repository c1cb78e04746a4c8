"""Personal data out of log lines: phone numbers and email addresses masked, and the
fields that carry message text dropped, wherever they appear in a line."""

import re
from typing import Any
from urllib.parse import unquote

# A run of digits with the separators people type (space, dot, dash, parentheses),
# optionally after a +: E.164 and numbers as imported ("(202) 555-0100").
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d\s().-]{5,22}\d(?!\w)")
_ISO_DATE = re.compile(r"\d{4}-\d\d-\d\d")
_SEPARATORS = re.compile(r"[\s().-]+")
# E.164 numbers have at most 15 digits; national numbers at least 8.
_PHONE_DIGITS = range(8, 16)
# Without a + or separators, only a national number's usual 10 or 11 digits: a
# longer run of digits is an id or a timestamp.
_BARE_DIGITS = (10, 11)
# Typed with separators, a phone number's groups are short, and without a country
# code it has at least 9 digits ("200 12345" is a status and a size).
_LONGEST_GROUP = 5
_SEPARATED_DIGITS = 9
_EMAIL = re.compile(
    r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
)
# Keys whose values are message text, addresses or links: never written at all.
SECRET_KEYS = frozenset(
    {"body", "subject", "message", "recipient", "to", "phone", "email", "payment_link"}
)
REDACTED = "[redacted]"
# Keys that hold the line's own metadata, never personal data.
_METADATA_KEYS = frozenset({"timestamp", "level", "logger"})


def is_phone_like(text: str) -> bool:
    """Whether a run of digits and separators reads as a phone number."""
    groups = [group for group in _SEPARATORS.split(text.lstrip("+")) if group]
    digits = sum(map(len, groups))
    if digits not in _PHONE_DIGITS or _ISO_DATE.match(text):
        return False
    if text.startswith("+"):
        return True
    if len(groups) == 1:
        return digits in _BARE_DIGITS
    return digits >= _SEPARATED_DIGITS and max(map(len, groups)) <= _LONGEST_GROUP


def mask_phone(match: re.Match) -> str:
    """`+14155550100` -> `+1415***0100`: the country and area code, the last four."""
    text = match.group(0)
    if not is_phone_like(text):
        return text
    digits = re.sub(r"\D", "", text)
    kept = min(4, len(digits) - 7)
    plus = "+" if text.startswith("+") else ""
    return f"{plus}{digits[:kept]}***{digits[-4:]}"


def mask_text(text: str) -> str:
    """The text with every phone number and email address in it masked.

    Percent-encoded text (a URL in a request line) is decoded first: `%2B1...` and
    `%40` are a number and an address too.
    """
    if "%" in text:
        text = unquote(text)
    text = _EMAIL.sub(r"\1***@\2", text)
    return _PHONE.sub(mask_phone, text)


def redacted(value: Any) -> Any:
    """The value with personal data masked, looking into dicts, lists and tuples."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {
            key: REDACTED if key in SECRET_KEYS else redacted(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redacted(item) for item in value]
    return value


def redact_personal_data(logger: Any, method_name: str, event_dict: dict) -> dict:
    """structlog processor: masks personal data in every value of the line."""
    return {
        key: value
        if key in _METADATA_KEYS
        else REDACTED
        if key in SECRET_KEYS
        else redacted(value)
        for key, value in event_dict.items()
    }
