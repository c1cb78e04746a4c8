"""Delivery receipts: stored as they come, then applied to logs in batches."""

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from messaging.models import CommunicationLog, DeliveryReceipt, LogStatus
from messaging.services.dispatches import (
    dispatch_counters_add,
    dispatch_finish_if_done,
)
from messaging.sql import insert_ignoring_conflicts, update_from_rows
from vendors.base import Receipt, VendorAdapter
from vendors.registry import get_adapter

# Receipts applied per transaction: one read of receipts, one of logs, three writes.
RECEIPT_BATCH_SIZE = 1000
# A receipt can come before the send that it answers is recorded (the vendor is fast,
# our commit is not); it waits this long for its log before it is set aside.
UNMATCHED_GRACE = timedelta(minutes=10)
_LOG_TABLE = CommunicationLog._meta.db_table
_RECEIPT_TABLE = DeliveryReceipt._meta.db_table


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
    rows = [
        (
            vendor,
            receipt.vendor_ref,
            receipt.status,
            receipt.error_code or "",
            json.dumps(receipt.raw, default=str),
            receipt.occurred_at,
            now,
            "",
        )
        for receipt in receipts
    ]
    inserted = insert_ignoring_conflicts(
        table=_RECEIPT_TABLE,
        columns=(
            "vendor",
            "vendor_ref",
            "status",
            "error_code",
            "raw",
            "occurred_at",
            "received_at",
            "outcome",
        ),
        rows=rows,
        returning="id",
    )
    return len(inserted)


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
        logs = {
            (vendor, ref): (pk, dispatch_id, status)
            for pk, dispatch_id, status, vendor, ref in CommunicationLog.objects.filter(
                vendor_ref__in={receipt[2] for receipt in receipts}
            ).values_list("pk", "dispatch_id", "status", "vendor", "vendor_ref")
        }
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
        waiting_cutoff = now - UNMATCHED_GRACE
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
            )
    outcome.processed = len(to_mark)
    outcome.delivered = len(delivered_ids)
    outcome.undelivered = len(undelivered_ids)
    outcome.ignored = outcome.processed - outcome.delivered - outcome.undelivered
    for dispatch_id in per_dispatch_delivered.keys() | per_dispatch_failed.keys():
        if dispatch_finish_if_done(dispatch_id=dispatch_id):
            outcome.finished_dispatches.append(dispatch_id)
    return outcome


def receipts_poll(
    *, adapter: VendorAdapter | None = None, limit: int = RECEIPT_BATCH_SIZE
) -> ReceiptOutcome:
    """Take the receipts a queue-delivering vendor has ready, store and apply them."""
    adapter = adapter or get_adapter()
    fetched = adapter.fetch_receipts(limit=limit)
    stored = receipts_store(vendor=adapter.name, receipts=fetched)
    outcome = receipts_process(limit=limit)
    outcome.stored = stored
    return outcome
