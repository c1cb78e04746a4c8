"""The Celery queues: one per pipeline stage, so a long batch never starves another."""

from enum import StrEnum


class Queue(StrEnum):
    DEFAULT = "default"
    LAUNCH = "launch"
    EXPAND = "expand"
    SEND = "send"
    RECEIPTS = "receipts"
    AUTOMATIONS = "automations"
    MAINTENANCE = "maintenance"


ALL_QUEUES = ",".join(queue.value for queue in Queue)


# Where each task runs, by name (globs allowed): the stage queues keep a long batch of
# one stage from starving another (receipts keep flowing while sends are busy).
ROUTES = {
    "campaigns.chunk": Queue.LAUNCH,
    "campaigns.enqueue_chunks": Queue.LAUNCH,
    "campaigns.expand_chunk": Queue.EXPAND,
    "messaging.send_batch": Queue.SEND,
    "messaging.poll_receipts": Queue.RECEIPTS,
    "messaging.process_receipts": Queue.RECEIPTS,
    "messaging.finish_dispatch": Queue.RECEIPTS,
    "campaigns.mark_completed": Queue.RECEIPTS,
    "campaigns.mark_paused": Queue.RECEIPTS,
    "automations.*": Queue.AUTOMATIONS,
    "messaging.send_due": Queue.MAINTENANCE,
    "messaging.sweep": Queue.MAINTENANCE,
    "campaigns.sweep": Queue.MAINTENANCE,
    "campaigns.sweep_completion": Queue.MAINTENANCE,
    "campaigns.launch_scheduled": Queue.MAINTENANCE,
    "api.sweep_lead_imports": Queue.MAINTENANCE,
}
