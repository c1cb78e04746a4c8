"""Enqueueing a task from a service: by name, once the transaction commits.

Services never import task modules (tasks import services); they name the task. Its
queue comes from `config.queues.ROUTES` by that name. Outside a transaction the task
is sent at once.
"""

from functools import partial

from django.db import transaction

from config.celery import app


def enqueue(name: str, *args, countdown: float | None = None) -> None:
    """Send task `name` with `args` after commit, `countdown` seconds later if set."""
    options = {} if countdown is None else {"countdown": countdown}
    transaction.on_commit(partial(app.send_task, name, args=list(args), **options))
