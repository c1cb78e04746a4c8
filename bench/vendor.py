"""The vendor a benchmark run sends to: the simulator, or the fake Twilio as a
process of its own (workers are processes, so they reach it over loopback)."""

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from vendors.twilio_fake import STATS_PATH, TwilioFake

VENDORS = ("simulator", "twilio-fake")
# Requests each worker keeps in flight: its share of the rate times the latency,
# with room for the gaps while it claims and records (docs/vendors.md).
IN_FLIGHT_PER_WORKER = 128
# Where nothing listens: the bench's fake calls no status callback back.
NO_CALLBACKS_URL = "http://127.0.0.1:9"


@dataclass(frozen=True)
class FakeTwilio:
    """A running fake Twilio process and the settings that point workers at it."""

    base_url: str
    rate: int

    def worker_env(self) -> dict[str, str]:
        return {
            "VENDOR_DEFAULT": "twilio",
            "TWILIO_API_BASE": self.base_url,
            "TWILIO_ACCOUNT_SID": TwilioFake.account_sid,
            "TWILIO_AUTH_TOKEN": TwilioFake.auth_token,
            "TWILIO_FROM_NUMBER": "+15005550006",
            "TWILIO_STATUS_CALLBACK_URL": NO_CALLBACKS_URL,
            "TWILIO_RATE_PER_SECOND": str(self.rate),
            "TWILIO_MAX_IN_FLIGHT": str(IN_FLIGHT_PER_WORKER),
        }

    def stats(self) -> dict:
        with urllib.request.urlopen(self.base_url + STATS_PATH, timeout=10) as answer:
            return json.load(answer)


@contextmanager
def fake_twilio_running(*, latency_ms: int, rate: int) -> Iterator[FakeTwilio]:
    """Run `python -m vendors.twilio_fake` until the block ends."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vendors.twilio_fake",
            "--latency-ms",
            str(latency_ms),
            "--rate",
            str(rate),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the fake Twilio did not start")
        yield FakeTwilio(base_url=json.loads(line)["base_url"], rate=rate)
    finally:
        process.terminate()
        process.wait(timeout=10)


def twilio_figures(*, stats: dict, rate: int, sent: int) -> dict:
    """The vendor's side of a run against the fake Twilio."""
    sends_per_s = stats["sends_per_s"]
    return {
        "vendor_rate_limit": rate,
        "sends_per_s": sends_per_s,
        "rate_utilization": round(sends_per_s / rate, 3) if rate else None,
        "vendor_429s": stats["rate_limited"],
        "vendor_duplicate_sends": stats["duplicate_sends"],
        "vendor_requests": stats["requests"],
        "vendor_accepted": stats["accepted"],
        "vendor_max_window": stats["max_window"],
        "vendor_windows_over_limit": stats["windows_over_limit"],
        "vendor_send_phase_seconds": stats["send_phase_seconds"],
        "vendor_accepted_matches_sent": stats["accepted"] == sent,
    }
