"""Inbound replies: which words opt out or in, and what an opt-out suppresses."""

from datetime import UTC, datetime

import pytest

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


def message(text: str, sender: str = "+12025550147") -> InboundMessage:
    return InboundMessage(
        channel="sms", sender=sender, body=text, received_at=datetime.now(UTC)
    )


@pytest.mark.django_db
def test_stop_opts_out_the_leads_at_that_number_and_skips_their_pending_messages():
    # given
    lead = LeadFactory(phones=["+12025550147"])
    other = LeadFactory(phones=["+12025550148"])
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
