"""Reading and losing queued work: the task messages a queue holds, and queued task
messages and simulator receipts removed from Redis the way a lost broker message or
a vendor's lost callback would be."""

import base64
import json

import redis

from config.celery import app
from vendors.simulator_store import DEFAULT_PREFIX


def drop_queued_tasks(
    client: redis.Redis, *, queue: str, names: set[str], args: list
) -> int:
    """Remove queued messages of these tasks with these arguments; return how many.

    Kombu keeps a Redis queue as a list per priority step, the first named after
    the queue; each entry is the message as JSON, its arguments in the base64 body.
    """
    dropped = 0
    for key in client.scan_iter(match=f"{queue}*"):
        if client.type(key) != b"list":
            continue
        for raw in client.lrange(key, 0, -1):
            message = json.loads(raw)
            if message["headers"].get("task") not in names:
                continue
            task_args, _, _ = json.loads(base64.b64decode(message["body"]))
            if list(task_args) == args:
                dropped += client.lrem(key, 1, raw)
    return dropped


def drop_simulator_receipts(client: redis.Redis, *, send_id_prefix: str) -> int:
    """Remove the simulator's queued receipts of these send ids; return how many.

    Each is "<due ms>|<vendor_ref>|<status>|<error_code>|<send_id>" in one sorted set.
    """
    key = f"{DEFAULT_PREFIX}receipts"
    doomed = [
        entry
        for entry in client.zrange(key, 0, -1)
        if entry.decode().rsplit("|", 1)[-1].startswith(send_id_prefix)
    ]
    return client.zrem(key, *doomed) if doomed else 0


def take_queued(queue: str) -> list[tuple[str, list]]:
    """Take every message off the broker's queue; (task name, args) of each, in order.

    Read through kombu with the app's own queue declaration, so it works on Redis
    and RabbitMQ alike.
    """
    taken = []
    with app.connection_for_read() as connection:
        bound = app.amqp.queues[queue](connection.default_channel)
        bound.declare()
        while (message := bound.get(no_ack=True)) is not None:
            args, _, _ = message.decode()
            taken.append((message.headers["task"], list(args)))
    return taken
