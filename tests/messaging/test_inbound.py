"""Inbound replies: which words opt out or in, and what an opt-out suppresses."""

from datetime import UTC, datetime, timedelta

import pytest

from crm.models import Lead, OptOutSource
from crm.services.consent import lead_opt_out
from messaging.models import InboundReply, LogStatus
from messaging.services.inbound import inbound_handle, keyword
from tests.crm.factories import LeadFactory
from tests.messaging.factories import CommunicationLogFactory, DispatchFactory
from vendors.base import InboundMessage


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("STOP", "STOP"),
        (" stop. ", "STOP"),
        ("Unsubscribe!", "UNSUBSCRIBE"),
        ("start", "START"),
        ("please stop", ""),
        ("", ""),
    ],
)
def test_keyword_is_the_one_word_alone(text, word):
    assert keyword(text) == word


def message(
    text: str,
    sender: str = "+12025550147",
    *,
    at: datetime | None = None,
    message_id: str = "",
) -> InboundMessage:
    return InboundMessage(
        channel="sms",
        sender=sender,
        body=text,
        received_at=at or datetime.now(UTC),
        message_id=message_id,
    )


def answered(lead: Lead) -> None:
    """The lead's organization has sent the lead a message: replies belong to it."""
    CommunicationLogFactory(
        dispatch=DispatchFactory(organization=lead.organization),
        lead=lead,
        recipient=lead.phone,
        status=LogStatus.SENT,
        sent_at=datetime.now(UTC),
        next_attempt_at=None,
    )


@pytest.mark.django_db
def test_stop_opts_out_the_leads_at_that_number_and_skips_their_pending_messages():
    # given
    lead = LeadFactory(phones=["+12025550147"])
    other = LeadFactory(organization=lead.organization, phones=["+12025550148"])
    answered(lead)
    dispatch = DispatchFactory(organization=lead.organization, audience=2, pending=2)
    mine = CommunicationLogFactory(dispatch=dispatch, lead=lead, recipient=lead.phone)
    theirs = CommunicationLogFactory(
        dispatch=dispatch, lead=other, recipient=other.phone
    )

    # when
    outcome = inbound_handle(messages=[message("STOP", sender="(202) 555-0147")])

    # then
    assert outcome.opted_out == [lead.pk]
    assert outcome.suppressed == 1
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, mine.skip_reason) == (LogStatus.SKIPPED, "opted_out")
    assert theirs.status == LogStatus.PENDING
    dispatch.refresh_from_db()
    assert (dispatch.pending, dispatch.skipped) == (1, 1)


@pytest.mark.django_db
def test_a_second_stop_changes_nothing_more():
    LeadFactory(phones=["+12025550147"], sms_opt_out=True)

    outcome = inbound_handle(messages=[message("STOP")])

    assert outcome.opted_out == []
    assert outcome.suppressed == 0


@pytest.mark.django_db
def test_an_unusable_sender_is_ignored():
    outcome = inbound_handle(messages=[message("STOP", sender="not a number")])

    assert outcome.ignored == 1


@pytest.mark.django_db
def test_every_reply_is_kept_with_what_it_did():
    lead = LeadFactory(phones=["+12025550147"])
    answered(lead)
    dispatch = DispatchFactory(organization=lead.organization, audience=1, pending=1)
    CommunicationLogFactory(dispatch=dispatch, lead=lead, recipient=lead.phone)

    inbound_handle(
        messages=[
            message("Stop.", sender="(202) 555-0147"),
            message("thanks!"),
            message("START", sender="not a number"),
            message("start"),
        ],
        vendor="simulator",
    )

    replies = InboundReply.objects.order_by("pk").values_list(
        "vendor", "sender", "keyword", "action", "leads_changed", "messages_suppressed"
    )
    assert list(replies) == [
        ("simulator", "+12025550147", "STOP", "opt_out", 1, 1),
        ("simulator", "+12025550147", "", "ignored", 0, 0),
        ("simulator", "not a number", "START", "unusable_sender", 0, 0),
        ("simulator", "+12025550147", "START", "opt_in", 1, 0),
    ]


@pytest.mark.django_db
def test_a_reply_belongs_to_the_organization_whose_message_it_answers():
    # Given two organizations with a lead at the same number, only one of which
    # has sent that number a message
    answered = LeadFactory(phones=["+12025550147"])
    LeadFactory(phones=["+12025550147"])
    CommunicationLogFactory(
        dispatch=DispatchFactory(organization=answered.organization),
        lead=answered,
        status=LogStatus.SENT,
        sent_at=datetime.now(UTC),
        next_attempt_at=None,
    )

    # When the number replies, and a number nobody wrote to replies
    inbound_handle(
        messages=[message("thanks!"), message("STOP", sender="+12025550999")]
    )

    # Then the first reply is the organization's that wrote, the second nobody's
    replies = InboundReply.objects.order_by("pk").values_list(
        "sender", "organization_id"
    )
    assert list(replies) == [
        ("+12025550147", answered.organization_id),
        ("+12025550999", None),
    ]


