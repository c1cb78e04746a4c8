"""Creating logs: written at once, and idempotent on (dispatch, dedupe key)."""

import pytest

from messaging.models import LogStatus
from messaging.services.dispatches import dispatch_count_logs
from messaging.services.logs import NewLog, logs_create, new_send_id
from tests.campaigns.factories import DispatchFactory
from tests.crm.factories import LeadFactory

pytestmark = pytest.mark.django_db


def new_logs(dispatch, leads, body="Hi"):
    return [
        NewLog(
            lead_id=lead.pk,
            dedupe_key=str(lead.pk),
            send_id=new_send_id(scope=dispatch.pk, key=lead.pk),
            recipient=lead.phone,
            body=f"{body} {lead.name}",
        )
        for lead in leads
    ]


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
