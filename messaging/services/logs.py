"""Creating logs: one per message, idempotent on (dispatch, dedupe key)."""

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from messaging.models import CommunicationLog, LogStatus
from messaging.services.dispatches import dispatch_counters_add
from messaging.sql import insert_ignoring_conflicts

_INSERT_COLUMNS = (
    "dispatch_id",
    "lead_id",
    "dedupe_key",
    "send_id",
    "channel",
    "recipient",
    "subject",
    "body",
    "status",
    "skip_reason",
    "attempts",
    "next_attempt_at",
    "vendor",
    "vendor_ref",
    "error_code",
    "error_message",
    "cost",
    "created_at",
    "updated_at",
)


@dataclass(frozen=True)
class NewLog:
    """A message to create; a non-empty `skip_reason` records it as skipped instead."""

    lead_id: int | None
    dedupe_key: str
    send_id: str
    recipient: str
    body: str
    subject: str = ""
    skip_reason: str = ""


@dataclass(frozen=True)
class CreatedLogs:
    pending: int
    skipped: int


def new_send_id(*, scope: object, key: object) -> str:
    """`send-<scope>-<key>-<epoch ms>-<6 random>`: unique, and readable at a vendor."""
    return f"send-{scope}-{key}-{int(time.time() * 1000)}-{secrets.token_hex(3)}"


def logs_create(
    *, dispatch_id: int, channel: str, logs: Sequence[NewLog]
) -> CreatedLogs:
    """Insert the logs that do not exist yet and count them onto the dispatch.

    Existing logs (a rerun, a redelivered task) are left exactly as they are: their
    send id, message and state stand.
    """
    now = timezone.now()
    rows = [
        (
            dispatch_id,
            log.lead_id,
            log.dedupe_key,
            log.send_id,
            channel,
            log.recipient,
            log.subject,
            log.body,
            LogStatus.SKIPPED if log.skip_reason else LogStatus.PENDING,
            log.skip_reason,
            0,
            None if log.skip_reason else now,
            "",
            "",
            "",
            "",
            0,
            now,
            now,
        )
        for log in logs
    ]
    with transaction.atomic():
        inserted = insert_ignoring_conflicts(
            table=CommunicationLog._meta.db_table,
            columns=_INSERT_COLUMNS,
            rows=rows,
            returning="status",
        )
        skipped = sum(1 for (status,) in inserted if status == LogStatus.SKIPPED)
        pending = len(inserted) - skipped
        dispatch_counters_add(
            dispatch_id=dispatch_id,
            audience=len(inserted),
            pending=pending,
            skipped=skipped,
        )
    return CreatedLogs(pending=pending, skipped=skipped)


def logs_cancel_pending(*, dispatch_id: int, dedupe_keys: Sequence[str]) -> int:
    """Cancel these logs if no worker has picked them up yet; return how many.

    For an owner whose reason to send is gone (a reminder of a cancelled
    appointment, a dunning notice of a paid invoice). A log being sent right now is
    left to finish: the vendor may already have it.
    """
    if not dedupe_keys:
        return 0
    with transaction.atomic():
        cancelled = CommunicationLog.objects.filter(
            dispatch_id=dispatch_id,
            dedupe_key__in=list(dedupe_keys),
            status=LogStatus.PENDING,
        ).update(
            status=LogStatus.CANCELLED,
            next_attempt_at=None,
            updated_at=timezone.now(),
        )
        dispatch_counters_add(
            dispatch_id=dispatch_id, pending=-cancelled, cancelled=cancelled
        )
    return cancelled
