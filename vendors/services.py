"""Vendor accounts: create, change and rotate them, with their secrets encrypted.

Every write goes through these functions, from the admin and the API alike, so the
rules hold everywhere: a vendor for the channel, a sender of the channel's form,
the secrets the vendor needs, one active account per organization and channel, a
sender no other account has.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from crm.contacts import ContactError, normalize_email, normalize_phone
from crm.models import Channel, Organization
from vendors.credentials import (
    SECRET_FIELDS,
    CredentialsError,
    credentials_encrypt,
    credentials_problems,
    credentials_rotate,
)
from vendors.models import VendorAccount

Vendor = VendorAccount.Vendor
VENDORS_BY_CHANNEL = {
    Channel.SMS: {Vendor.SIMULATOR, Vendor.TWILIO},
    Channel.EMAIL: {Vendor.SIMULATOR, Vendor.SENDGRID, Vendor.SMTP},
}
E164 = re.compile(r"^\+[1-9]\d{7,14}$")
MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
TWILIO_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
# Far above any account's limit: a bound against a typo, not a vendor's number.
MAX_RATE_PER_SECOND = 10_000
# The fields an update may change; credentials go separately.
CHANGEABLE = ("channel", "vendor", "sender", "account_id", "rate_per_second")


class VendorAccountInvalid(Exception):
    """The account as asked for breaks a rule; `problems` maps fields to messages,
    which name fields and rules, never a secret."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = dict(problems)


@dataclass
class RotationOutcome:
    rotated: int = 0
    without_credentials: int = 0
    unreadable: int = 0


def normalized_sender(channel: str, sender: str) -> str:
    """The sender as replies name it, normalized as inbound routing normalizes the
    address a reply was sent to (crm.contacts): E.164 numbers, lower-case addresses.
    What does not normalize is kept, trimmed, for the rules to refuse."""
    sender = sender.strip()
    try:
        if channel == Channel.EMAIL:
            return normalize_email(sender)
        if sender.startswith("+"):
            return normalize_phone(sender)
    except ContactError:
        pass
    if channel == Channel.SMS:
        return re.sub(r"[\s().-]", "", sender)
    return sender


def vendor_account_problems(
    *,
    account: VendorAccount,
    secrets: Mapping[str, str] | None,
) -> dict[str, str]:
    """What is wrong with `account` (unsaved changes included) and the new secrets
    (None: the stored ones stay); empty when nothing is."""
    problems: dict[str, str] = {}
    channel, vendor, sender = account.channel, account.vendor, account.sender
    if channel not in Channel.values:
        problems["channel"] = f"Must be one of: {', '.join(Channel.values)}."
    elif vendor not in VENDORS_BY_CHANNEL[channel]:
        allowed = ", ".join(sorted(VENDORS_BY_CHANNEL[channel]))
        problems["vendor"] = (
            f"{vendor!r} does not send {channel}; use one of {allowed}."
        )
    if channel == Channel.SMS:
        if vendor == Vendor.TWILIO and not (
            E164.match(sender) or MESSAGING_SERVICE_SID.match(sender)
        ):
            problems["sender"] = (
                "Must be a number in E.164 form (+15005550006) or a Twilio "
                "messaging service SID (MG followed by 32 hex digits)."
            )
        elif vendor != Vendor.TWILIO and not E164.match(sender):
            problems["sender"] = "Must be a number in E.164 form (+15005550006)."
    elif channel == Channel.EMAIL:
        try:
            validate_email(sender)
        except ValidationError:
            problems["sender"] = "Must be an email address."
    if vendor == Vendor.TWILIO and not TWILIO_ACCOUNT_SID.match(account.account_id):
        problems["account_id"] = (
            "Must be the Twilio account SID: AC followed by 32 hex digits."
        )
    if not 1 <= (account.rate_per_second or 0) <= MAX_RATE_PER_SECOND:
        problems["rate_per_second"] = f"Must be from 1 to {MAX_RATE_PER_SECOND}."
    if secrets is not None:
        problems.update(
            {
                f"credentials.{name}": message
                for name, message in credentials_problems(vendor, secrets).items()
            }
        )
    elif SECRET_FIELDS.get(vendor) and not account.credentials_encrypted:
        problems["credentials"] = f"{vendor} needs its secrets."
    if not problems:
        problems.update(_clashes(account))
    return problems


