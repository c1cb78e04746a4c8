"""Delivery receipts: stored as they come, then applied to logs in batches."""

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from messaging.models import CommunicationLog, DeliveryReceipt, LogStatus
from messaging.selectors import SentLog, logs_sent_by_ref
from messaging.services.dispatches import (
    dispatch_counters_add,
    dispatch_finish_if_done,
)
from messaging.services.suppressing import logs_suppress_recipients
from messaging.sql import (
    copy_rows,
    insert_ignoring_conflicts,
    update_from_rows,
)
from vendors.base import Receipt, VendorAdapter
from vendors.registry import receipt_sources

# Receipts applied per transaction: one read of receipts, one of logs, three writes.
# As many as one expand task sends (EXPAND_BATCH_CHUNKS of 200 leads), so polls keep
# up with the sends (docs/performance.md).
RECEIPT_BATCH_SIZE = 4000
# Beyond the stuck-claim delay, what an early receipt waits for its resend: the
# sweeper's minute, the dispatcher's 10 s and the resend itself, with room to spare.
RESEND_MARGIN = timedelta(minutes=10)
_LOG_TABLE = CommunicationLog._meta.db_table
_RECEIPT_TABLE = DeliveryReceipt._meta.db_table
_RECEIPT_COLUMNS = (
    "vendor",
    "vendor_ref",
    "status",
    "error_code",
    "raw",
    "occurred_at",
    "received_at",
    "outcome",
)
# json.dumps(raw, default=str) builds a new encoder per call when given any option;
# one encoder with the same options writes the same text for a receipt at a time.
_raw_json = json.JSONEncoder(default=str).encode


def unmatched_grace() -> timedelta:
    """How long a receipt waits for its log to be recorded sent before it is set aside.

    A receipt can come before the send that it answers is recorded (the vendor is
    fast, our commit is not), and for a worker that died after the vendor accepted
    its batch, not until the sweeper has released the claim (after
    MESSAGING_STUCK_AFTER_SECONDS) and the log is sent again under the same send id,
    to which the vendor answers with its first acceptance and no second receipt.
    So the wait outlasts the release.
    """
    return timedelta(seconds=settings.MESSAGING_STUCK_AFTER_SECONDS) + RESEND_MARGIN


@dataclass
class ReceiptOutcome:
    stored: int = 0
    processed: int = 0
    delivered: int = 0
    undelivered: int = 0
    ignored: int = 0
    waiting: int = 0
    finished_dispatches: list[int] = field(default_factory=list)


def receipts_store(*, vendor: str, receipts: Sequence[Receipt]) -> int:
    """Keep each receipt once, as the vendor sent it; return how many were new."""
    now = timezone.now()
    rows = [_receipt_row(vendor, receipt, received_at=now) for receipt in receipts]
    inserted = insert_ignoring_conflicts(
        table=_RECEIPT_TABLE,
        columns=_RECEIPT_COLUMNS,
        rows=rows,
        returning="id",
    )
    return len(inserted)


def _receipt_row(
    vendor: str, receipt: Receipt, *, received_at: datetime, outcome: str = ""
) -> tuple:
    """A receipt as stored: the values of _RECEIPT_COLUMNS."""
    return (
        vendor,
        receipt.vendor_ref,
        receipt.status,
        receipt.error_code or "",
        _raw_json(receipt.raw),
        receipt.occurred_at,
        received_at,
        outcome,
    )


def receipts_process(*, limit: int = RECEIPT_BATCH_SIZE) -> ReceiptOutcome:
    """Apply stored, unprocessed receipts to their logs.

    Only a sent log moves: to delivered, or to failed on an undelivered receipt,
    whose error code may suppress the recipient (logs_suppress_recipients). A
    receipt for a log already final (a duplicate, or one out of order) is marked
    processed and changes nothing, so it is never counted twice.
    """
    outcome = ReceiptOutcome()
    now = timezone.now()
    with transaction.atomic():
        receipts = list(
            DeliveryReceipt.objects.filter(processed_at__isnull=True)
            .order_by("pk")
            .select_for_update(skip_locked=True)
            .values_list("pk", "vendor", "vendor_ref", "status", "error_code")[:limit]
        )
        if not receipts:
            return outcome
        logs = logs_sent_by_ref((vendor, ref) for _, vendor, ref, *_ in receipts)
        delivered, undelivered, settled = _sort_stored(receipts, logs)
        delivered_ids = update_from_rows(
            table=_LOG_TABLE,
            columns=[("id", "bigint"), ("receipt", "bigint")],
            rows=delivered,
            assignments="status = 'delivered', delivered_at = %s, updated_at = %s",
            condition="t.status = 'sent'",
            params=[now, now],
        )
        undelivered_ids = update_from_rows(
            table=_LOG_TABLE,
            columns=[("id", "bigint"), ("receipt", "bigint"), ("code", "varchar(64)")],
            rows=undelivered,
            assignments=(
                "status = 'failed', error_code = v.code, failed_at = %s,"
                " updated_at = %s"
            ),
            condition="t.status = 'sent'",
            params=[now, now],
        )
        vendor_of = {pk: vendor for pk, vendor, *_ in receipts}
        failed_ids = set(undelivered_ids)
        logs_suppress_recipients(
            failures=[
                (log_id, vendor_of[pk], code)
                for log_id, pk, code in undelivered
                if log_id in failed_ids
            ]
        )
        applied = set(delivered_ids) | failed_ids
        for log_id, pk, *_ in delivered + undelivered:
            settled.append((pk, log_id, "applied" if log_id in applied else "raced"))
        to_mark = _settled_to_mark(settled, now=now)
        outcome.waiting = len(settled) - len(to_mark)
        update_from_rows(
            table=_RECEIPT_TABLE,
            columns=[("id", "bigint"), ("log", "bigint"), ("result", "varchar(32)")],
            rows=to_mark,
            assignments="processed_at = %s, log_id = v.log, outcome = v.result",
            params=[now],
        )
        touched = _counters_add(logs, delivered=delivered_ids, failed=undelivered_ids)
    outcome.processed = len(to_mark)
    return _ending(outcome, touched, delivered=delivered_ids, failed=undelivered_ids)


