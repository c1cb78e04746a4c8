"""Logs to send and the check that a dispatch's counters agree with its logs."""

from messaging.models import CommunicationLog, Dispatch
from messaging.services.dispatches import dispatch_count_logs
from messaging.services.logs import NewLog, logs_create, new_send_id
from tests.crm.factories import LeadFactory


def new_logs(dispatch: Dispatch, leads, body: str = "Hi") -> list[NewLog]:
    """One log to create per lead, keyed by its id, saying `body` and its name."""
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


def pending_logs(dispatch: Dispatch, count: int) -> list[CommunicationLog]:
    """`count` new leads and a pending log for each in the dispatch, by pk."""
    leads = LeadFactory.create_batch(count, organization=dispatch.organization)
    logs_create(
        dispatch_id=dispatch.pk,
        channel=dispatch.channel,
        logs=new_logs(dispatch, leads),
    )
    return list(dispatch.logs.order_by("pk"))


def assert_counters_match_logs(dispatch: Dispatch) -> None:
    dispatch.refresh_from_db()
    counted = dispatch_count_logs(dispatch_id=dispatch.pk)
    assert {name: getattr(dispatch, name) for name in counted} == counted
