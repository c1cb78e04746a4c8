"""Recovery: a dead worker's claim is finished by the sweeper, failed sends retried."""

from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.models import LogStatus
from messaging.services.receipts import receipts_process, receipts_store
from messaging.services.recovery import logs_release_stuck, logs_retry_failed
from messaging.services.sending import logs_claim, send_due
from tests.messaging.factories import DispatchFactory
from tests.support.messaging import assert_counters_match_logs, pending_logs
from tests.support.scripted_vendor import ScriptedVendor, accept, fail
from vendors.base import Receipt

pytestmark = pytest.mark.django_db


def test_fresh_claims_are_not_released():
    dispatch = DispatchFactory()
    pending_logs(dispatch, 2)
    logs_claim(dispatch_id=dispatch.pk, limit=10, now=timezone.now())

    assert logs_release_stuck(older_than=timedelta(minutes=10)) == 0


def test_claims_older_than_the_timeout_go_back_to_pending_and_are_sent():
    dispatch = DispatchFactory()
    pending_logs(dispatch, 3)
    logs_claim(dispatch_id=dispatch.pk, limit=10, now=timezone.now())
    dispatch.logs.update(claimed_at=timezone.now() - timedelta(hours=1))

    released = logs_release_stuck(older_than=timedelta(minutes=10))
    outcome = send_due(dispatch_id=dispatch.pk, adapter=ScriptedVendor(accept))

    assert (released, outcome.sent) == (3, 3)
    assert set(dispatch.logs.values_list("status", "attempts")) == {("sent", 2)}
    assert_counters_match_logs(dispatch)


def test_retry_failed_queues_failed_messages_with_a_fresh_attempt_count():
    dispatch = DispatchFactory()
    (log,) = pending_logs(dispatch, 1)
    send_due(
        dispatch_id=dispatch.pk,
        adapter=ScriptedVendor(fail("spam_detected", retryable=False)),
    )

    retried = logs_retry_failed(dispatch_ids=[dispatch.pk])
    send_due(dispatch_id=dispatch.pk, adapter=ScriptedVendor(accept))

    log.refresh_from_db()
    assert (retried, log.status, log.attempts) == (1, LogStatus.SENT, 1)
    assert_counters_match_logs(dispatch)


def test_retrying_an_undelivered_message_gives_it_a_new_send_id():
    dispatch = DispatchFactory()
    (log,) = pending_logs(dispatch, 1)
    send_due(dispatch_id=dispatch.pk, adapter=ScriptedVendor(accept))
    log.refresh_from_db()
    receipts_store(
        vendor="scripted",
        receipts=[
            Receipt(
                vendor_ref=log.vendor_ref,
                status="UNDELIVERED",
                error_code="handset_unreachable",
                occurred_at=timezone.now(),
                raw={},
            )
        ],
    )
    receipts_process()
    old_send_id = log.send_id

    logs_retry_failed(dispatch_ids=[dispatch.pk])

    log.refresh_from_db()
    assert log.send_id != old_send_id
    assert (log.status, log.sent_at, log.vendor_ref) == (LogStatus.PENDING, None, "")
    assert_counters_match_logs(dispatch)
