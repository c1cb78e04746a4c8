"""Start Celery workers for the demo, the benchmark and the integration tests.

Two ways: a worker thread inside this process (the embedded default: its in-memory
broker is only visible from this process), or real worker processes on the
configured broker, stopped again when the block ends.
"""

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from config.celery import app
from config.queues import Queue

BASE_DIR = Path(__file__).resolve().parent.parent


@contextmanager
def embedded_worker() -> Iterator[None]:
    """A real Celery worker consuming every queue, in a thread of this process."""
    from celery.contrib.testing.worker import start_worker

    # A line per task would drown the demo's progress bar; warnings still show.
    celery_logger = logging.getLogger("celery")
    level = celery_logger.level
    celery_logger.setLevel(logging.WARNING)
    with start_worker(
        app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        queues=[queue.value for queue in Queue],
        loglevel="WARNING",
        shutdown_timeout=30,
    ):
        try:
            yield
        finally:
            celery_logger.setLevel(level)


@contextmanager
def worker_processes(
    count: int = 2,
    *,
    env: dict | None = None,
    concurrency: int = 1,
    logfile: str | None = None,
    ready_timeout: float = 60,
) -> Iterator[list[subprocess.Popen]]:
    """`count` worker processes on the configured broker, each consuming every queue."""
    environment = {**os.environ, **(env or {})}
    queues = ",".join(queue.value for queue in Queue)
    processes = []
    log = open(logfile, "ab") if logfile else subprocess.DEVNULL  # noqa: SIM115
    try:
        for index in range(count):
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "config",
                        "worker",
                        "--queues",
                        queues,
                        "--concurrency",
                        str(concurrency),
                        "--hostname",
                        f"w{index}-{os.getpid()}@%h",
                        "--without-gossip",
                        "--without-mingle",
                        "--loglevel",
                        "WARNING",
                    ],
                    cwd=BASE_DIR,
                    env=environment,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        _wait_until_ready(processes, timeout=ready_timeout)
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        if log is not subprocess.DEVNULL:
            log.close()


def _wait_until_ready(processes: list[subprocess.Popen], *, timeout: float) -> None:
    names = {f"w{index}-{os.getpid()}" for index in range(len(processes))}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [process for process in processes if process.poll() is not None]
        if dead:
            raise RuntimeError(f"a worker exited at start (code {dead[0].returncode})")
        replies = app.control.ping(timeout=0.5) or []
        answered = {name.split("@")[0] for reply in replies for name in reply}
        if names <= answered:
            return
    raise RuntimeError(f"workers did not answer a ping within {timeout:.0f} s")
