"""Phone and email normalization (crm.contacts)."""

import random

import phonenumbers
import pytest
from django.test import override_settings

from crm.contacts import (
    ContactError,
    normalize_email,
    normalize_emails,
    normalize_phone,
    normalize_phones,
    split_emails,
    split_phones,
)


@pytest.mark.parametrize(
    "raw",
    [
        "(212) 867-5309",
        "212-867-5309",
        "212.867.5309",
        "2128675309",
        "1 212 867 5309",
        "+1 (212) 867-5309",
        "+12128675309",
        "  212 867 5309  ",
        "212-867-5309 ext. 12",
    ],
)
def test_us_numbers_as_people_write_them_become_e164(raw):
    assert normalize_phone(raw, region="US") == "+12128675309"


def test_a_number_with_a_country_code_ignores_the_region():
    assert normalize_phone("+44 20 7946 0958", region="US") == "+442079460958"


def test_a_national_number_is_read_in_the_given_region():
    assert normalize_phone("020 7946 0958", region="GB") == "+442079460958"


def test_the_default_region_comes_from_settings_at_call_time():
    with override_settings(CRM_DEFAULT_PHONE_REGION="GB"):
        assert normalize_phone("020 7946 0958") == "+442079460958"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("12ab", "not a phone number"),
        ("555-01", "too short"),
        ("+1 212 123 4567", "no such number"),
        ("", "empty"),
    ],
)
def test_an_invalid_number_raises_with_the_value_and_the_reason(raw, reason):
    with pytest.raises(ContactError) as caught:
        normalize_phone(raw, region="US")

    assert caught.value.reason == reason
    assert str(caught.value) == f'invalid phone "{raw}": {reason}'
    assert isinstance(caught.value, ValueError)


def test_the_north_american_shortcut_agrees_with_phonenumbers_parse():
    # given numbers in every common layout, valid or not, read in several regions
    rng = random.Random(7)
    layouts = ["{}{}{}", "({}) {}-{}", "+1 {} {} {}", "1-{}-{}-{}", "{}.{}.{}"]
    for _ in range(2000):
        parts = (
            str(rng.randint(200, 999)),
            f"{rng.randint(0, 999):03d}",
            f"{rng.randint(0, 9999):04d}",
        )
        raw = rng.choice(layouts).format(*parts)
        for region in ("US", "CA", "GB"):
            # when each is normalized, and parsed by phonenumbers itself
            number = phonenumbers.parse(raw, region)
            expected = (
                phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                if phonenumbers.is_valid_number(number)
                else None
            )
            try:
                actual = normalize_phone(raw, region=region)
            except ContactError:
                actual = None
            # then both agree
            assert actual == expected, (raw, region)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Jane.Doe@Example.COM", "jane.doe@example.com"),
        ("  jane@example.com ", "jane@example.com"),
        ("<jane@example.com>", "jane@example.com"),
        ("mailto:jane@example.com", "jane@example.com"),
    ],
)
def test_an_email_is_trimmed_and_lowercased(raw, expected):
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw", ["jane@@example.com", "jane.example.com", "jane@example", "jane doe@x.com"]
)
def test_an_invalid_email_raises_with_the_value(raw):
    with pytest.raises(ContactError, match=f'invalid email "{raw}": not an email'):
        normalize_email(raw)


def test_an_email_longer_than_the_column_is_invalid():
    with pytest.raises(ContactError, match="longer than 254 characters"):
        normalize_email("a" * 250 + "@example.com")


def test_a_cell_of_several_phones_splits_on_semicolons_commas_and_bars():
    cell = "+1 212 867 5309; (415) 555-0199 , 312.555.0142|"

    assert split_phones(cell) == ["+1 212 867 5309", "(415) 555-0199", "312.555.0142"]


def test_a_cell_of_several_emails_splits_on_separators_and_spaces():
    assert split_emails(" a@x.com; b@y.com,c@z.com  d@w.com ") == [
        "a@x.com",
        "b@y.com",
        "c@z.com",
        "d@w.com",
    ]


def test_normalized_lists_keep_first_seen_order_without_repeats():
    phones = normalize_phones(["212 867 5309; +1 415 555 0199", "(212) 867-5309"])
    emails = normalize_emails(["B@y.com; a@x.com", "b@Y.com"])

    assert phones == ["+12128675309", "+14155550199"]
    assert emails == ["b@y.com", "a@x.com"]


def test_one_bad_number_in_a_list_fails_the_list():
    with pytest.raises(ContactError, match='"12ab"'):
        normalize_phones(["212 867 5309; 12ab"], region="US")


def test_the_precompiled_us_pattern_only_accepts_what_phonenumbers_accepts():
    # given ten-digit numbers across every area code and exchange, valid or not
    from crm.contacts import _NANP_FIRST_REGION_VALID

    assert _NANP_FIRST_REGION_VALID is not None
    rng = random.Random(11)
    accepted = 0
    for _ in range(20000):
        national = f"{rng.randint(200, 999)}{rng.randint(0, 999):03d}"
        national += f"{rng.randint(0, 9999):04d}"
        number = phonenumbers.PhoneNumber(country_code=1, national_number=int(national))
        valid = phonenumbers.is_valid_number(number)
        # when the fast pattern accepts one, then phonenumbers accepts it too
        if _NANP_FIRST_REGION_VALID.fullmatch(national):
            accepted += 1
            assert valid, national
            assert phonenumbers.region_code_for_number(number) == "US", national
        # and normalize_phone (fast path or not) agrees with phonenumbers
        try:
            actual = normalize_phone(national, region="US")
        except ContactError:
            actual = None
        assert actual == (f"+1{national}" if valid else None), national
    assert accepted > 5000  # the fast path does serve most numbers


def test_a_phone_normalized_again_gives_the_same_answer_per_region_errors_too():
    # given one valid and one invalid number, normalized twice each
    for _ in range(2):
        assert normalize_phone("(212) 867-5309", region="US") == "+12128675309"
        with pytest.raises(ContactError):
            normalize_phone("+1 212 123 4567", region="US")
    # then a region change still applies to the same raw string
    assert normalize_phone("020 7946 0958", region="GB") == "+442079460958"
    with pytest.raises(ContactError):
        normalize_phone("020 7946 0958", region="US")


def test_the_email_fast_path_agrees_with_djangos_validator():
    # given addresses valid and not: quoted, literal, IDN, localhost, odd characters
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    rng = random.Random(5)
    pieces = ["a", "Z", "0", ".", "-", "_", "+", '"', " ", "é", "[", "]", "@", "!"]
    samples = [
        "jane@example.com",
        "jane@localhost",
        "jane@[127.0.0.1]",
        "jane@[::1]",
        '"j d"@example.com',
        "jane@exämple.com",
        "jane@example",
        "a@b@example.com",
        ".jane@example.com",
        "jane@-example.com",
    ]
    for _ in range(5000):
        user = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
        domain = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
        samples.append(f"{user}@{domain}.{rng.choice(['com', 'c', 'x1', ''])}")
    for raw in samples:
        # when the address is normalized, and validated by Django on its own
        email = raw.strip().strip("<>").strip().lower()
        try:
            validate_email(email)
            expected = email if email else None
        except ValidationError:
            expected = None
        try:
            actual = normalize_email(raw)
        except ContactError:
            actual = None
        # then both agree
        assert actual == expected, raw
