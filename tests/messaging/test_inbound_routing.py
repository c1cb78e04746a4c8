"""Inbound replies belong to the organization whose sender identity they were sent
to: STOP, START and HELP act there alone, and a STOP is a suppression a late or
replayed START never undoes."""

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from crm.models import Suppression, SuppressionLift
from crm.services.suppressions import address_suppress
from messaging.models import CommunicationLog, InboundReply, LogStatus
from messaging.services.inbound import help_reply_text, inbound_handle
from tests.crm.factories import LeadFactory, OrganizationFactory
from tests.messaging.factories import CommunicationLogFactory, DispatchFactory
from vendors.base import InboundMessage
from vendors.models import VendorAccount
from vendors.simulator_callbacks import inbound_payload, parse_inbound

pytestmark = pytest.mark.django_db
PERSON = "+12025550147"
NUMBER_A = "+15005550101"
NUMBER_B = "+15005550102"


def reply(
    text: str,
    to: str,
    *,
    at: datetime | None = None,
    message_id: str = "",
    sender: str = PERSON,
) -> InboundMessage:
    return InboundMessage(
        channel="sms",
        sender=sender,
        body=text,
        received_at=at or datetime.now(UTC),
        message_id=message_id,
        to=to,
    )


def account(organization, sender: str, vendor: str = "simulator") -> VendorAccount:
    return VendorAccount.objects.create(
        organization=organization, channel="sms", vendor=vendor, sender=sender
    )


def suppressed(organization) -> set[tuple[str, str]]:
    return set(
        Suppression.objects.filter(organization=organization).values_list(
            "address", "reason"
        )
    )


@pytest.fixture
def two_orgs():
    """Two organizations, each with its own number and a lead at the same phone."""
    a, b = OrganizationFactory(), OrganizationFactory()
    account(a, NUMBER_A)
    account(b, NUMBER_B)
    return (a, LeadFactory(organization=a, phones=[PERSON])), (
        b,
        LeadFactory(organization=b, phones=[PERSON]),
    )


def test_a_stop_sent_to_an_organizations_number_acts_in_that_organization_only(
    two_orgs,
):
    # given two organizations with a lead at the same phone, B having written last
    (a, lead_a), (b, lead_b) = two_orgs
    CommunicationLogFactory(
        dispatch=DispatchFactory(organization=b),
        lead=lead_b,
        status=LogStatus.SENT,
        sent_at=datetime.now(UTC),
        next_attempt_at=None,
    )
    waiting_b = CommunicationLogFactory(
        dispatch=DispatchFactory(organization=b, audience=1, pending=1), lead=lead_b
    )

    # when the person texts STOP to A's number
    outcome = inbound_handle(messages=[reply("STOP", NUMBER_A)], vendor="simulator")

    # then A's lead is opted out and the phone suppressed in A; B is untouched
    assert outcome.opted_out == [lead_a.pk]
    lead_a.refresh_from_db()
    lead_b.refresh_from_db()
    assert lead_a.sms_opt_out and not lead_b.sms_opt_out
    assert suppressed(a) == {(PERSON, "stop_keyword")}
    assert suppressed(b) == set()
    waiting_b.refresh_from_db()
    assert waiting_b.status == LogStatus.PENDING
    stored = InboundReply.objects.get()
    assert (stored.organization_id, stored.recipient) == (a.pk, NUMBER_A)


def test_a_start_to_one_organizations_number_never_lifts_anothers_stop(two_orgs):
    # given the person said STOP to A
    (a, lead_a), (b, lead_b) = two_orgs
    now = datetime.now(UTC)
    inbound_handle(messages=[reply("STOP", NUMBER_A, at=now)])

    # when they text START to B's number
    outcome = inbound_handle(
        messages=[reply("START", NUMBER_B, at=now + timedelta(minutes=1))]
    )

    # then A's opt-out and suppression stand
    assert outcome.opted_in == []
    lead_a.refresh_from_db()
    assert lead_a.sms_opt_out
    assert suppressed(a) == {(PERSON, "stop_keyword")}


