"""The benchmark's counters inside each worker: tasks, SQL statements, time, memory.

Installed by config.celery only when CRM_BENCH_PROBE_URL names a Redis database (the
benchmark sets it for the workers it starts). Each worker child counts in memory
and adds its counts to Redis once a task, so the probe costs one round trip per task,
not one per statement. With CRM_BENCH_PROFILE_DIR set, each child also runs cProfile
over its tasks and writes `<dir>/worker-<pid>.prof`.
"""

import cProfile
import os
import time
from pathlib import Path

import redis
from celery import signals
from django.db import connection

KEY_PREFIX = "bench:"
PROBE_URL_ENV = "CRM_BENCH_PROBE_URL"
PROFILE_DIR_ENV = "CRM_BENCH_PROFILE_DIR"
# A profile is written after this many tasks, and when the child exits.
PROFILE_DUMP_EVERY = 200

_state = {"statements": 0, "started": 0.0, "cpu_started": 0.0, "tasks": 0}
_probe: dict = {}


def probe_install() -> None:
    """Count in this worker from now on, reporting to CRM_BENCH_PROBE_URL."""
    profile_dir = os.environ.get(PROFILE_DIR_ENV, "")
    _probe["client"] = redis.Redis.from_url(os.environ[PROBE_URL_ENV])
    _probe["profile_dir"] = profile_dir
    _probe["profiler"] = cProfile.Profile() if profile_dir else None
    signals.task_prerun.connect(_task_started, weak=False)
    signals.task_postrun.connect(_task_done, weak=False)
    signals.worker_process_shutdown.connect(_child_exits, weak=False)


def _count(execute, sql, params, many, context):
    _state["statements"] += 1
    return execute(sql, params, many, context)


def peak_rss_kib(pid: int | str = "self") -> int:
    """The process's peak resident set (VmHWM), in KiB; 0 if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _task_started(task=None, **kwargs) -> None:
    if _count not in connection.execute_wrappers:
        connection.execute_wrappers.append(_count)
    _state["statements"] = 0
    _state["started"] = time.perf_counter()
    _state["cpu_started"] = time.process_time()
    if _probe["profiler"] is not None:
        _probe["profiler"].enable()


def _task_done(task=None, **kwargs) -> None:
    if _probe["profiler"] is not None:
        _probe["profiler"].disable()
    elapsed = time.perf_counter() - _state["started"]
    cpu = time.process_time() - _state["cpu_started"]
    name = task.name if task is not None else "?"
    pipe = _probe["client"].pipeline(transaction=False)
    pipe.incr(f"{KEY_PREFIX}tasks")
    pipe.incrby(f"{KEY_PREFIX}statements", _state["statements"])
    pipe.hincrby(f"{KEY_PREFIX}tasks_by_name", name, 1)
    pipe.hincrby(f"{KEY_PREFIX}statements_by_name", name, _state["statements"])
    pipe.hincrbyfloat(f"{KEY_PREFIX}seconds_by_name", name, elapsed)
    pipe.hincrbyfloat(f"{KEY_PREFIX}cpu_seconds_by_name", name, cpu)
    pipe.hset(f"{KEY_PREFIX}peak_rss_kib", str(os.getpid()), peak_rss_kib())
    pipe.execute()
    _state["tasks"] += 1
    if _probe["profiler"] is not None and _state["tasks"] % PROFILE_DUMP_EVERY == 0:
        _dump_profile()


def _child_exits(**kwargs) -> None:
    if _probe["profiler"] is not None:
        _dump_profile()


def _dump_profile() -> None:
    directory = _probe["profile_dir"]
    Path(directory).mkdir(parents=True, exist_ok=True)
    _probe["profiler"].dump_stats(f"{directory}/worker-{os.getpid()}.prof")
