"""Delivery receipts: stored as they come, then applied to logs in batches."""

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from messaging.models import CommunicationLog, DeliveryReceipt, Dispatch, LogStatus
from messaging.services.dispatches import (
    dispatch_counters_add,
    dispatch_finish_if_done,
)
from messaging.sql import (
    bulk_cursor,
    copy_rows,
    insert_ignoring_conflicts,
    update_from_rows,
)
from vendors.base import Receipt, VendorAdapter
from vendors.registry import get_adapter

# Receipts applied per transaction: one read of receipts, one of logs, three writes.
# As many as one expand task sends (campaigns' EXPAND_BATCH_CHUNKS of 200 leads): a
# worker polls about once per task it runs while it sends, so polls of 2,000 fell
# behind tasks of 4,000, and 1,000,000 leads ended with 10.5 s of receipts still to
# apply after the last send (0.1 s with 4,000).
RECEIPT_BATCH_SIZE = 4000
# Sent logs moved to no_receipt per transaction by the receipt timeout, and at
# most per dispatch and run: 100,000 took 6 s on a busy 2-vCPU box.
RECEIPT_TIMEOUT_BATCH_SIZE = 2000
RECEIPT_TIMEOUT_PER_RUN = 100_000
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

    Only a sent log moves: to delivered, or to failed on an undelivered receipt. A
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
        logs = _logs_by_ref((vendor, ref) for _, vendor, ref, *_ in receipts)
        delivered, undelivered, settled = [], [], []
        for pk, vendor, ref, status, error_code in receipts:
            log = logs.get((vendor, ref))
            if log is None:
                settled.append((pk, None, "unmatched"))
                continue
            log_id, _, log_status = log
            if log_status != LogStatus.SENT:
                settled.append((pk, log_id, "already_final"))
            elif status == DeliveryReceipt.Status.DELIVERED:
                delivered.append((log_id, pk))
            else:
                undelivered.append((log_id, pk, error_code or "undelivered"))
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
        applied = set(delivered_ids) | set(undelivered_ids)
        for log_id, pk, *_ in delivered + undelivered:
            settled.append((pk, log_id, "applied" if log_id in applied else "raced"))
        waiting_cutoff = now - unmatched_grace()
        received = dict(
            DeliveryReceipt.objects.filter(
                pk__in=[pk for pk, _, result in settled if result == "unmatched"]
            ).values_list("pk", "received_at")
        )
        to_mark = [
            row
            for row in settled
            if row[2] != "unmatched" or received[row[0]] < waiting_cutoff
        ]
        outcome.waiting = len(settled) - len(to_mark)
        update_from_rows(
            table=_RECEIPT_TABLE,
            columns=[("id", "bigint"), ("log", "bigint"), ("result", "varchar(32)")],
            rows=to_mark,
            assignments="processed_at = %s, log_id = v.log, outcome = v.result",
            params=[now],
        )
        dispatch_of = {log_id: dispatch_id for log_id, dispatch_id, _ in logs.values()}
        per_dispatch_delivered = Counter(dispatch_of[pk] for pk in delivered_ids)
        per_dispatch_failed = Counter(dispatch_of[pk] for pk in undelivered_ids)
        for dispatch_id in per_dispatch_delivered.keys() | per_dispatch_failed.keys():
            dispatch_counters_add(
                dispatch_id=dispatch_id,
                delivered=per_dispatch_delivered[dispatch_id],
                failed=per_dispatch_failed[dispatch_id],
                undelivered=per_dispatch_failed[dispatch_id],
            )
    outcome.processed = len(to_mark)
    outcome.delivered = len(delivered_ids)
    outcome.undelivered = len(undelivered_ids)
    outcome.ignored = outcome.processed - outcome.delivered - outcome.undelivered
    for dispatch_id in per_dispatch_delivered.keys() | per_dispatch_failed.keys():
        if dispatch_finish_if_done(dispatch_id=dispatch_id):
            outcome.finished_dispatches.append(dispatch_id)
    return outcome


