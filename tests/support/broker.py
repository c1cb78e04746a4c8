"""Losing things on purpose: queued task messages and simulator receipts, removed
from Redis the way a lost broker message or a vendor's lost callback would be."""

import base64
import json

import redis

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
