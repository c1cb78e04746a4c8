"""Phone and email normalization: one canonical form per contact, or why not."""

import re
from functools import lru_cache

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, validate_email
from phonenumbers import NumberParseException, ValidationResult
from phonenumbers.phonemetadata import PhoneMetadata

EMAIL_MAX_LENGTH = 254  # Lead.email's column; RFC 5321's limit on a forward path
_SHOWN_MAX = 40

# Phones hold spaces, dots, dashes and parentheses, so only these separate numbers.
_PHONE_SEPARATORS = re.compile(r"[;,|\n]+")
# An unquoted address holds none of these, so any of them separates addresses.
_EMAIL_SEPARATORS = re.compile(r"[;,|\s]+")

# North American numbers as people write them: "+1 (212) 555-0123", "212.555.0123".
_NANP = re.compile(r"(\+?1)?[\s.-]*\(?([2-9]\d\d)\)?[\s.-]*(\d{3})[\s.-]*(\d{4})")
_NANP_REGIONS = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1])


def _first_nanp_region_pattern() -> re.Pattern[str] | None:
    """A regex of the ten-digit numbers phonenumbers calls valid for the first NANP
    region (the US), or None when its metadata does not allow the shortcut.

    is_valid_number tries the regions of +1 in order, and the first, lacking leading
    digits, is chosen when the number matches its general pattern and one of its
    type patterns; it is then valid. Matching those patterns precompiled, in one
    regex, skips the ~20 cached-regex lookups per number that would make validation
    the import's hot spot (10 s per 100,000 rows). A number that misses it still goes
    through is_valid_number, so the shortcut only ever accepts what phonenumbers
    accepts.
    """
    region = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1][0]
    metadata = PhoneMetadata.metadata_for_region(region, None)
    if metadata is None or metadata.leading_digits is not None:
        return None
    general = metadata.general_desc

    def fits(desc: object) -> bool:
        lengths = desc.possible_length or general.possible_length
        return bool(desc.national_number_pattern) and (not lengths or 10 in lengths)

    if not fits(general):
        return None
    types = [
        getattr(metadata, name)
        for name in (
            "premium_rate",
            "toll_free",
            "shared_cost",
            "voip",
            "personal_number",
            "pager",
            "uan",
            "voicemail",
            "fixed_line",
            "mobile",
        )
    ]
    patterns = [desc.national_number_pattern for desc in types if desc and fits(desc)]
    if not patterns:
        return None
    alternatives = "|".join(f"(?:{pattern})" for pattern in patterns)
    return re.compile(f"(?=(?:{general.national_number_pattern})$)(?:{alternatives})")


_NANP_FIRST_REGION_VALID = _first_nanp_region_pattern()

# EmailValidator's own patterns, compiled here: its lazy regexes cost 20 µs an
# address through the lazy-object proxy, a third of an import's parsing. An address
# they accept, validate_email accepts; any other still goes through validate_email.
_EMAIL_USER = re.compile(
    EmailValidator.user_regex.pattern, EmailValidator.user_regex.flags
)
_EMAIL_DOMAIN = re.compile(
    EmailValidator.domain_regex.pattern, EmailValidator.domain_regex.flags
)

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}
_POSSIBLE_REASONS = {
    ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
    ValidationResult.TOO_SHORT: "too short",
    ValidationResult.TOO_LONG: "too long",
    ValidationResult.INVALID_LENGTH: "wrong length",
}


class ContactError(ValueError):
    """A phone or email that cannot be used; the message names the value and why."""

    def __init__(self, *, kind: str, value: str, reason: str) -> None:
        self.kind = kind
        self.value = value
        self.reason = reason
        shown = value if len(value) <= _SHOWN_MAX else value[: _SHOWN_MAX - 1] + "…"
        super().__init__(f'invalid {kind} "{shown}": {reason}')