def _clashes(account: VendorAccount) -> dict[str, str]:
    others = VendorAccount.objects.exclude(pk=account.pk)
    problems = {}
    if others.filter(channel=account.channel, sender=account.sender).exists():
        problems["sender"] = "Another account already sends as this sender."
    if (
        account.is_active
        and others.filter(
            organization_id=account.organization_id,
            channel=account.channel,
            is_active=True,
        ).exists()
    ):
        problems["is_active"] = (
            f"The organization already has an active {account.channel} account; "
            "deactivate it first."
        )
    return problems


def vendor_account_create(
    *,
    organization: Organization,
    channel: str,
    vendor: str,
    sender: str,
    account_id: str = "",
    secrets: Mapping[str, str] | None = None,
    rate_per_second: int = 10,
    is_active: bool = True,
) -> VendorAccount:
    """A new account of the organization; VendorAccountInvalid if a rule is broken."""
    account = VendorAccount(
        organization=organization,
        channel=channel,
        vendor=vendor,
        sender=normalized_sender(channel, sender),
        account_id=account_id.strip(),
        rate_per_second=rate_per_second,
        is_active=is_active,
    )
    return _saved(account, secrets=dict(secrets or {}))


def vendor_account_update(
    *,
    account: VendorAccount,
    secrets: Mapping[str, str] | None = None,
    **changes,
) -> VendorAccount:
    """Change the account's fields (CHANGEABLE and is_active) and, if given, replace
    its secrets; a change of vendor needs the new vendor's secrets."""
    unknown = set(changes) - {*CHANGEABLE, "is_active"}
    if unknown:
        raise TypeError(f"cannot change {', '.join(sorted(unknown))}")
    vendor_changes = changes.get("vendor", account.vendor) != account.vendor
    for name, value in changes.items():
        setattr(account, name, value)
    account.sender = normalized_sender(account.channel, account.sender)
    account.account_id = account.account_id.strip()
    if vendor_changes and secrets is None:
        if SECRET_FIELDS.get(account.vendor):
            raise VendorAccountInvalid(
                {"credentials": f"{account.vendor} needs its secrets."}
            )
        secrets = {}
    return _saved(account, secrets=secrets)


def _saved(account: VendorAccount, *, secrets: Mapping[str, str] | None):
    problems = vendor_account_problems(account=account, secrets=secrets)
    if problems:
        raise VendorAccountInvalid(problems)
    if secrets is not None:
        try:
            account.credentials_encrypted = credentials_encrypt(secrets)
        except ImproperlyConfigured as error:
            raise VendorAccountInvalid({"credentials": str(error)}) from error
    try:
        with transaction.atomic():
            account.save()
    except IntegrityError as error:
        # Another request saved a clashing account between the check and now.
        raise VendorAccountInvalid(
            _clashes(account) or {"sender": "Clashes with another account."}
        ) from error
    return account


def vendor_account_delete(*, account: VendorAccount) -> None:
    """Remove the account; its organization sends through the default vendor again."""
    account.delete()


def vendor_accounts_rotate_credentials() -> RotationOutcome:
    """Re-encrypt every account's secrets under the first key of
    VENDOR_CREDENTIALS_KEYS. Running it twice changes nothing more; an account no
    key opens is counted and left as it is."""
    outcome = RotationOutcome()
    ids = VendorAccount.objects.order_by("pk").values_list("pk", flat=True)
    for pk in ids:
        with transaction.atomic():
            account = VendorAccount.objects.select_for_update().filter(pk=pk).first()
            if account is None:
                continue
            if not account.credentials_encrypted:
                outcome.without_credentials += 1
                continue
            try:
                account.credentials_encrypted = credentials_rotate(
                    account.credentials_encrypted
                )
            except CredentialsError:
                outcome.unreadable += 1
                continue
            # A new updated_at rebuilds the account's adapters in every process.
            account.save(update_fields=["credentials_encrypted", "updated_at"])
            outcome.rotated += 1
    return outcome
