"""Creating logs: written at once, and idempotent on (dispatch, dedupe key)."""

import threading
import time

import pytest
from django.db import connection, connections, transaction

from crm.models import Lead
from messaging.models import LogStatus
from messaging.services.dispatches import dispatch_count_logs
from messaging.services.logs import NewLog, logs_create
from tests.crm.factories import LeadFactory
from tests.messaging.factories import DispatchFactory
from tests.support.messaging import new_logs

pytestmark = pytest.mark.django_db


def test_a_batch_mixing_existing_and_new_logs_creates_only_the_new_ones():
    dispatch = DispatchFactory()
    leads = LeadFactory.create_batch(4, organization=dispatch.organization)
    logs_create(
        dispatch_id=dispatch.pk,
        channel=dispatch.channel,
        logs=new_logs(dispatch, leads[:2]),
    )
    before = {
        log.dedupe_key: (log.pk, log.send_id, log.body) for log in dispatch.logs.all()
    }

    created = logs_create(
        dispatch_id=dispatch.pk,
        channel=dispatch.channel,
        logs=new_logs(dispatch, leads, body="Again"),
        claim=True,
    )

    assert (created.pending, created.skipped) == (2, 0)
    assert sorted(log.lead_id for _, log in created.claimed) == sorted(
        lead.pk for lead in leads[2:]
    )
    logs = {log.dedupe_key: log for log in dispatch.logs.all()}
    assert len(logs) == 4
    for key, (pk, send_id, body) in before.items():
        assert (logs[key].pk, logs[key].send_id, logs[key].body) == (pk, send_id, body)
        assert logs[key].status == LogStatus.PENDING
    for pk, log in created.claimed:
        stored = logs[log.dedupe_key]
        assert (stored.pk, stored.status, stored.body) == (
            pk,
            LogStatus.PROCESSING,
            log.body,
        )
    dispatch.refresh_from_db()
    counted = dispatch_count_logs(dispatch_id=dispatch.pk)
    assert {name: getattr(dispatch, name) for name in counted} == counted


def test_created_logs_keep_every_value_they_were_given():
    dispatch = DispatchFactory()
    lead = LeadFactory(organization=dispatch.organization)
    [log] = new_logs(dispatch, [lead], body="Prix: 10 € — ok")
    skipped = NewLog(None, "gone", "send-x-gone", "", "", skip_reason="lead_deleted")

    created = logs_create(
        dispatch_id=dispatch.pk,
        channel=dispatch.channel,
        logs=[log, skipped],
        claim=True,
    )

    [(pk, _)] = created.claimed
    stored = dispatch.logs.get(pk=pk)
    assert (stored.lead_id, stored.send_id, stored.recipient, stored.body) == (
        lead.pk,
        log.send_id,
        lead.phone,
        log.body,
    )
    assert (stored.attempts, stored.claimed_at is not None) == (1, True)
    gone = dispatch.logs.get(dedupe_key="gone")
    assert (gone.lead_id, gone.status, gone.skip_reason) == (
        None,
        LogStatus.SKIPPED,
        "lead_deleted",
    )


def test_a_lead_deleted_before_its_log_is_written_gets_a_skipped_log():
    dispatch = DispatchFactory()
    lead = LeadFactory(organization=dispatch.organization)
    logs = new_logs(dispatch, [lead])
    lead.delete()

    created = logs_create(dispatch_id=dispatch.pk, channel=dispatch.channel, logs=logs)

    assert (created.pending, created.skipped) == (0, 1)
    log = dispatch.logs.get()
    assert (log.lead_id, log.status, log.skip_reason, log.body) == (
        None,
        LogStatus.SKIPPED,
        "lead_deleted",
        "",
    )


def backends_waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        # Within a transaction the activity view is read once, then kept.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_lead_deleted_while_its_logs_are_written_is_cleared_from_them():
    dispatch = DispatchFactory()
    lead = LeadFactory(organization=dispatch.organization)
    deleted = []

    def delete_lead():
        try:
            deleted.append(Lead.objects.filter(pk=lead.pk).delete()[0])
        finally:
            connections.close_all()

    deleter = threading.Thread(target=delete_lead)
    with transaction.atomic():
        logs_create(
            dispatch_id=dispatch.pk,
            channel=dispatch.channel,
            logs=new_logs(dispatch, [lead]),
        )
        deleter.start()
        # The deletion waits for the logs' transaction, which holds the lead.
        deadline = time.monotonic() + 10
        while not backends_waiting_on_a_lock():
            assert time.monotonic() < deadline, "the deletion did not wait"
            time.sleep(0.02)
    deleter.join(timeout=10)

    assert deleted and deleted[0] >= 1
    log = dispatch.logs.get()
    assert (log.lead_id, log.status) == (None, LogStatus.PENDING)
    assert not Lead.objects.filter(pk=lead.pk).exists()
