"""Which vendor adapter sends a dispatch's messages: its organization's account.

The active VendorAccount of the dispatch's organization and channel sends them;
without one, settings.VENDOR_DEFAULT does (the simulator, out of the box). The
choice is read once per dispatch every DISPATCH_ADAPTER_SECONDS per process, so a
stream of batches costs one small query now and then, and an account added, edited
or switched off is followed within that time.
"""

import threading
import time

from django.db.models import F

from vendors.base import VendorAdapter
from vendors.models import VendorAccount
from vendors.registry import adapter_for_account, get_adapter

# How long a process reuses a dispatch's adapter before reading its account again.
DISPATCH_ADAPTER_SECONDS = 5.0

# Per dispatch id: when the choice was read (monotonic seconds), and the adapter.
_chosen: dict[int, tuple[float, VendorAdapter]] = {}
_lock = threading.Lock()


def dispatch_adapter(dispatch_id: int) -> VendorAdapter:
    """The adapter sending the dispatch's messages now."""
    now = time.monotonic()
    with _lock:
        chosen = _chosen.get(dispatch_id)
    if chosen is not None and now - chosen[0] < DISPATCH_ADAPTER_SECONDS:
        return chosen[1]
    # One query: the account joins the dispatch through the organization, on the
    # dispatch's channel.
    account = VendorAccount.objects.filter(
        is_active=True,
        organization__dispatches__pk=dispatch_id,
        organization__dispatches__channel=F("channel"),
    ).first()
    adapter = adapter_for_account(account) if account is not None else get_adapter()
    with _lock:
        # Dispatches finish: forget the ones not asked about for a while.
        if len(_chosen) > 1000:
            for key in [k for k, v in _chosen.items() if now - v[0] > 60]:
                del _chosen[key]
        _chosen[dispatch_id] = (now, adapter)
    return adapter


def dispatch_adapters_forget() -> None:
    """Read every dispatch's account again at its next send."""
    with _lock:
        _chosen.clear()
