"""Logs to send, messages already sent, and the check that a dispatch's counters
agree with its logs."""

from datetime import UTC, datetime

from messaging.models import CommunicationLog, Dispatch, LogStatus
from messaging.services.dispatches import dispatch_count_logs
from messaging.services.logs import NewLog, logs_create, new_send_id
from tests.crm.factories import LeadFactory
from tests.messaging.factories import CommunicationLogFactory, DispatchFactory


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


def written_to(lead, channel: str = "sms") -> None:
    """The lead's organization has sent the lead a message: replies belong to it."""
    CommunicationLogFactory(
        dispatch=DispatchFactory(organization=lead.organization, channel=channel),
        lead=lead,
        channel=channel,
        recipient=lead.phone if channel == "sms" else lead.email,
        status=LogStatus.SENT,
        sent_at=datetime.now(UTC),
        next_attempt_at=None,
    )
