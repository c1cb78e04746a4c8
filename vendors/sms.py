"""SMS segment counting: how many billable parts a text is sent as."""

import math

# The GSM 03.38 default alphabet, less the escape character that introduces the
# extension table.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Characters of the extension table: each is sent as escape + char, two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
GSM7 = GSM7_BASIC | GSM7_EXTENSION

GSM7_SINGLE = 160
# A concatenated part gives 7 septets to its header (UDH).
GSM7_PART = 153
UCS2_SINGLE = 70
UCS2_PART = 67


def is_gsm7(body: str) -> bool:
    """Whether the text can go in the GSM-7 alphabet (else it goes as UCS-2)."""
    return GSM7.issuperset(body)


def sms_segments(body: str) -> int:
    """The number of segments the text is sent as; an empty text is still one."""
    if GSM7_BASIC.issuperset(body):
        return _parts_of(len(body), single=GSM7_SINGLE, part=GSM7_PART)
    if GSM7.issuperset(body):
        units = [2 if char in GSM7_EXTENSION else 1 for char in body]
        return _packed(units, single=GSM7_SINGLE, part=GSM7_PART)
    units = [2 if ord(char) > 0xFFFF else 1 for char in body]
    return _packed(units, single=UCS2_SINGLE, part=UCS2_PART)


def _parts_of(total: int, *, single: int, part: int) -> int:
    return 1 if total <= single else math.ceil(total / part)


def _packed(units: list[int], *, single: int, part: int) -> int:
    # An escape pair (GSM-7) or a surrogate pair (UCS-2) is never split across
    # parts, so a part may end one unit short: pack greedily.
    if sum(units) <= single:
        return 1
    parts, used = 1, 0
    for size in units:
        if used + size > part:
            parts, used = parts + 1, 0
        used += size
    return parts


# The longest body SMS APIs take (Twilio's limit: 1,600 characters, about ten
# concatenated parts); a longer one is refused, not cut.
SMS_MAX_CHARACTERS = 1600