def _receipts_insert(rows: list[tuple]) -> list[tuple[bool]]:
    """Insert receipts not stored yet; for each new one, whether it is processed.

    A poll's receipts are new but for a vendor's rare redelivery: COPYed at once
    (two thirds of the database time of the INSERT, which parsed and planned
    2,000 rows' arrays), or, if one exists already, inserted skipping those that do.
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


def _logs_by_ref(refs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple]:
    """(vendor, vendor_ref) -> (log id, dispatch id, status) for the logs sent so.

    Asks by vendor and non-empty ref, the terms of the unique partial index: by ref
    alone Postgres could not use it and scanned the whole log table each batch.
    """
    by_vendor: dict[str, set[str]] = {}
    for vendor, ref in refs:
        by_vendor.setdefault(vendor, set()).add(ref)
    if not by_vendor:
        return {}
    if connection.vendor == "postgresql":
        # The refs as one binary array (an IN list of a thousand quoted literals
        # cost more to build and plan than to run), probed one by one: given
        # `vendor = %s AND vendor_ref = ANY(...)` with stale statistics the planner
        # chose to read every log of the vendor and filter (1.4 s at 600,000 logs,
        # 16 ms probed); OFFSET 0 keeps it from flattening the probe back into that.
        rows = []
        with bulk_cursor() as cursor:
            for vendor, vendor_refs in by_vendor.items():
                cursor.execute(
                    "SELECT log.* FROM unnest(%b::text[]) AS wanted(ref)"
                    " CROSS JOIN LATERAL (SELECT id, dispatch_id, status, vendor,"
                    f" vendor_ref FROM {_LOG_TABLE} WHERE vendor = %s"
                    " AND vendor_ref = wanted.ref AND NOT vendor_ref = ''"
                    " OFFSET 0) AS log",
                    [list(vendor_refs), vendor],
                )
                rows += cursor.fetchall()
        return {(vendor, ref): (pk, d, status) for pk, d, status, vendor, ref in rows}
    match = Q()
    for vendor, vendor_refs in by_vendor.items():
        match |= Q(vendor=vendor, vendor_ref__in=list(vendor_refs))
    rows = (
        CommunicationLog.objects.filter(match)
        .exclude(vendor_ref="")
        .values_list("pk", "dispatch_id", "status", "vendor", "vendor_ref")
    )
    return {(vendor, ref): (pk, d, status) for pk, d, status, vendor, ref in rows}


def receipts_poll(
    *, adapter: VendorAdapter | None = None, limit: int = RECEIPT_BATCH_SIZE
) -> ReceiptOutcome:
    """Take the receipts a queue-delivering vendor has ready, store and apply them."""
    adapter = adapter or get_adapter()
    fetched = adapter.fetch_receipts(limit=limit)
    applied = receipts_apply(vendor=adapter.name, receipts=fetched)
    # Receipts stored earlier and still unapplied (webhooks, early arrivals).
    outcome = receipts_process(limit=limit)
    outcome.stored = applied.stored
    outcome.processed += applied.processed
    outcome.delivered += applied.delivered
    outcome.undelivered += applied.undelivered
    outcome.ignored += applied.ignored
    outcome.waiting += applied.waiting
    outcome.finished_dispatches += applied.finished_dispatches
    return outcome


def receipts_apply(*, vendor: str, receipts: Sequence[Receipt]) -> ReceiptOutcome:
    """Store receipts already applied: logs moved, receipts written processed.

    For receipts in hand (a poll): one read of logs, one write of logs and one of
    receipts, where storing then processing wrote every receipt twice and read it
    back in between. A receipt whose log is not sent yet (it came before the send
    was recorded) is stored unprocessed for receipts_process, as a webhook's is.
    Stored once per (vendor, ref, status) as ever; a duplicate moves nothing, since
    only a log still `sent` moves and each move is counted from the rows written.
    """
    outcome = ReceiptOutcome()
    if not receipts:
        return outcome
    now = timezone.now()
    with transaction.atomic():
        logs = _logs_by_ref((vendor, receipt.vendor_ref) for receipt in receipts)
        moves, movers = {}, {}
        for index, receipt in enumerate(receipts):
            log = logs.get((vendor, receipt.vendor_ref))
            if log is not None and log[2] == LogStatus.SENT and log[0] not in moves:
                movers[index] = log[0]
                delivered = receipt.status == DeliveryReceipt.Status.DELIVERED
                moves[log[0]] = (
                    (log[0], "delivered", "")
                    if delivered
                    else (log[0], "failed", receipt.error_code or "undelivered")
                )
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
        rows = []
        for index, receipt in enumerate(receipts):
            log = logs.get((vendor, receipt.vendor_ref))
            if log is None or log[2] == LogStatus.PROCESSING:
                log_id, result, processed_at = None, "", None
            elif log[0] in moves:
                # The first receipt of a log moves it; a second one in the batch
                # lost to it, as it would have to an earlier batch.
                log_id, processed_at = log[0], now
                mover = movers.get(index) == log[0]
                result = "applied" if mover and log[0] in moved else "raced"
            else:
                log_id, result, processed_at = log[0], "already_final", now
            rows.append(
                _receipt_row(vendor, receipt, received_at=now, outcome=result)
                + (log_id, processed_at)
            )
        inserted = _receipts_insert(rows)
        dispatch_of = {log_id: dispatch_id for log_id, dispatch_id, _ in logs.values()}
        delivered = Counter(
            dispatch_of[pk] for pk in moved if moves[pk][1] == "delivered"
        )
        failed = Counter(dispatch_of[pk] for pk in moved if moves[pk][1] == "failed")
        for dispatch_id in sorted(delivered.keys() | failed.keys()):
            dispatch_counters_add(
                dispatch_id=dispatch_id,
                delivered=delivered[dispatch_id],
                failed=failed[dispatch_id],
                undelivered=failed[dispatch_id],
            )
    outcome.stored = len(inserted)
    outcome.processed = sum(1 for (processed,) in inserted if processed)
    outcome.waiting = len(inserted) - outcome.processed
    outcome.delivered = sum(delivered.values())
    outcome.undelivered = sum(failed.values())
    outcome.ignored = outcome.processed - outcome.delivered - outcome.undelivered
    for dispatch_id in sorted(delivered.keys() | failed.keys()):
        if dispatch_finish_if_done(dispatch_id=dispatch_id):
            outcome.finished_dispatches.append(dispatch_id)
    return outcome


def receipts_time_out(*, now: datetime, limit: int = RECEIPT_TIMEOUT_BATCH_SIZE) -> int:
    """Make final, as `no_receipt`, every sent log whose receipt is overdue.

    Overdue: sent longer ago than MESSAGING_RECEIPT_TIMEOUT_SECONDS. Only the
    dispatches whose counters say they await receipts, and older than the timeout,
    are read; each one's overdue logs are found in one read through the dispatch-led
    unique index (up to RECEIPT_TIMEOUT_PER_RUN; the rest on the next run), then
    moved `limit` a transaction. Each batch is locked SKIP LOCKED and moved only if
    still sent, so a receipt applied meanwhile wins and nothing is counted twice;
    a log skipped as locked is found again next run. Returns how many moved.
    """
    cutoff = now - timedelta(seconds=settings.MESSAGING_RECEIPT_TIMEOUT_SECONDS)
    awaiting = Dispatch.objects.filter(
        created_at__lt=cutoff,
        sent__gt=F("delivered") + F("undelivered") + F("no_receipt"),
    ).values_list("pk", flat=True)
    moved = 0
    for dispatch_id in awaiting:
        overdue = list(
            CommunicationLog.objects.filter(
                dispatch_id=dispatch_id, status=LogStatus.SENT, sent_at__lt=cutoff
            ).values_list("pk", flat=True)[:RECEIPT_TIMEOUT_PER_RUN]
        )
        for start in range(0, len(overdue), limit):
            with transaction.atomic():
                ids = list(
                    CommunicationLog.objects.filter(
                        pk__in=overdue[start : start + limit], status=LogStatus.SENT
                    )
                    .order_by("pk")
                    .select_for_update(skip_locked=True)
                    .values_list("pk", flat=True)
                )
                batch = CommunicationLog.objects.filter(
                    pk__in=ids, status=LogStatus.SENT
                ).update(status=LogStatus.NO_RECEIPT, updated_at=now)
                dispatch_counters_add(dispatch_id=dispatch_id, no_receipt=batch)
            moved += batch
        if overdue:
            dispatch_finish_if_done(dispatch_id=dispatch_id)
    return moved
