"""The event-like Prometheus metrics, observed where the events happen (workers).

With PROMETHEUS_MULTIPROC_DIR set (before this module is first imported), every
process writes its observations to files there and /metrics adds them up, so the
numbers are right across gunicorn's and Celery's many processes. State-like numbers
(messages by status, queue depths, campaigns) are read at scrape time instead
(api.metrics). One observation per vendor call and per task, never per message.
"""

import os
import socket

from prometheus_client import Counter, Histogram, values

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Containers sharing the directory reuse the same pids: the host name keeps
    # each process's files its own.
    _HOST = socket.gethostname().replace("_", "-")
    values.ValueClass = values.MultiProcessValue(lambda: f"{_HOST}-{os.getpid()}")

VENDOR_REQUEST_SECONDS = Histogram(
    "crm_vendor_request_seconds",
    "Duration of one vendor call (a batch of messages), by vendor and outcome.",
    ["vendor", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
VENDOR_ERRORS = Counter(
    "crm_vendor_errors",
    "Messages a vendor refused or could not take, by vendor and error code.",
    ["vendor", "code"],
)
TASK_RUNTIME_SECONDS = Histogram(
    "crm_task_runtime_seconds",
    "Duration of one Celery task run, by task name and final state.",
    ["task", "state"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
