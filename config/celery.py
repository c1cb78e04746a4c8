"""The Celery app: settings from Django, one queue per stage, task discovery."""

import gc
import os

from celery import Celery, signals
from kombu import Queue as KombuQueue

from config import task_events
from config.queues import ROUTES, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("crm")
app.config_from_object("django.conf:settings", namespace="CELERY")


def _declare_queues() -> None:
    from django.conf import settings

    on_rabbitmq = settings.CELERY_BROKER_URL.startswith(("amqp", "pyamqp"))
    # Quorum queues are replicated and survive a broker node's loss.
    arguments = {"x-queue-type": "quorum"} if on_rabbitmq else None
    app.conf.task_queues = [
        KombuQueue(queue.value, routing_key=queue.value, queue_arguments=arguments)
        for queue in Queue
    ]
    app.conf.task_default_queue = Queue.DEFAULT.value
    app.conf.task_routes = {
        name: {"queue": queue.value} for name, queue in ROUTES.items()
    }
    if on_rabbitmq:
        app.conf.worker_detect_quorum_queues = True


_declare_queues()
app.autodiscover_tasks()
task_events.connect()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _close_old_db_connections(task=None, **kwargs) -> None:
    """Keep the connection across tasks up to CONN_MAX_AGE; drop it if broken.

    What Django does around each request; Celery's own per-task close is relaxed by
    CELERY_DB_REUSE_MAX. A task run eagerly is inside its caller's work: left alone.
    """
    if task is None or getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


# Allocations between automatic collections of the youngest generation (Python's
# default: 700). A batch of 2,000 messages allocates hundreds of thousands of
# short-lived objects.
GC_YOUNGEST_THRESHOLD = 10_000


@signals.worker_process_init.connect
@signals.worker_ready.connect
def _gc_tuned_for_batches(**kwargs) -> None:
    """Keep the garbage collector off the worker's long-lived objects.

    Everything loaded at start-up (Django, Celery, the apps) is frozen out of the
    collector's reach, and the youngest generation is collected less often. In a
    benchmark of expanding and sending 100,000 messages in one process, collections
    took 1.6 s of 7 s of CPU, two thirds of it full collections walking that
    start-up heap; frozen and so tuned, 0.01 s.
    """
    gc.freeze()
    gc.set_threshold(GC_YOUNGEST_THRESHOLD, *gc.get_threshold()[1:])


if os.environ.get("CRM_BENCH_PROBE_URL"):
    # The benchmark's per-worker counters (bench.benchmark); off otherwise.
    from bench.probe import probe_install

    probe_install()
