"""Test settings: the suite runs on Postgres only, the database the product runs on."""

import os

from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/crm")
# The integration tests run real workers on Redis (db 15 is theirs alone), or on
# RabbitMQ when CELERY_TEST_BROKER_URL is an amqp:// URL; the simulator's state and
# the workers' monitoring stay in that Redis database either way.
TEST_REDIS_URL = os.environ.get("CELERY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault(
    "CELERY_BROKER_URL", os.environ.get("CELERY_TEST_BROKER_URL", TEST_REDIS_URL)
)
if not os.environ["CELERY_BROKER_URL"].startswith(("redis://", "rediss://")):
    os.environ.setdefault("SIMULATOR_REDIS_URL", TEST_REDIS_URL)
    os.environ.setdefault("MONITORING_REDIS_URL", TEST_REDIS_URL)

from config.settings.base import *  # noqa: E402, F403
from config.settings.base import DATABASES  # noqa: E402

if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured(
        "The test suite runs on PostgreSQL only; DATABASE_URL points elsewhere."
    )

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SIMULATOR_SEED = "tests"
SIMULATOR_RECEIPT_DELAY_MS = 0
# Tests pace the Twilio adapter only where they ask to (a rate, or the env var).
if "TWILIO_RATE_PER_SECOND" not in os.environ:
    TWILIO_RATE_PER_SECOND = 0.0