def normalize_phone(raw: str, *, region: str | None = None) -> str:
    """The number in E.164 ("+14155550123"); numbers without "+" read as `region`'s.

    `region` defaults to settings.CRM_DEFAULT_PHONE_REGION, read at call time so a
    changed setting applies. Extensions are dropped: an SMS cannot dial them.
    """
    return _normalize_phone(raw, region or settings.CRM_DEFAULT_PHONE_REGION)


@lru_cache(maxsize=2048)
def _normalize_phone(raw: str, region: str) -> str:
    # Cached per raw string: files repeat numbers (household phones, re-imports).
    # Small and bounded, so memory stays flat whatever the file (a test checks);
    # errors are not cached.
    text = raw.strip()
    if not text:
        raise ContactError(kind="phone", value=raw, reason="empty")
    nanp = _NANP.fullmatch(text)
    if nanp and (region in _NANP_REGIONS or (nanp[1] or "").startswith("+")):
        # What phonenumbers.parse would make of it, at a quarter of the cost: the
        # import's hot path. Ten digits are always a possible NANP length.
        national = nanp[2] + nanp[3] + nanp[4]
        if _NANP_FIRST_REGION_VALID and _NANP_FIRST_REGION_VALID.fullmatch(national):
            return f"+1{national}"
        number = phonenumbers.PhoneNumber(country_code=1, national_number=int(national))
        if not phonenumbers.is_valid_number(number):
            raise ContactError(kind="phone", value=raw, reason="no such number")
        return f"+1{national}"
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as error:
        reason = _PARSE_REASONS.get(error.error_type, "not a phone number")
        raise ContactError(kind="phone", value=raw, reason=reason) from error
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible in _POSSIBLE_REASONS:
        raise ContactError(kind="phone", value=raw, reason=_POSSIBLE_REASONS[possible])
    if not phonenumbers.is_valid_number(number):
        raise ContactError(kind="phone", value=raw, reason="no such number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str:
    """The address trimmed and lowercased, after Django's EmailValidator accepts it.

    The whole address is lowercased, not just the domain: local parts are
    case-insensitive at every mainstream provider, and one spelling per person is
    what lets an import find the lead it already has.
    """
    text = raw.strip().strip("<>").strip()
    if text[:7].lower() == "mailto:":
        text = text[7:]
    email = text.lower()
    if not email:
        raise ContactError(kind="email", value=raw, reason="empty")
    if len(email) > EMAIL_MAX_LENGTH:
        raise ContactError(
            kind="email", value=raw, reason=f"longer than {EMAIL_MAX_LENGTH} characters"
        )
    user, _, domain = email.rpartition("@")
    if user and _EMAIL_USER.match(user) and _EMAIL_DOMAIN.match(domain):
        return email  # what validate_email would accept, without its overhead
    try:
        validate_email(email)
    except ValidationError as error:
        raise ContactError(
            kind="email", value=raw, reason="not an email address"
        ) from error
    return email


def split_phones(cell: str) -> list[str]:
    """The raw numbers in one cell ("+1 212 555 0100; (415) 555-0199"), no blanks."""
    return [part.strip() for part in _PHONE_SEPARATORS.split(cell) if part.strip()]


def split_emails(cell: str) -> list[str]:
    """The raw addresses in one cell ("a@x.com; b@y.com"), blanks dropped."""
    return [part for part in _EMAIL_SEPARATORS.split(cell.strip()) if part]


def normalize_phones(cells: list[str], *, region: str | None = None) -> list[str]:
    """Every number in the cells in E.164, first-seen order, without repeats.

    Raises ContactError on the first number that does not normalize.
    """
    phones: dict[str, None] = {}
    for cell in cells:
        for raw in split_phones(cell):
            phones[normalize_phone(raw, region=region)] = None
    return list(phones)


def normalize_emails(cells: list[str]) -> list[str]:
    """Every address in the cells normalized, first-seen order, without repeats.

    Raises ContactError on the first address that does not normalize.
    """
    emails: dict[str, None] = {}
    for cell in cells:
        for raw in split_emails(cell):
            emails[normalize_email(raw)] = None
    return list(emails)
