"""Real Celery worker processes on Redis or RabbitMQ, against the test database on
Postgres."""

from tests.support.workers import (  # noqa: F401 (fixtures, and helpers imported from here)
    OUTPUT_DIR,
    accepted_counts,
    beat_duties,
    clean_broker,
    start_workers,
    wait_for,
)
