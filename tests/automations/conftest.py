"""Fixtures for the automations' tests: a clock to move, and the jobs run inline."""

import datetime as dt

import pytest
import time_machine

from config.celery import app as celery_app

# The real workers of the integration tests, for the beat integration test here.
from tests.support.workers import clean_broker, start_workers  # noqa: F401


@pytest.fixture
def clock():
    """A stopped clock at a fixed moment; `clock.move_to(...)`, `clock.shift(...)`."""
    start = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as traveller:
        yield traveller


@pytest.fixture
def eager():
    """Tasks run inline where they are enqueued (the broker is not involved)."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False
