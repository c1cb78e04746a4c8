"""The browser tests run a real worker, as the integration tests do."""

from tests.support.workers import clean_broker, start_workers  # noqa: F401
