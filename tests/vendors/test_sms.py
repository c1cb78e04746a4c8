"""SMS segment counting for GSM-7 and UCS-2 texts."""

import pytest

from vendors.sms import is_gsm7, sms_segments


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("{" * 80, 1),
        ("{" * 81, 2),
        ("é" * 70 + "ж", 2),
        ("ж" * 70, 1),
        ("ж" * 71, 2),
        ("ж" * 134, 2),
        ("ж" * 135, 3),
        ("😀" * 35, 1),
        ("😀" * 36, 2),
    ],
)
def test_segments_follow_the_alphabet_limits(body, segments):
    assert sms_segments(body) == segments


def test_an_escape_pair_is_never_split_across_segments():
    # given: 306 septets that would fit two parts if "[" could straddle them
    body = "a" * 152 + "[" + "a" * 152

    # when / then
    assert sms_segments(body) == 3


@pytest.mark.parametrize(
    ("body", "gsm7"),
    [
        ("Hi John, 10% off! @home £5 €5 [x]", True),
        ("Ça va? Ñoño, Ästhetik, où", True),
        ("Ñandú", False),
        ("Привет", False),
        ("ça va", False),
        ("Thanks 👍", False),
    ],
)
def test_gsm7_is_detected_by_its_character_set(body, gsm7):
    assert is_gsm7(body) is gsm7
