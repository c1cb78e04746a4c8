"""What orchestrators probe: the process answers, it can serve, beat ticks.

Each answer is a yes or a no with the part's name, never an exception's text: probes
are anonymous. /health (api.monitoring) gives people the detailed view.
"""

from django.conf import settings
from django.db import connection
from django.utils import timezone

# A probe waits this long for a part before calling it down: orchestrators time
# their probes out after a few seconds.
PROBE_TIMEOUT_SECONDS = 2


def database_reachable() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # noqa: BLE001 (any failure is the answer)
        return False
    return True


def broker_reachable() -> bool:
    from config.celery import app

    try:
        with app.connection_for_read() as broker:
            broker.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT_SECONDS)
    except Exception:  # noqa: BLE001 (any failure is the answer)
        return False
    return True


def readiness() -> dict[str, bool]:
    """Whether each part a request or a launch needs is reachable."""
    return {"database": database_reachable(), "broker": broker_reachable()}


def beat_seconds_since_last_run() -> float | None:
    """Seconds since beat last sent an enabled schedule's task; None if it never did."""
    from django.db.models import Max
    from django_celery_beat.models import PeriodicTask

    last = PeriodicTask.objects.filter(enabled=True).aggregate(last=Max("last_run_at"))[
        "last"
    ]
    return None if last is None else (timezone.now() - last).total_seconds()


def beat_alive() -> bool:
    """Beat ran a schedule within HEALTH_BEAT_MAX_AGE_SECONDS."""
    age = beat_seconds_since_last_run()
    return age is not None and age <= settings.HEALTH_BEAT_MAX_AGE_SECONDS