@pytest.mark.django_db
def test_start_in_one_organization_leaves_the_number_opted_out_in_another():
    # given a number that said STOP to two organizations, and answers the first
    first = LeadFactory(phones=["+12025550147"])
    second = LeadFactory(phones=["+12025550147"])
    for lead in (first, second):
        answered(lead)
        lead_opt_out(
            lead_id=lead.pk, channel="sms", source=OptOutSource.KEYWORD, reason="t"
        )
    CommunicationLogFactory(
        dispatch=DispatchFactory(organization=first.organization),
        lead=first,
        recipient=first.phone,
        status=LogStatus.SENT,
        sent_at=datetime.now(UTC) + timedelta(minutes=1),
        next_attempt_at=None,
    )

    # when it replies START
    outcome = inbound_handle(messages=[message("START")])

    # then only the first organization's lead is back in
    assert outcome.opted_in == [first.pk]
    second.refresh_from_db()
    assert second.sms_opt_out


@pytest.mark.django_db
def test_stop_to_one_organization_leaves_another_organizations_lead_and_messages():
    # given a number both organizations have, and only the first wrote to
    mine = LeadFactory(phones=["+12025550147"])
    theirs = LeadFactory(phones=["+12025550147"])
    answered(mine)
    dispatch = DispatchFactory(organization=theirs.organization, audience=1, pending=1)
    waiting = CommunicationLogFactory(
        dispatch=dispatch, lead=theirs, recipient=theirs.phone
    )

    # when it replies STOP
    outcome = inbound_handle(messages=[message("STOP")])

    # then the other organization's lead and its waiting message are untouched
    assert outcome.opted_out == [mine.pk]
    theirs.refresh_from_db()
    waiting.refresh_from_db()
    assert not theirs.sms_opt_out
    assert waiting.status == LogStatus.PENDING


@pytest.mark.django_db
def test_a_stop_answering_nothing_we_sent_changes_nothing():
    # given a lead at the number, never written to
    lead = LeadFactory(phones=["+12025550147"])

    # when the number replies STOP
    outcome = inbound_handle(messages=[message("STOP")])

    # then the reply is kept as belonging to no organization, the lead unchanged
    assert outcome.opted_out == []
    lead.refresh_from_db()
    assert not lead.sms_opt_out
    assert InboundReply.objects.get().action == "no_organization"


@pytest.mark.django_db
def test_start_does_not_lift_an_opt_out_a_marketer_made_by_hand():
    # given a lead a marketer opted out by hand
    lead = LeadFactory(phones=["+12025550147"])
    answered(lead)
    lead_opt_out(
        lead_id=lead.pk, channel="sms", source=OptOutSource.MANUAL, reason="asked"
    )

    # when the number replies START
    outcome = inbound_handle(messages=[message("START")])

    # then the lead stays opted out
    assert outcome.opted_in == []
    lead.refresh_from_db()
    assert lead.sms_opt_out


@pytest.mark.django_db
def test_a_replayed_reply_with_the_same_vendor_message_id_is_applied_once():
    # given a STOP already handled
    lead = LeadFactory(phones=["+12025550147"])
    answered(lead)
    stop = message("STOP", message_id="SM1")
    inbound_handle(messages=[stop], vendor="simulator")

    # when the vendor delivers it again
    outcome = inbound_handle(messages=[stop], vendor="simulator")

    # then it is counted as a duplicate and not kept twice
    assert outcome.duplicates == 1
    assert InboundReply.objects.count() == 1


@pytest.mark.django_db
def test_an_older_start_arriving_after_a_newer_stop_changes_nothing():
    # given a STOP the vendor timestamped a minute after a START not yet delivered
    lead = LeadFactory(phones=["+12025550147"])
    answered(lead)
    now = datetime.now(UTC)
    inbound_handle(messages=[message("STOP", at=now)])

    # when the older START arrives
    outcome = inbound_handle(messages=[message("START", at=now - timedelta(minutes=1))])

    # then the STOP stands and the START is recorded as stale
    assert outcome.opted_in == []
    lead.refresh_from_db()
    assert lead.sms_opt_out
    assert InboundReply.objects.order_by("pk").last().action == "stale"