def _sort_stored(
    receipts: list[tuple], logs: dict[tuple[str, str], SentLog]
) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Stored receipts as the moves they make: (log, receipt) to deliver, (log,
    receipt, code) to fail, and (receipt, log, result) settled without a move."""
    delivered, undelivered, settled = [], [], []
    for pk, vendor, ref, status, error_code in receipts:
        log = logs.get((vendor, ref))
        if log is None:
            settled.append((pk, None, "unmatched"))
        elif log.status != LogStatus.SENT:
            settled.append((pk, log.id, "already_final"))
        elif status == DeliveryReceipt.Status.DELIVERED:
            delivered.append((log.id, pk))
        else:
            undelivered.append((log.id, pk, error_code or "undelivered"))
    return delivered, undelivered, settled


def _settled_to_mark(settled: list[tuple], *, now: datetime) -> list[tuple]:
    """The settled receipts to mark processed: all but the unmatched still within
    their grace (unmatched_grace), which wait for their log."""
    waiting_cutoff = now - unmatched_grace()
    received = dict(
        DeliveryReceipt.objects.filter(
            pk__in=[pk for pk, _, result in settled if result == "unmatched"]
        ).values_list("pk", "received_at")
    )
    return [
        row
        for row in settled
        if row[2] != "unmatched" or received[row[0]] < waiting_cutoff
    ]


def _counters_add(
    logs: dict[tuple[str, str], SentLog],
    *,
    delivered: Iterable[int],
    failed: Iterable[int],
) -> list[int]:
    """Count the logs moved onto their dispatches, inside the transaction that moved
    them; the dispatches so moved, in id order."""
    dispatch_of = {log.id: log.dispatch_id for log in logs.values()}
    per_delivered = Counter(dispatch_of[pk] for pk in delivered)
    per_failed = Counter(dispatch_of[pk] for pk in failed)
    touched = sorted(per_delivered.keys() | per_failed.keys())
    for dispatch_id in touched:
        dispatch_counters_add(
            dispatch_id=dispatch_id,
            delivered=per_delivered[dispatch_id],
            failed=per_failed[dispatch_id],
            undelivered=per_failed[dispatch_id],
        )
    return touched


def _ending(
    outcome: ReceiptOutcome,
    touched: list[int],
    *,
    delivered: Sequence[int],
    failed: Sequence[int],
) -> ReceiptOutcome:
    """After commit: the outcome's counts, and the finish check of each dispatch
    whose logs moved (`outcome.processed` already set)."""
    outcome.delivered = len(delivered)
    outcome.undelivered = len(failed)
    outcome.ignored = outcome.processed - outcome.delivered - outcome.undelivered
    for dispatch_id in touched:
        if dispatch_finish_if_done(dispatch_id=dispatch_id):
            outcome.finished_dispatches.append(dispatch_id)
    return outcome


def _receipts_insert(rows: list[tuple]) -> list[tuple[bool]]:
    """Insert receipts not stored yet; for each new one, whether it is processed.

    A poll's receipts are new but for a vendor's rare redelivery: COPYed at once
    (two thirds of the database time of an INSERT, which parses and plans the
    rows' arrays), or, if one exists already, inserted skipping those that do.
    """
    columns = _RECEIPT_COLUMNS + ("log_id", "processed_at")
    if connection.vendor == "postgresql" and copy_rows(
        table=_RECEIPT_TABLE, columns=columns, rows=rows
    ):
        return [(row[-1] is not None,) for row in rows]
    return insert_ignoring_conflicts(
        table=_RECEIPT_TABLE,
        columns=columns,
        rows=rows,
        returning="processed_at IS NOT NULL",
    )


def receipts_poll(
    *, adapter: VendorAdapter | None = None, limit: int = RECEIPT_BATCH_SIZE
) -> ReceiptOutcome:
    """Take the receipts queue-delivering vendors have ready, store and apply them.

    Without an adapter, every vendor that sends for someone is asked: the default
    and those of the organizations' accounts (vendors.registry.receipt_sources).
    """
    sources = [adapter] if adapter is not None else receipt_sources()
    applied = [
        receipts_apply(vendor=source.name, receipts=source.fetch_receipts(limit=limit))
        for source in sources
    ]
    # Receipts stored earlier and still unapplied (webhooks, early arrivals).
    outcome = receipts_process(limit=limit)
    for one in applied:
        outcome.stored += one.stored
        outcome.processed += one.processed
        outcome.delivered += one.delivered
        outcome.undelivered += one.undelivered
        outcome.ignored += one.ignored
        outcome.waiting += one.waiting
        outcome.finished_dispatches += one.finished_dispatches
    return outcome


def receipts_apply(*, vendor: str, receipts: Sequence[Receipt]) -> ReceiptOutcome:
    """Store receipts already applied: logs moved, receipts written processed.

    For receipts in hand (a poll): one read of logs, one write of logs and one of
    receipts, where storing then processing would write every receipt twice and
    read it back in between. A receipt whose log is not sent yet (it came before the
    send was recorded) is stored unprocessed for receipts_process, as a webhook's
    is. Stored once per (vendor, ref, status); a duplicate moves nothing, since only
    a log still `sent` moves and each move is counted from the rows written.
    """
    outcome = ReceiptOutcome()
    if not receipts:
        return outcome
    now = timezone.now()
    with transaction.atomic():
        logs = logs_sent_by_ref((vendor, receipt.vendor_ref) for receipt in receipts)
        moves, movers = _first_moves(vendor, receipts, logs)
        moved = set(
            update_from_rows(
                table=_LOG_TABLE,
                columns=[("id", "bigint"), ("status", "varchar(12)")]
                + [("code", "varchar(64)")],
                rows=list(moves.values()),
                assignments=(
                    "status = v.status,"
                    " error_code = CASE WHEN v.status = 'failed' THEN v.code"
                    " ELSE t.error_code END,"
                    " delivered_at = CASE WHEN v.status = 'delivered' THEN %s"
                    " ELSE t.delivered_at END,"
                    " failed_at = CASE WHEN v.status = 'failed' THEN %s"
                    " ELSE t.failed_at END,"
                    " updated_at = %s"
                ),
                condition="t.status = 'sent'",
                params=[now, now, now],
            )
        )
        rows = _applied_rows(vendor, receipts, logs, moves, movers, moved, now=now)
        inserted = _receipts_insert(rows)
        delivered = [pk for pk in moved if moves[pk][1] == "delivered"]
        failed = [pk for pk in moved if moves[pk][1] == "failed"]
        logs_suppress_recipients(failures=[(pk, vendor, moves[pk][2]) for pk in failed])
        touched = _counters_add(logs, delivered=delivered, failed=failed)
    outcome.stored = len(inserted)
    outcome.processed = sum(1 for (processed,) in inserted if processed)
    outcome.waiting = len(inserted) - outcome.processed
    return _ending(outcome, touched, delivered=delivered, failed=failed)


def _first_moves(
    vendor: str, receipts: Sequence[Receipt], logs: dict[tuple[str, str], SentLog]
) -> tuple[dict[int, tuple], dict[int, int]]:
    """The move each sent log's first receipt in the batch makes: (log, status,
    code) by log id, and the log each moving receipt (by index) moves."""
    moves, movers = {}, {}
    for index, receipt in enumerate(receipts):
        log = logs.get((vendor, receipt.vendor_ref))
        if log is not None and log.status == LogStatus.SENT and log.id not in moves:
            movers[index] = log.id
            delivered = receipt.status == DeliveryReceipt.Status.DELIVERED
            moves[log.id] = (
                (log.id, "delivered", "")
                if delivered
                else (log.id, "failed", receipt.error_code or "undelivered")
            )
    return moves, movers


def _applied_rows(
    vendor: str,
    receipts: Sequence[Receipt],
    logs: dict[tuple[str, str], SentLog],
    moves: dict[int, tuple],
    movers: dict[int, int],
    moved: set[int],
    *,
    now: datetime,
) -> list[tuple]:
    """Each receipt as stored, with its log, whether processed and with what result."""
    rows = []
    for index, receipt in enumerate(receipts):
        log = logs.get((vendor, receipt.vendor_ref))
        if log is None or log.status == LogStatus.PROCESSING:
            log_id, result, processed_at = None, "", None
        elif log.id in moves:
            # The first receipt of a log moves it; a second one in the batch
            # lost to it, as it would have to an earlier batch.
            log_id, processed_at = log.id, now
            mover = movers.get(index) == log.id
            result = "applied" if mover and log.id in moved else "raced"
        else:
            log_id, result, processed_at = log.id, "already_final", now
        rows.append(
            _receipt_row(vendor, receipt, received_at=now, outcome=result)
            + (log_id, processed_at)
        )
    return rows
