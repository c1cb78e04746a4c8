"""Invariants checked with real workers: their fixtures."""

from tests.support.workers import clean_broker, start_workers  # noqa: F401