def test_a_start_never_lifts_a_manual_opt_out_or_suppression(two_orgs):
    # given a marketer suppressed the phone in A by hand and opted the lead out
    (a, lead_a), _ = two_orgs
    address_suppress(
        organization_id=a.pk, channel="sms", address=PERSON, reason="manual"
    )
    lead_a.sms_opt_out = True
    lead_a.sms_opt_out_source = "manual"
    lead_a.save()

    # when the person texts START to A's number, and to B's
    inbound_handle(messages=[reply("START", NUMBER_A), reply("START", NUMBER_B)])

    # then A's suppression and the lead's opt-out stand
    assert suppressed(a) == {(PERSON, "manual")}
    lead_a.refresh_from_db()
    assert lead_a.sms_opt_out


def test_a_start_later_than_the_stop_lifts_what_the_stop_made(two_orgs):
    (a, lead_a), _ = two_orgs
    now = datetime.now(UTC)

    inbound_handle(
        messages=[
            reply("STOP", NUMBER_A, at=now, message_id="SM1"),
            reply("START", NUMBER_A, at=now + timedelta(seconds=5), message_id="SM2"),
        ]
    )

    assert suppressed(a) == set()
    lead_a.refresh_from_db()
    assert not lead_a.sms_opt_out
    lift = SuppressionLift.objects.get()
    assert (lift.organization_id, lift.suppression_reason, lift.lifted_by) == (
        a.pk,
        "stop_keyword",
        "START",
    )


@pytest.mark.parametrize("order", ["stop_first", "start_first"])
def test_the_later_of_a_stop_and_a_start_wins_whatever_order_they_arrive_in(
    two_orgs, order
):
    # given a START sent a minute before a STOP, delivered in either order
    (a, lead_a), _ = two_orgs
    now = datetime.now(UTC)
    start = reply("START", NUMBER_A, at=now - timedelta(minutes=1), message_id="SM1")
    stop = reply("STOP", NUMBER_A, at=now, message_id="SM2")
    messages = [stop, start] if order == "stop_first" else [start, stop]

    # when they arrive, and the vendor then replays both
    inbound_handle(messages=messages, vendor="simulator")
    again = inbound_handle(messages=messages, vendor="simulator")

    # then the newer STOP stands
    assert again.duplicates == 2
    assert suppressed(a) == {(PERSON, "stop_keyword")}
    lead_a.refresh_from_db()
    assert lead_a.sms_opt_out


def test_a_late_old_stop_does_not_undo_a_newer_start(two_orgs):
    # given STOP then START, and a STOP sent between them delivered last
    (a, lead_a), _ = two_orgs
    now = datetime.now(UTC)
    inbound_handle(
        messages=[
            reply("STOP", NUMBER_A, at=now, message_id="SM1"),
            reply("START", NUMBER_A, at=now + timedelta(minutes=2), message_id="SM2"),
        ]
    )

    # when the older STOP arrives
    inbound_handle(
        messages=[
            reply("STOP", NUMBER_A, at=now + timedelta(minutes=1), message_id="SM3")
        ]
    )

    # then the person stays opted in
    assert suppressed(a) == set()
    lead_a.refresh_from_db()
    assert not lead_a.sms_opt_out
    assert InboundReply.objects.get(vendor_message_id="SM3").action == "stale"


def test_a_stop_from_someone_with_no_lead_still_suppresses_the_number():
    # given an organization's number and no lead at the person's phone
    organization = OrganizationFactory()
    account(organization, NUMBER_A)

    # when they text STOP to it, and a lead is imported with that phone later
    inbound_handle(messages=[reply("STOP", NUMBER_A)])

    # then the phone is on the organization's suppression list
    assert suppressed(organization) == {(PERSON, "stop_keyword")}


def test_a_reply_to_an_unknown_sender_identity_is_stored_and_changes_nothing(
    two_orgs,
):
    (a, lead_a), (b, lead_b) = two_orgs
    CommunicationLogFactory(
        dispatch=DispatchFactory(organization=a),
        lead=lead_a,
        status=LogStatus.SENT,
        sent_at=datetime.now(UTC),
        next_attempt_at=None,
    )

    outcome = inbound_handle(messages=[reply("STOP", "+15005550199")])

    assert outcome.opted_out == []
    assert not Suppression.objects.exists()
    lead_a.refresh_from_db()
    assert not lead_a.sms_opt_out
    stored = InboundReply.objects.get()
    assert (stored.organization_id, stored.action, stored.recipient) == (
        None,
        "unknown_recipient",
        "+15005550199",
    )


