"""Which adapter a vendor name means; one instance of each per process."""

import threading
from collections.abc import Callable, Mapping
from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from vendors.base import VendorAdapter

# Built-in vendors by name; any other name is read as a dotted path to an adapter
# class (or factory) taking no arguments, which is how tests plug in their own.
ADAPTERS = {
    "simulator": "vendors.simulator.SimulatorAdapter",
    "twilio": "vendors.twilio.TwilioAdapter",
    "sendgrid": "vendors.sendgrid.SendGridAdapter",
    "smtp": "vendors.smtp.SmtpAdapter",
}

_adapters: dict[str, VendorAdapter] = {}
_lock = threading.Lock()


def get_adapter(name: str | None = None) -> VendorAdapter:
    """The adapter for `name`, settings.VENDOR_DEFAULT if not given."""
    name = name or settings.VENDOR_DEFAULT
    with _lock:
        if name not in _adapters:
            _adapters[name] = _build(name)
        return _adapters[name]


def reset_adapters() -> None:
    """Forget the built adapters, so the next get_adapter reads settings again."""
    with _lock:
        _adapters.clear()


def _build(name: str) -> VendorAdapter:
    path = ADAPTERS.get(name, name)
    if "." not in path:
        known = ", ".join(sorted(ADAPTERS))
        raise ImproperlyConfigured(f"Unknown vendor {name!r}; known: {known}")
    try:
        factory: Callable[[], VendorAdapter] = import_string(path)
    except ImportError as error:
        raise ImproperlyConfigured(f"Cannot load vendor {name!r}: {error}") from error
    return factory()


@cache
def suppressing_codes(name: str) -> Mapping[str, str]:
    """The vendor's error codes that suppress an address, with their reasons
    (VendorAdapter.suppressing_codes); none for a name that is no adapter."""
    try:
        factory = import_string(ADAPTERS.get(name, name))
    except ImportError:
        return {}
    return getattr(factory, "suppressing_codes", {})
