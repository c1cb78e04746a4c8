"""Retention deletes old final messages in batches; the counters still reconcile."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from messaging.models import CommunicationLog, DeliveryReceipt, Dispatch, LogStatus
from messaging.services.dispatches import dispatch_reconcile
from messaging.services.retention import messages_purge
from tests.messaging.factories import CommunicationLogFactory, DispatchFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()
OLD = NOW - dt.timedelta(days=40)
CUTOFF = NOW - dt.timedelta(days=30)


def logs_at(dispatch, when, statuses, *, sent=True):
    """Logs of the dispatch, one per status, last changed at `when`."""
    logs = [
        CommunicationLogFactory(
            dispatch=dispatch,
            status=status,
            sent_at=when if sent and status != LogStatus.SKIPPED else None,
            cost=Decimal("0.0075"),
        )
        for status in statuses
    ]
    CommunicationLog.objects.filter(pk__in=[log.pk for log in logs]).update(
        created_at=when, updated_at=when
    )
    return logs


def receipt_for(log, **fields):
    return DeliveryReceipt.objects.create(
        vendor="simulator",
        vendor_ref=f"ref-{log.pk if log else fields.pop('ref')}",
        status=DeliveryReceipt.Status.DELIVERED,
        log=log,
        **fields,
    )


def test_old_final_messages_go_with_their_receipts_and_the_counters_still_add_up():
    # given a dispatch with old final messages, an old one still pending, new ones
    dispatch = DispatchFactory()
    old = logs_at(
        dispatch,
        OLD,
        [
            LogStatus.DELIVERED,
            LogStatus.FAILED,
            LogStatus.SKIPPED,
            LogStatus.CANCELLED,
            LogStatus.NO_RECEIPT,
        ],
    )
    [stuck] = logs_at(dispatch, OLD, [LogStatus.PENDING], sent=False)
    recent = logs_at(dispatch, NOW, [LogStatus.DELIVERED, LogStatus.FAILED])
    for log in [*old, *recent]:
        receipt_for(log)
    dispatch_reconcile(dispatch_id=dispatch.pk, repair=True)
    before = Dispatch.objects.get(pk=dispatch.pk)

    # when retention deletes what is older than the cutoff
    purged = messages_purge(before=CUTOFF, max_logs=1000)

    # then the old final messages and their receipts are gone, the rest stays
    assert (purged.logs, purged.receipts) == (5, 5)
    left = set(CommunicationLog.objects.values_list("pk", flat=True))
    assert left == {stuck.pk, *(log.pk for log in recent)}
    assert DeliveryReceipt.objects.count() == 2
    # and the dispatch's counters are unchanged and still reconcile
    after = Dispatch.objects.get(pk=dispatch.pk)
    assert (after.audience, after.delivered, after.cost) == (
        before.audience,
        before.delivered,
        before.cost,
    )
    assert dispatch_reconcile(dispatch_id=dispatch.pk, repair=False).differences == {}


def test_messages_are_deleted_batch_by_batch_across_dispatches():
    # given old messages in two dispatches, more than one batch of them
    first, second = DispatchFactory(), DispatchFactory()
    logs_at(first, OLD, [LogStatus.DELIVERED] * 3)
    logs_at(second, OLD, [LogStatus.FAILED] * 4)
    for dispatch in (first, second):
        dispatch_reconcile(dispatch_id=dispatch.pk, repair=True)

    # when they are deleted two at a time
    purged = messages_purge(before=CUTOFF, max_logs=1000, batch_size=2)

    # then every one is gone, and each dispatch still reconciles
    assert purged.logs == 7
    assert not CommunicationLog.objects.exists()
    for dispatch in (first, second):
        assert (
            dispatch_reconcile(dispatch_id=dispatch.pk, repair=False).differences == {}
        )


def test_a_run_stops_at_its_limit_and_the_next_goes_on():
    # given five old messages
    dispatch = DispatchFactory()
    logs_at(dispatch, OLD, [LogStatus.DELIVERED] * 5)

    # when a run may delete three, then another runs
    first = messages_purge(before=CUTOFF, max_logs=3, batch_size=1)
    second = messages_purge(before=CUTOFF, max_logs=3, batch_size=1)

    # then the first stops at three and the second takes the rest
    assert (first.logs, second.logs) == (3, 2)
    assert not CommunicationLog.objects.exists()


def test_a_message_changed_recently_is_kept_whenever_it_was_created():
    # given an old message whose receipt came after the cutoff
    dispatch = DispatchFactory()
    [log] = logs_at(dispatch, OLD, [LogStatus.DELIVERED])
    CommunicationLog.objects.filter(pk=log.pk).update(updated_at=NOW)

    # when retention runs
    purged = messages_purge(before=CUTOFF, max_logs=1000)

    # then it is kept
    assert purged.logs == 0
    assert CommunicationLog.objects.filter(pk=log.pk).exists()


def test_unmatched_receipts_older_than_the_cutoff_are_deleted():
    # given a receipt that never found its message, an old one and a recent one
    old = receipt_for(None, ref="lost-old")
    recent = receipt_for(None, ref="lost-new")
    DeliveryReceipt.objects.filter(pk=old.pk).update(received_at=OLD)

    # when retention runs
    purged = messages_purge(before=CUTOFF, max_logs=1000)

    # then only the old one is gone
    assert purged.receipts == 1
    assert list(DeliveryReceipt.objects.values_list("pk", flat=True)) == [recent.pk]
