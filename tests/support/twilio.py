"""The Twilio fake on loopback and a TwilioAdapter pointed at it, for tests."""

from vendors.rate_limit import LocalRateLimiter
from vendors.twilio import TwilioAdapter
from vendors.twilio_fake import TwilioFake

PUBLIC_URL = "http://testserver"


def adapter_for(fake: TwilioFake, **options) -> TwilioAdapter:
    """A real TwilioAdapter sending to the fake, as the fake's account; unpaced
    unless given a `rate_per_second`, on a limiter of its own."""
    defaults = {
        "api_base": fake.base_url,
        "account_sid": fake.account_sid,
        "auth_token": fake.auth_token,
        "from_number": "+15005550006",
        "public_url": PUBLIC_URL,
        "max_in_flight": 8,
        "timeout": 5.0,
        "rate_per_second": 0,
        "rate_limiter": LocalRateLimiter(),
    }
    return TwilioAdapter(**{**defaults, **options})
