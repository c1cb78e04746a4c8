"""/health/live and /health/ready: what orchestrators and load balancers probe."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.utils import OperationalError
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from kombu import Connection
from rest_framework.test import APIClient

from config.celery import app


def test_live_answers_without_touching_the_database():
    # given a test with no database access: any query raises

    # when an orchestrator probes liveness
    response = APIClient().get("/health/live")

    # then the process answers
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_ready_when_the_database_and_the_broker_answer():
    # given the test database and the test broker, both up

    # when an orchestrator probes readiness
    response = APIClient().get("/health/ready")

    # then it is ready
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok"},
    }


@pytest.mark.django_db
def test_not_ready_while_the_broker_is_unreachable(monkeypatch):
    # given a broker URL nothing listens on
    monkeypatch.setattr(
        app, "connection_for_read", lambda: Connection("redis://127.0.0.1:1/0")
    )

    # when an orchestrator probes readiness
    response = APIClient().get("/health/ready")

    # then it is 503, naming the broker, with no exception text for anonymous eyes
    assert response.status_code == 503
    assert response.json() == {
        "status": "error",
        "checks": {"database": "ok", "broker": "error"},
    }


@pytest.mark.django_db
def test_not_ready_while_the_database_is_unreachable(monkeypatch):
    # given a database that refuses connections
    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", refuse)

    # when an orchestrator probes readiness
    response = APIClient().get("/health/ready")

    # then it is 503, naming the database
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "error", "broker": "ok"}
    assert "refused" not in response.content.decode()


def beat_ran(seconds_ago: float) -> None:
    every, _ = IntervalSchedule.objects.get_or_create(every=10, period="seconds")
    PeriodicTask.objects.update(last_run_at=None)
    PeriodicTask.objects.create(
        name="probe test tick",
        task="messaging.send_due",
        interval=every,
        last_run_at=timezone.now() - timedelta(seconds=seconds_ago),
    )


@pytest.mark.django_db
def test_beat_probe_passes_while_beat_runs_its_schedules():
    # given beat sent a schedule's task 20 seconds ago
    beat_ran(20)

    # when the beat container's healthcheck runs
    out = StringIO()
    call_command("probe", "beat", stdout=out)

    # then it passes
    assert "20 s ago" in out.getvalue()


@pytest.mark.django_db
def test_beat_probe_fails_once_beat_stopped(settings):
    # given beat's last run is older than the health limit
    beat_ran(settings.HEALTH_BEAT_MAX_AGE_SECONDS + 60)

    # when the beat container's healthcheck runs
    # then it fails, saying how long ago beat last ran
    with pytest.raises(CommandError, match="beat last ran a schedule"):
        call_command("probe", "beat")


@pytest.mark.django_db
def test_ready_probe_command_names_what_is_unreachable(monkeypatch):
    # given a broker nobody answers on
    monkeypatch.setattr(
        app, "connection_for_read", lambda: Connection("redis://127.0.0.1:1/0")
    )

    # when a container healthcheck asks whether the process is ready
    # then it fails, naming the broker
    with pytest.raises(CommandError, match="not ready: broker unreachable"):
        call_command("probe", "ready")
