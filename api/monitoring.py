"""What operators watch: task counts per type, worker heartbeats, queue depths.

Workers count their tasks with Celery's task_success / task_failure signals into
Redis hashes (one per outcome, task name -> count) and write a heartbeat every few
seconds, so the web process can answer /health and /api/stats without asking the
workers anything. With no Redis at all (the embedded default, whose worker is a
thread of the same process) the same numbers are kept in memory.
"""

import contextlib
import json
import socket
import threading
import time
from collections import Counter
from functools import cache
from typing import Any

from celery import signals
from django.conf import settings

from config.queues import Queue

PREFIX = "crm:monitor:"
PROCESSED_KEY = PREFIX + "processed"
FAILED_KEY = PREFIX + "failed"
HEARTBEAT_KEY = PREFIX + "heartbeat"
HEARTBEAT_EVERY_SECONDS = 10
STARTED_AT = time.time()


class _MemoryStore:
    """The Redis calls used here, in this process only."""

    def __init__(self) -> None:
        self.hashes: dict[str, Counter | dict] = {}
        self.lock = threading.Lock()

    def hincrby(self, key: str, field: str, amount: int = 1) -> None:
        with self.lock:
            self.hashes.setdefault(key, Counter())[field] += amount

    def hset(self, key: str, field: str, value: str) -> None:
        with self.lock:
            self.hashes.setdefault(key, {})[field] = value

    def hdel(self, key: str, *fields: str) -> None:
        with self.lock:
            for field in fields:
                self.hashes.get(key, {}).pop(field, None)

    def hgetall(self, key: str) -> dict:
        with self.lock:
            return {
                name.encode(): str(value).encode()
                for name, value in self.hashes.get(key, {}).items()
            }


@cache
def _memory_store() -> _MemoryStore:
    return _MemoryStore()


def store() -> Any:
    """Redis at MONITORING_REDIS_URL, else the broker's if it is Redis, else memory."""
    url = settings.MONITORING_REDIS_URL or settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return _memory_store()
    return _redis(url)


@cache
def _redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def _decoded(mapping: dict) -> dict[str, str]:
    return {
        (k.decode() if isinstance(k, bytes) else k): (
            v.decode() if isinstance(v, bytes) else v
        )
        for k, v in mapping.items()
    }


# --- In the worker ---------------------------------------------------------------


def count_task(*, task_name: str, succeeded: bool) -> None:
    """Add one run of the task to its outcome's hash; never fails the task."""
    try:
        store().hincrby(PROCESSED_KEY if succeeded else FAILED_KEY, task_name, 1)
    except Exception:  # noqa: BLE001 (counting must not break the counted work)
        return


def heartbeat(*, hostname: str, started_at: float) -> None:
    """Say this worker is alive now, and since when."""
    value = json.dumps({"at": time.time(), "started_at": started_at})
    store().hset(HEARTBEAT_KEY, hostname, value)


def _on_success(sender=None, **kwargs) -> None:
    count_task(task_name=getattr(sender, "name", str(sender)), succeeded=True)


def _on_failure(sender=None, **kwargs) -> None:
    count_task(task_name=getattr(sender, "name", str(sender)), succeeded=False)


class _Heart(threading.Thread):
    def __init__(self, hostname: str) -> None:
        super().__init__(name="crm-heartbeat", daemon=True)
        self.hostname = hostname
        self.started_at = time.time()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            # Redis away: try again at the next beat.
            with contextlib.suppress(Exception):
                heartbeat(hostname=self.hostname, started_at=self.started_at)
            self.stopped.wait(HEARTBEAT_EVERY_SECONDS)


_hearts: dict[str, _Heart] = {}


def _on_worker_ready(sender=None, **kwargs) -> None:
    hostname = getattr(sender, "hostname", None) or socket.gethostname()
    heart = _Heart(hostname)
    _hearts[hostname] = heart
    heart.start()


def _on_worker_shutdown(sender=None, **kwargs) -> None:
    for hostname, heart in list(_hearts.items()):
        heart.stopped.set()
        # Stale beats age out anyway.
        with contextlib.suppress(Exception):
            store().hdel(HEARTBEAT_KEY, hostname)
        _hearts.pop(hostname, None)


def connect_signals() -> None:
    """Connect once per process; the handlers are cheap where no task ever runs."""
    signals.task_success.connect(_on_success, weak=False, dispatch_uid="crm-ok")
    signals.task_failure.connect(_on_failure, weak=False, dispatch_uid="crm-fail")
    signals.worker_ready.connect(_on_worker_ready, weak=False, dispatch_uid="crm-hb")
    signals.worker_shutdown.connect(
        _on_worker_shutdown, weak=False, dispatch_uid="crm-hb-stop"
    )


# --- In the web process ----------------------------------------------------------


