"""Real Celery worker processes on Redis or RabbitMQ, against the test database on
Postgres."""

from tests.support.workers import clean_broker, start_workers  # noqa: F401 (fixtures)