def test_a_reply_to_the_shared_default_sender_belongs_to_the_message_it_answers(
    settings,
):
    # given no organization has an account, and one wrote from the shared number
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    lead = LeadFactory(phones=[PERSON])
    CommunicationLogFactory(
        dispatch=DispatchFactory(organization=lead.organization),
        lead=lead,
        status=LogStatus.SENT,
        sent_at=datetime.now(UTC),
        next_attempt_at=None,
    )

    # when the person texts STOP to the shared number
    inbound_handle(messages=[reply("STOP", "(500) 555-0006")])

    # then it acts in the organization that wrote
    lead.refresh_from_db()
    assert lead.sms_opt_out
    assert suppressed(lead.organization) == {(PERSON, "stop_keyword")}


def test_a_reply_to_a_retired_number_still_belongs_to_its_organization(two_orgs):
    (a, lead_a), _ = two_orgs
    VendorAccount.objects.filter(organization=a).update(is_active=False)

    inbound_handle(messages=[reply("STOP", NUMBER_A)])

    assert suppressed(a) == {(PERSON, "stop_keyword")}


def test_a_reply_to_a_messaging_service_number_belongs_to_the_service_owner():
    organization = OrganizationFactory()
    account(organization, "MG" + "1" * 32, vendor="twilio")

    inbound_handle(
        messages=[
            InboundMessage(
                channel="sms",
                sender=PERSON,
                body="STOP",
                received_at=datetime.now(UTC),
                to="+15005550123",
                to_service="MG" + "1" * 32,
            )
        ]
    )

    assert suppressed(organization) == {(PERSON, "stop_keyword")}
    assert CommunicationLog.objects.count() == 0


def test_help_to_an_unknown_number_is_not_answered(two_orgs):
    outcome = inbound_handle(messages=[reply("HELP", "+15005550199")])

    assert outcome.helped == 0
    assert not CommunicationLog.objects.exists()


def test_the_help_answer_fits_one_sms_whatever_the_help_text():
    text = help_reply_text(
        organization_name="Acme Dental", help_text="Call us " * 40, limit=160
    )

    assert len(text) <= 160
    assert text.startswith("Acme Dental: Call us")
    assert text.endswith("... Reply STOP to opt out.")


def test_the_help_answer_without_help_text_still_names_the_organization():
    text = help_reply_text(organization_name="Acme", help_text="", limit=160)

    assert text == "Acme: Reply STOP to opt out."


def test_the_simulators_inbound_callback_carries_the_recipient():
    sent = reply("STOP", NUMBER_A, message_id="m1")

    [read] = parse_inbound(json.dumps(inbound_payload([sent])).encode())

    assert (read.to, read.sender, read.message_id) == (NUMBER_A, PERSON, "m1")


def test_help_from_someone_with_no_lead_is_answered_to_their_number():
    organization = OrganizationFactory(name="Acme", help_text="See acme.example.")
    account(organization, NUMBER_A)

    inbound_handle(messages=[reply("HELP", NUMBER_A)])

    log = CommunicationLog.objects.get()
    assert (log.lead_id, log.recipient, log.status) == (None, PERSON, "pending")
    assert log.body == "Acme: See acme.example. Reply STOP to opt out."


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("last", ["STOP", "START"])
def test_stops_and_starts_arriving_together_end_as_the_latest_says(last):
    # given a person who sends alternating STOPs and STARTs
    organization = OrganizationFactory()
    account(organization, NUMBER_A)
    lead = LeadFactory(organization=organization, phones=[PERSON])
    other = "START" if last == "STOP" else "STOP"
    now = datetime.now(UTC)
    words = [
        reply(
            last if index % 2 else other,
            NUMBER_A,
            at=now + timedelta(seconds=index),
            message_id=f"SM{index}",
        )
        for index in range(40)
    ]
    ready = threading.Barrier(4)

    # when four workers apply them at once, each in its own order
    def worker(mine: list[InboundMessage]) -> None:
        ready.wait()
        try:
            for message in mine:
                inbound_handle(messages=[message], vendor="simulator")
        finally:
            connection.close()

    threads = [
        threading.Thread(target=worker, args=(words[start::4][:: 1 - 2 * (start % 2)],))
        for start in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then the latest word stands
    lead.refresh_from_db()
    assert lead.sms_opt_out == (last == "STOP")
    assert suppressed(organization) == (
        {(PERSON, "stop_keyword")} if last == "STOP" else set()
    )
    assert InboundReply.objects.count() == 40