def task_counts() -> dict[str, dict[str, int]]:
    """{task name: {"processed": n, "failed": n}} over every worker since reset."""
    backend = store()
    processed = _decoded(backend.hgetall(PROCESSED_KEY))
    failed = _decoded(backend.hgetall(FAILED_KEY))
    return {
        name: {
            "processed": int(processed.get(name, 0)),
            "failed": int(failed.get(name, 0)),
        }
        for name in sorted(processed.keys() | failed.keys())
    }


def worker_heartbeats() -> dict[str, dict[str, float]]:
    """{worker hostname: {"at": epoch seconds, "started_at": ...}}."""
    beats = {}
    for hostname, value in _decoded(store().hgetall(HEARTBEAT_KEY)).items():
        try:
            beats[hostname] = json.loads(value)
        except ValueError:
            continue
    return beats


def queue_depths() -> dict[str, int]:
    """Messages waiting in each of the project's queues, as the broker counts them."""
    from config.celery import app

    depths = {}
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        for queue in Queue:
            try:
                declared = channel.queue_declare(queue=queue.value, passive=True)
                depths[queue.value] = declared.message_count
            except Exception:  # noqa: BLE001 (a queue not declared yet is empty)
                channel = connection.channel()
                depths[queue.value] = 0
    return depths


def organization_backlog(*, organization_id: int) -> dict[str, Any]:
    """One organization's work waiting, from its own rows: the broker's queues hold
    every tenant's tasks, so their depths are an operator's figure, not a member's.

    {"queues": {"expand": chunks queued, "send": messages pending in running
    dispatches}, "dead_chunks": chunks that exhausted their retries}.
    """
    from django.db.models import Count, Q, Sum

    from campaigns.models import CampaignChunk
    from messaging.models import Dispatch

    chunks = CampaignChunk.objects.filter(
        campaign__organization_id=organization_id
    ).aggregate(
        queued=Count("pk", filter=Q(status=CampaignChunk.Status.QUEUED)),
        dead=Count("pk", filter=Q(status=CampaignChunk.Status.DEAD)),
    )
    pending = Dispatch.objects.filter(
        organization_id=organization_id, status=Dispatch.Status.ACTIVE
    ).aggregate(pending=Sum("pending"))["pending"]
    return {
        "queues": {"expand": chunks["queued"], "send": pending or 0},
        "dead_chunks": chunks["dead"],
    }


def uptime_seconds() -> float:
    return round(time.time() - STARTED_AT, 1)


# --- Health ------------------------------------------------------------------------


def _check(probe) -> dict[str, Any]:
    try:
        detail = probe()
    except Exception as error:  # noqa: BLE001 (a failed probe is the answer)
        return {"status": "error", "detail": f"{type(error).__name__}: {error}"}
    status, extra = detail
    return {"status": status, **extra}


def _database() -> tuple[str, dict]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok", {}


def _broker() -> tuple[str, dict]:
    from config.celery import app

    with app.connection_for_read() as connection:
        connection.ensure_connection(max_retries=1, timeout=2)
        return "ok", {"transport": connection.transport_cls}


def _workers() -> tuple[str, dict]:
    now = time.time()
    beats = worker_heartbeats()
    alive = {
        hostname: round(now - beat.get("at", 0), 1)
        for hostname, beat in beats.items()
        if now - beat.get("at", 0) <= settings.HEALTH_WORKER_MAX_AGE_SECONDS
    }
    status = "ok" if alive else "error"
    detail = {"alive": len(alive), "seconds_since_heartbeat": alive}
    if not alive:
        detail["detail"] = "no worker heartbeat in the last " + (
            f"{settings.HEALTH_WORKER_MAX_AGE_SECONDS} s"
        )
    return status, detail


def _beat() -> tuple[str, dict]:
    from django.db.models import Max
    from django.utils import timezone
    from django_celery_beat.models import PeriodicTask

    last = PeriodicTask.objects.filter(enabled=True).aggregate(last=Max("last_run_at"))[
        "last"
    ]
    if last is None:
        return "error", {"last_run_at": None, "detail": "beat has never run"}
    age = (timezone.now() - last).total_seconds()
    status = "ok" if age <= settings.HEALTH_BEAT_MAX_AGE_SECONDS else "error"
    detail = {"last_run_at": last.isoformat(), "seconds_ago": round(age, 1)}
    if status != "ok":
        detail["detail"] = f"beat last ran {age:.0f} s ago"
    return status, detail


def health_statuses(report: dict[str, Any]) -> dict[str, Any]:
    """The report's statuses alone: what anyone may see. Details name hosts,
    addresses and exception text, which are for staff."""
    return {
        "status": report["status"],
        "checks": {
            name: {"status": check["status"]}
            for name, check in report["checks"].items()
        },
    }


def health_report() -> dict[str, Any]:
    """Each part's status and the whole: healthy only if every part is ok."""
    checks = {
        "database": _check(_database),
        "broker": _check(_broker),
        "worker": _check(_workers),
        "beat": _check(_beat),
    }
    healthy = all(check["status"] == "ok" for check in checks.values())
    return {"status": "healthy" if healthy else "unhealthy", "checks": checks}
