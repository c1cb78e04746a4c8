"""Receipts: stored once, applied in batches, never moving a final state backwards."""

from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.models import CommunicationLog, DeliveryReceipt, Dispatch, LogStatus
from messaging.services.dispatches import dispatch_expect
from messaging.services.receipts import (
    receipts_apply,
    receipts_process,
    receipts_store,
)
from messaging.services.sending import send_due
from tests.messaging.factories import DispatchFactory
from tests.support.messaging import assert_counters_match_logs, pending_logs
from tests.support.scripted_vendor import ScriptedVendor, accept
from vendors.base import Receipt

pytestmark = pytest.mark.django_db


def sent_logs(count: int):
    dispatch = DispatchFactory()
    logs = pending_logs(dispatch, count)
    send_due(dispatch_id=dispatch.pk, adapter=ScriptedVendor(accept))
    return dispatch, [CommunicationLog.objects.get(pk=log.pk) for log in logs]


def receipt(log, status="DELIVERED", error_code=None) -> Receipt:
    return Receipt(
        vendor_ref=log.vendor_ref,
        status=status,
        error_code=error_code,
        occurred_at=timezone.now(),
        raw={"ref": log.vendor_ref, "status": status},
    )


def test_delivered_receipt_marks_the_log_delivered_and_counts_it():
    dispatch, (log,) = sent_logs(1)

    receipts_store(vendor="scripted", receipts=[receipt(log)])
    outcome = receipts_process()

    log.refresh_from_db()
    assert (outcome.delivered, log.status) == (1, LogStatus.DELIVERED)
    assert log.delivered_at is not None
    stored = DeliveryReceipt.objects.get()
    assert (stored.log_id, stored.outcome, stored.raw["status"]) == (
        log.pk,
        "applied",
        "DELIVERED",
    )
    assert_counters_match_logs(dispatch)


def test_undelivered_receipt_fails_the_log_with_the_reason():
    dispatch, (log,) = sent_logs(1)

    receipts_store(
        vendor="scripted", receipts=[receipt(log, "UNDELIVERED", "carrier_rejected")]
    )
    receipts_process()

    log.refresh_from_db()
    assert (log.status, log.error_code) == (LogStatus.FAILED, "carrier_rejected")
    dispatch.refresh_from_db()
    assert (dispatch.sent, dispatch.failed, dispatch.delivered) == (1, 1, 0)
    assert_counters_match_logs(dispatch)


def test_a_dispatch_completes_once_every_sent_message_has_its_receipt():
    dispatch, (delivered, undelivered) = sent_logs(2)
    dispatch_expect(dispatch_id=dispatch.pk, audience=2)

    receipts_store(vendor="scripted", receipts=[receipt(delivered)])
    receipts_process()
    dispatch.refresh_from_db()
    assert dispatch.status == Dispatch.Status.ACTIVE  # one still awaits its receipt

    receipts_store(
        vendor="scripted", receipts=[receipt(undelivered, "UNDELIVERED", "blocked")]
    )
    receipts_process()
    dispatch.refresh_from_db()
    assert dispatch.status == Dispatch.Status.COMPLETED
    assert (dispatch.delivered, dispatch.failed, dispatch.undelivered) == (1, 1, 1)
    assert_counters_match_logs(dispatch)


def test_duplicate_receipt_is_stored_once_and_counted_once():
    dispatch, (log,) = sent_logs(1)

    first = receipts_store(vendor="scripted", receipts=[receipt(log)])
    receipts_process()
    second = receipts_store(vendor="scripted", receipts=[receipt(log), receipt(log)])
    receipts_process()

    assert (first, second) == (1, 0)
    dispatch.refresh_from_db()
    assert dispatch.delivered == 1
    assert_counters_match_logs(dispatch)


def test_late_contradicting_receipt_never_moves_a_final_state():
    dispatch, (log,) = sent_logs(1)
    receipts_store(vendor="scripted", receipts=[receipt(log, "DELIVERED")])
    receipts_process()

    receipts_store(vendor="scripted", receipts=[receipt(log, "UNDELIVERED", "late")])
    outcome = receipts_process()

    log.refresh_from_db()
    assert (log.status, outcome.ignored) == (LogStatus.DELIVERED, 1)
    assert DeliveryReceipt.objects.get(status="UNDELIVERED").outcome == "already_final"
    assert_counters_match_logs(dispatch)


def test_receipt_before_its_send_is_recorded_waits_for_the_log():
    early = Receipt(
        vendor_ref="ref-unknown",
        status="DELIVERED",
        error_code=None,
        occurred_at=timezone.now(),
        raw={},
    )
    receipts_store(vendor="scripted", receipts=[early])

    outcome = receipts_process()

    assert outcome.waiting == 1
    assert DeliveryReceipt.objects.get().processed_at is None


def test_unmatched_receipt_is_set_aside_after_the_grace_period():
    early = Receipt(
        vendor_ref="ref-unknown",
        status="DELIVERED",
        error_code=None,
        occurred_at=timezone.now(),
        raw={},
    )
    receipts_store(vendor="scripted", receipts=[early])
    DeliveryReceipt.objects.update(received_at=timezone.now() - timedelta(hours=1))

    receipts_process()

    assert DeliveryReceipt.objects.get().outcome == "unmatched"


def test_a_poll_redelivering_a_stored_receipt_stores_and_counts_only_new_ones():
    dispatch, logs = sent_logs(3)
    receipts_apply(vendor="scripted", receipts=[receipt(logs[0])])

    again = receipts_apply(vendor="scripted", receipts=[receipt(log) for log in logs])

    assert (again.stored, again.delivered) == (2, 2)
    stored = DeliveryReceipt.objects.filter(log__dispatch=dispatch).order_by("log_id")
    assert [(r.log_id, r.outcome, r.raw) for r in stored] == [
        (log.pk, "applied", {"ref": log.vendor_ref, "status": "DELIVERED"})
        for log in logs
    ]
    dispatch.refresh_from_db()
    assert dispatch.delivered == 3
    assert_counters_match_logs(dispatch)
