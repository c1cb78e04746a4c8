"""Who may be messaged on which channel: the rule every sender applies."""

import re

from crm.models import Channel

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def lead_recipient(lead, channel: str) -> tuple[str, str]:
    """The address to send to, or why the lead cannot be sent on this channel.

    Shared by every sender (campaigns, automations) so all skip for the same reasons.
    `lead` is a Lead or a row with its fields.
    """
    if channel == Channel.SMS:
        address, valid, missing = lead.phone, _E164, "no_phone"
        opted_out = lead.sms_opt_out
    else:
        address, valid, missing = lead.email, _EMAIL, "no_email"
        opted_out = lead.email_opt_out
    if opted_out:
        return address, "opted_out"
    if not address:
        return "", missing
    if not valid.match(address):
        return address, f"invalid_{'phone' if channel == Channel.SMS else 'email'}"
    return address, ""
