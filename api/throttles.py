"""API throttles whose rates are read from settings at request time.

DRF's own classes copy the rates when first imported, so a changed setting (an
override in a test, say) would go unseen. Cache keys hold only an IP address or a
digest: the client address comes from X-Forwarded-For when settings trust a proxy
(REST_FRAMEWORK["NUM_PROXIES"]), and that header is any text its sender likes.
"""

import hashlib
import ipaddress

from rest_framework import throttling
from rest_framework.settings import api_settings

from vendors.registry import ADAPTERS


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class _RatesFromSettings:
    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_ident(self, request) -> str:
        ident = super().get_ident(request) or ""  # a WSGI server may give no address
        try:
            return str(ipaddress.ip_address(ident))
        except ValueError:
            return _digest(ident)


class UserRateThrottle(_RatesFromSettings, throttling.UserRateThrottle):
    pass


class AnonRateThrottle(_RatesFromSettings, throttling.AnonRateThrottle):
    pass


class TokenAddressThrottle(_RatesFromSettings, throttling.SimpleRateThrottle):
    """Token requests per client address, whatever usernames it tries."""

    scope = "token_address"

    def get_cache_key(self, request, view):
        return self.cache_format % {
            "scope": self.scope,
            "ident": self.get_ident(request),
        }


class TokenUsernameThrottle(_RatesFromSettings, throttling.SimpleRateThrottle):
    """Token requests per username (in any case), from whatever addresses: one
    account's password is not guessed from many machines at once."""

    scope = "token_username"

    def get_cache_key(self, request, view):
        data = request.data
        username = data.get("username") if hasattr(data, "get") else None
        if not isinstance(username, str) or not username:
            return None  # refused by the serializer; the address throttle counts it
        return self.cache_format % {
            "scope": self.scope,
            "ident": _digest(username.casefold()),
        }


class WebhookRateThrottle(_RatesFromSettings, throttling.SimpleRateThrottle):
    """Per vendor and source address: a vendor's bursts are large but bounded."""

    scope = "webhook"

    def get_cache_key(self, request, view):
        # Unknown names share one bucket: they are 404s, and keys stay plain ASCII.
        vendor = view.kwargs.get("vendor", "")
        vendor = vendor if vendor in ADAPTERS else "unknown"
        return self.cache_format % {
            "scope": self.scope,
            "ident": f"{vendor}:{self.get_ident(request)}",
        }
