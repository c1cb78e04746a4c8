"""What the benchmark measures besides the clock: worker memory and CPU, database
CPU, and the probe's per-task counters (bench.probe) read back from Redis."""

import psutil
import redis
from django.db import connection

from bench.probe import KEY_PREFIX, peak_rss_kib


def worker_peak_rss_mb(processes: list, client: redis.Redis) -> list[float]:
    """Peak RSS of each worker: its main process and every child it ran."""
    recorded = {
        int(pid): int(kib)
        for pid, kib in client.hgetall(f"{KEY_PREFIX}peak_rss_kib").items()
    }
    peaks = []
    for process in processes:
        kib = peak_rss_kib(process.pid)
        try:
            children = psutil.Process(process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        for child in children:
            kib = max(kib, peak_rss_kib(child.pid), recorded.pop(child.pid, 0))
        peaks.append(kib)
    if peaks and recorded:
        # Children replaced during the run (max memory per child) are gone; their
        # last report still counts, against the worker with the highest peak.
        peaks[peaks.index(max(peaks))] = max(max(peaks), *recorded.values())
    return [round(kib / 1024, 1) for kib in peaks]


class CpuMeter:
    """CPU time (user + system) of processes that may come and go during the run.

    Worker children are replaced (max memory per child) and database backends end
    with their connections (CONN_MAX_AGE), so each process's last reading, taken
    every few seconds, is kept after it is gone.
    """

    EVERY_SECONDS = 2.0

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}
        self.next_at = 0.0

    def read(self, pids) -> None:
        for pid in pids:
            try:
                process = psutil.Process(pid)
                for each in [process, *process.children(recursive=True)]:
                    times = each.cpu_times()
                    self.seen[each.pid] = times.user + times.system
            except psutil.NoSuchProcess:
                continue

    def total(self) -> float:
        return round(sum(self.seen.values()), 1)


def database_backends() -> list[int]:
    """Server processes serving this database (other than this connection)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [pid for (pid,) in cursor.fetchall()]


def probe_counts(client: redis.Redis) -> dict:
    def ints(name: str) -> dict:
        return {
            key.decode(): int(float(value))
            for key, value in client.hgetall(KEY_PREFIX + name).items()
        }

    def seconds(name: str) -> dict:
        return {
            key.decode(): round(float(value), 2)
            for key, value in client.hgetall(KEY_PREFIX + name).items()
        }

    return {
        "tasks": int(client.get(f"{KEY_PREFIX}tasks") or 0),
        "statements": int(client.get(f"{KEY_PREFIX}statements") or 0),
        "tasks_by_name": ints("tasks_by_name"),
        "statements_by_name": ints("statements_by_name"),
        "task_seconds_by_name": seconds("seconds_by_name"),
        "task_cpu_seconds_by_name": seconds("cpu_seconds_by_name"),
    }


def probe_reset(client: redis.Redis) -> None:
    keys = list(client.scan_iter(f"{KEY_PREFIX}*"))
    if keys:
        client.delete(*keys)
