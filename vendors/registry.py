"""Which adapter sends: one per vendor name from settings, one per vendor account."""

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import cache
from urllib.parse import parse_qs

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from vendors.base import (
    AccountUnusable,
    InvalidPayload,
    OutboundMessage,
    Receipt,
    SendResult,
    VendorAdapter,
    VendorUnavailable,
)
from vendors.credentials import (
    CredentialsError,
    credentials_decrypt,
    credentials_problems,
)
from vendors.models import VendorAccount

# Built-in vendors by name; any other name is read as a dotted path to an adapter
# class (or factory) taking no arguments, which is how tests plug in their own.
ADAPTERS = {
    "simulator": "vendors.simulator.SimulatorAdapter",
    "twilio": "vendors.twilio.TwilioAdapter",
}
# Per vendor: the form field naming the account a callback comes from, and the
# setting naming the settings' own account.
CALLBACK_ACCOUNT_FIELDS = {"twilio": ("AccountSid", "TWILIO_ACCOUNT_SID")}

_adapters: dict[str, VendorAdapter] = {}
# Per account id: the updated_at the adapter was built from, and the adapter.
_account_adapters: dict[int, tuple[datetime, VendorAdapter]] = {}
_lock = threading.Lock()


def get_adapter(name: str | None = None) -> VendorAdapter:
    """The adapter for `name`, settings.VENDOR_DEFAULT if not given."""
    name = name or settings.VENDOR_DEFAULT
    with _lock:
        if name not in _adapters:
            _adapters[name] = _build(name)
        return _adapters[name]


def adapter_for_account(account: VendorAccount) -> VendorAdapter:
    """The adapter sending as `account`, built once per version of the account.

    An edit or a rotation of its credentials moves `updated_at`, so the next call
    builds anew. An account that cannot send (credentials no key opens, a vendor
    without an adapter) gets an adapter failing each batch as unavailable: its
    messages wait and retry until the account is fixed or they run out of
    attempts, and are never sent by another vendor instead.
    """
    with _lock:
        cached = _account_adapters.get(account.pk)
        if cached is not None and cached[0] == account.updated_at:
            return cached[1]
        adapter = _build_for_account(account)
        adapter.rate_per_second = account.rate_per_second
        adapter.rate_key = f"account:{account.pk}"
        _account_adapters[account.pk] = (account.updated_at, adapter)
        return adapter


def adapter_for_callback(name: str, *, body: bytes) -> VendorAdapter | None:
    """The adapter whose secrets verify a callback of vendor `name`.

    Twilio names its account in every callback (AccountSid): a vendor account's
    callbacks are verified with that account's token, the settings' account's (or
    an unnamed one's) with the settings' token; an account nobody configured gets
    None, to be refused. Other vendors' callbacks: their settings' adapter.
    """
    if name not in CALLBACK_ACCOUNT_FIELDS:
        return get_adapter(name)
    field, setting = CALLBACK_ACCOUNT_FIELDS[name]
    account_id = _form_field(body, field)
    if not account_id or account_id == getattr(settings, setting):
        return get_adapter(name)
    account = (
        VendorAccount.objects.filter(vendor=name, account_id=account_id)
        .order_by("-is_active", "-updated_at")
        .first()
    )
    return adapter_for_account(account) if account is not None else None


def receipt_sources() -> list[VendorAdapter]:
    """The adapters with receipts to fetch from a queue: the default vendor's, and
    the settings' adapter of each other vendor an active account uses (accounts of
    one queueing vendor, the simulator, share its queue)."""
    names = {settings.VENDOR_DEFAULT}
    names.update(
        VendorAccount.objects.filter(is_active=True)
        .values_list("vendor", flat=True)
        .distinct()
    )
    return [
        get_adapter(name)
        for name in sorted(names)
        if name == settings.VENDOR_DEFAULT or _queues_receipts(name)
    ]


def reset_adapters() -> None:
    """Forget the built adapters, so the next get_adapter reads settings again."""
    with _lock:
        _adapters.clear()
        _account_adapters.clear()


def _build(name: str) -> VendorAdapter:
    return _factory(name)()


def _factory(name: str) -> Callable[[], VendorAdapter]:
    path = ADAPTERS.get(name, name)
    if "." not in path:
        known = ", ".join(sorted(ADAPTERS))
        raise ImproperlyConfigured(f"Unknown vendor {name!r}; known: {known}")
    try:
        return import_string(path)
    except ImportError as error:
        raise ImproperlyConfigured(f"Cannot load vendor {name!r}: {error}") from error


def _queues_receipts(name: str) -> bool:
    factory = ADAPTERS.get(name)
    if factory is None:
        return False
    adapter_class = import_string(factory)
    return adapter_class.fetch_receipts is not VendorAdapter.fetch_receipts


def _build_for_account(account: VendorAccount) -> VendorAdapter:
    if account.vendor not in ADAPTERS:
        return UnusableAccount(account, f"vendor {account.vendor!r} has no adapter")
    try:
        secrets = credentials_decrypt(account.credentials_encrypted)
    except (CredentialsError, ImproperlyConfigured) as error:
        return UnusableAccount(account, str(error))
    # Rows written around the services (a fixture, a shell) may lack a secret.
    problems = credentials_problems(account.vendor, secrets)
    if problems:
        return UnusableAccount(account, f"secrets incomplete: {', '.join(problems)}")
    try:
        return import_string(ADAPTERS[account.vendor]).from_account(account, secrets)
    except AccountUnusable as error:
        return UnusableAccount(account, str(error))


def _form_field(body: bytes, name: str) -> str:
    try:
        values = parse_qs(body.decode(), keep_blank_values=True).get(name)
    except UnicodeDecodeError:
        return ""
    return values[0] if values else ""


class UnusableAccount(VendorAdapter):
    """Stands in for an account that cannot send: every batch is unavailable, so
    its messages retry later, and no callback verifies."""

    max_batch_size = 1000

    def __init__(self, account: VendorAccount, reason: str) -> None:
        self.name = account.vendor
        self.reason = f"vendor account {account.pk} cannot send: {reason}"

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        raise VendorUnavailable(self.reason)

    def parse_receipts(
        self, *, body: bytes, headers: Mapping[str, str]
    ) -> list[Receipt]:
        raise InvalidPayload(self.reason)

    def verify_signature(
        self, *, body: bytes, headers: Mapping[str, str], now: float | None = None
    ) -> bool:
        return False

    def verify_request(
        self, *, path: str, body: bytes, headers: Mapping[str, str]
    ) -> bool:
        return False


@cache
def suppressing_codes(name: str) -> Mapping[str, str]:
    """The vendor's error codes that suppress an address, with their reasons
    (VendorAdapter.suppressing_codes); none for a name that is no adapter."""
    try:
        factory = import_string(ADAPTERS.get(name, name))
    except ImportError:
        return {}
    return getattr(factory, "suppressing_codes", {})
