"""The options every task is declared with: acks, retries of transient errors only.

Queues are chosen by task name in `config.queues.ROUTES`, so a task sent by name from
any process lands on its stage's queue; time limits are the CELERY_TASK_*_TIME_LIMIT
settings, the same for every task.
"""

from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerError

# The database was briefly unreachable: worth running the task again. Anything else
# is a bug or bad data and fails loudly.
DATABASE_ERRORS = (OperationalError, InterfaceError)
# The broker refused a message the task enqueues.
BROKER_ERRORS = (BrokerError,)


def task_options(
    *,
    retry_on: tuple[type[BaseException], ...] = DATABASE_ERRORS,
    max_retries: int = 5,
    retry_backoff: int = 2,
    retry_backoff_max: int = 60,
    ignore_result: bool = True,
) -> dict:
    """Decorator options for an idempotent task: acknowledged once it has run (a
    worker's death redelivers it), retried with jittered backoff on `retry_on`."""
    return {
        "acks_late": True,
        "reject_on_worker_lost": True,
        "autoretry_for": retry_on,
        "retry_backoff": retry_backoff,
        "retry_backoff_max": retry_backoff_max,
        "retry_jitter": True,
        "max_retries": max_retries,
        "ignore_result": ignore_result,
    }
