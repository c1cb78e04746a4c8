"""What each Celery task run leaves behind: its ids on every line it logs, a start and
an end line with its counts and duration, and its runtime in the metrics.

Connected to Celery's signals once per process (config.celery), so no task repeats
it. A task's ids (task id and name, the request id of the web request that enqueued
it, and the campaign, dispatch or organization id among its arguments) are bound to
the logging context for the run; services bind what only they know.
"""

import inspect
import logging
import time
from functools import cache

import structlog
from celery import signals
from celery.utils.log import mlevel
from django.conf import settings

from config.metrics import TASK_RUNTIME_SECONDS

logger = structlog.get_logger("crm.tasks")

REQUEST_ID_HEADER = "request_id"
# Arguments bound to the context by name when a task takes them, or takes a dict
# (a chunk's message) holding them.
BOUND_ARGUMENTS = ("campaign_id", "dispatch_id", "org_id", "import_id", "job_id")
# When each running task started (time.perf_counter()) and, for a task run eagerly
# inside its caller, the caller's context to restore after it.
_runs: dict[str, tuple[float, dict | None]] = {}


@cache
def _parameters(task_name: str, run) -> tuple[str, ...]:
    try:
        return tuple(inspect.signature(run).parameters)
    except (TypeError, ValueError):
        return ()


def _bound_arguments(task, args, kwargs) -> dict[str, int | str]:
    named = dict(zip(_parameters(task.name, task.run), args or (), strict=False))
    named.update(kwargs or {})
    for value in list(named.values()):
        if isinstance(value, dict):
            named.update({key: value[key] for key in BOUND_ARGUMENTS if key in value})
    return {
        name: named[name]
        for name in BOUND_ARGUMENTS
        if isinstance(named.get(name), int | str)
    }


def _counts(retval) -> dict:
    """The numbers a task returns, for its end line; nothing else it returns."""
    if isinstance(retval, bool):
        return {"result": retval}
    if isinstance(retval, int):
        return {"result": retval}
    if isinstance(retval, dict):
        return {
            key: value
            for key, value in retval.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
    if isinstance(retval, list):
        return {"items": len(retval)}
    return {}


def _on_publish(headers=None, **kwargs) -> None:
    """A task enqueued while answering a request (or running a task that was) carries
    the request id to the worker."""
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id and headers is not None:
        headers[REQUEST_ID_HEADER] = request_id


def _on_prerun(task_id=None, task=None, args=None, kwargs=None, **extra) -> None:
    eager = bool(getattr(task.request, "is_eager", False))
    caller = structlog.contextvars.get_contextvars() if eager else None
    if not eager:
        structlog.contextvars.clear_contextvars()
    context = {"task_id": task_id, "task_name": task.name}
    request_id = getattr(task.request, REQUEST_ID_HEADER, None)
    if request_id:
        context["request_id"] = request_id
    context.update(_bound_arguments(task, args, kwargs))
    structlog.contextvars.bind_contextvars(**context)
    _runs[task_id] = (time.perf_counter(), caller)
    logger.info("task_started")


def _on_postrun(task_id=None, task=None, retval=None, state=None, **extra) -> None:
    started, caller = _runs.pop(task_id, (None, None))
    if started is not None:
        seconds = time.perf_counter() - started
        TASK_RUNTIME_SECONDS.labels(task.name, state or "UNKNOWN").observe(seconds)
        fields = {"state": state, "duration_ms": round(seconds * 1000, 1)}
        if state == "SUCCESS":
            logger.info("task_finished", counts=_counts(retval), **fields)
        else:
            logger.warning("task_finished", error=type(retval).__name__, **fields)
    structlog.contextvars.clear_contextvars()
    if caller:
        structlog.contextvars.bind_contextvars(**caller)


def _keep_project_logging(loglevel=None, **kwargs) -> None:
    """Celery leaves settings.LOGGING's handlers and format alone (a receiver of this
    signal tells it to); its --loglevel applies unless LOG_LEVEL is set."""
    _apply_celery_level(loglevel)


def _level_after_django_setup(sender=None, **kwargs) -> None:
    """Celery's Django fixup runs django.setup() again at worker init, setting the
    root level from settings.LOGGING: a worker started inside another process (the
    demo's) still logs at its own level."""
    _apply_celery_level(getattr(sender, "loglevel", None))


def _apply_celery_level(loglevel) -> None:
    if not settings.LOG_LEVEL and loglevel:
        logging.getLogger().setLevel(mlevel(loglevel))


def _quiet_banner_for_json(instance=None, **kwargs) -> None:
    """The worker's start-up banner is plain text on stdout: left out when every line
    must be JSON."""
    if settings.LOG_FORMAT == "json" and instance is not None:
        instance.quiet = True


def connect() -> None:
    signals.before_task_publish.connect(
        _on_publish, weak=False, dispatch_uid="crm-log-publish"
    )
    signals.task_prerun.connect(_on_prerun, weak=False, dispatch_uid="crm-log-pre")
    signals.task_postrun.connect(_on_postrun, weak=False, dispatch_uid="crm-log-post")
    signals.setup_logging.connect(
        _keep_project_logging, weak=False, dispatch_uid="crm-log-setup"
    )
    signals.worker_init.connect(
        _level_after_django_setup, weak=False, dispatch_uid="crm-log-level"
    )
    signals.celeryd_init.connect(
        _quiet_banner_for_json, weak=False, dispatch_uid="crm-log-quiet"
    )
