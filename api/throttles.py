"""API throttles whose rates are read from settings at request time.

DRF's own classes copy the rates when first imported, so a changed setting (an
override in a test, say) would go unseen.
"""

from rest_framework import throttling
from rest_framework.settings import api_settings

from vendors.registry import ADAPTERS


class _RatesFromSettings:
    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class UserRateThrottle(_RatesFromSettings, throttling.UserRateThrottle):
    pass


class AnonRateThrottle(_RatesFromSettings, throttling.AnonRateThrottle):
    pass


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
