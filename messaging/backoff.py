"""When a retryable failure is tried again: exponential backoff with jitter."""

import random
from datetime import datetime, timedelta

from django.conf import settings


def next_attempt_at(*, now: datetime, attempts: int, rng: random.Random) -> datetime:
    """Attempt n waits between half the base and base * 2**(n-1), capped by the maximum.

    The jitter spreads a burst of failures (a vendor's rate limit) over the window
    instead of sending them all back at the same instant.
    """
    base = settings.MESSAGING_RETRY_BASE_SECONDS
    ceiling = min(
        settings.MESSAGING_RETRY_MAX_SECONDS, base * 2 ** max(attempts - 1, 0)
    )
    delay = base / 2 + rng.uniform(0, max(ceiling - base / 2, 0))
    return now + timedelta(seconds=delay)
