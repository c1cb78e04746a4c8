"""Real Celery worker processes on Redis or RabbitMQ, against the test database on
Postgres: fixtures and helpers for every folder whose tests run them."""

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from campaigns.tasks import sweep as sweep_chunks
from campaigns.tasks import sweep_completion
from config.celery import app
from config.workers import worker_processes
from messaging.tasks import send_due, sweep

OUTPUT_DIR = Path(settings.BASE_DIR) / "test-output"


def on_rabbitmq() -> bool:
    return settings.CELERY_BROKER_URL.startswith(("amqp://", "amqps://", "pyamqp://"))


def _empty_broker(client: redis.Redis) -> None:
    client.flushdb()
    if on_rabbitmq():
        app.control.purge()


@pytest.fixture
def clean_broker():
    """An empty broker (and simulator state) for the test, whatever ran before.

    Yields the Redis client of the simulator's state: the broker itself on Redis, the
    simulator's own database beside RabbitMQ.
    """
    url = settings.SIMULATOR_REDIS_URL if on_rabbitmq() else settings.CELERY_BROKER_URL
    client = redis.Redis.from_url(url)
    _empty_broker(client)
    yield client
    _empty_broker(client)


@pytest.fixture
def start_workers(transactional_db, clean_broker):
    """Start worker processes reading this test's database; stopped after the test."""
    database = connection.settings_dict
    url = (
        f"postgresql://{database['USER']}@{database['HOST']}:{database['PORT']}"
        f"/{database['NAME']}"
    )
    OUTPUT_DIR.mkdir(exist_ok=True)
    stack = []

    def start(count: int = 2, **env: str):
        context = worker_processes(
            count,
            env={
                "DATABASE_URL": url,
                "DJANGO_SETTINGS_MODULE": "config.settings.test",
                "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
                **env,
            },
            logfile=str(OUTPUT_DIR / "integration-workers.log"),
        )
        processes = context.__enter__()
        stack.append(context)
        return processes

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)


def wait_for(
    condition: Callable[[], bool],
    *,
    timeout: float,
    every: float = 0.25,
    tick: Callable[[], None] | None = None,
    tick_every: float = 2.0,
) -> None:
    """Wait until `condition()` holds; `tick` runs now and then (beat's duties)."""
    deadline = time.monotonic() + timeout
    next_tick = time.monotonic() + tick_every
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        if tick is not None and time.monotonic() > next_tick:
            tick()
            next_tick = time.monotonic() + tick_every
        time.sleep(every)


def beat_duties() -> None:
    """What celery beat would enqueue meanwhile: due sends and the sweepers (the
    messaging one also polls and processes receipts)."""
    send_due.delay()
    sweep.delay()
    sweep_chunks.delay()
    sweep_completion.delay()


def accepted_counts(simulator, send_ids) -> dict[str, int]:
    """How often the simulator accepted each of these send ids (others left out)."""
    send_ids = set(send_ids)
    return {
        send_id: count
        for send_id, count in simulator.accepted_counts().items()
        if send_id in send_ids
    }
