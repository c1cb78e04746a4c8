"""A lead's page tells its story: every kind of event, newest first, in a fixed
number of queries whatever the number of messages."""

import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from automations.timeline import lead_timeline
from crm.models import Suppression
from messaging.models import DeliveryReceipt, InboundReply, LogStatus
from tests.automations.factories import (
    AppointmentFactory,
    EnrollmentFactory,
    InvoiceFactory,
)
from tests.crm.factories import LeadFactory
from tests.messaging.factories import CommunicationLogFactory, DispatchFactory

pytestmark = pytest.mark.django_db

_refs = itertools.count()


def history(lead, messages: int) -> None:
    """`messages` delivered messages with a receipt each, and one of every other
    kind of event."""
    dispatch = DispatchFactory(organization=lead.organization, label="Spring sale")
    for index in range(messages):
        log = CommunicationLogFactory(
            dispatch=dispatch,
            lead=lead,
            dedupe_key=f"k{index}",
            send_id=f"s{lead.pk}-{index}",
            status=LogStatus.DELIVERED,
            next_attempt_at=None,
        )
        DeliveryReceipt.objects.create(
            vendor="simulator",
            vendor_ref=f"r{next(_refs)}",
            status="DELIVERED",
            log=log,
        )
    InboundReply.objects.create(
        organization=lead.organization,
        channel="sms",
        sender=lead.phone,
        body="STOP",
        keyword="STOP",
        action=InboundReply.Action.OPT_OUT,
        received_at=timezone.now(),
    )
    Suppression.objects.create(
        organization=lead.organization,
        channel="sms",
        address=lead.phone,
        reason=Suppression.Reason.STOP_KEYWORD,
    )
    EnrollmentFactory(
        sequence__organization=lead.organization,
        organization=lead.organization,
        lead=lead,
    )
    AppointmentFactory(organization=lead.organization, lead=lead)
    InvoiceFactory(organization=lead.organization, lead=lead)


def queries_of_page(client, lead) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("admin:crm_lead_change", args=[lead.pk]))
    assert response.status_code == 200
    return len(captured)


def test_the_timeline_holds_every_kind_of_event_newest_first(organization):
    # given
    lead = LeadFactory(organization=organization, phone="+15550001111")
    lead.set_contacts(phones=["+15550001111"], emails=[])
    lead.save()
    history(lead, messages=2)

    # when
    entries = lead_timeline(lead=lead)

    # then
    kinds = {entry.kind for entry in entries}
    assert kinds == {
        "message",
        "receipt",
        "consent",
        "enrollment",
        "appointment",
        "invoice",
    }
    assert [entry.at for entry in entries] == sorted(
        (entry.at for entry in entries), reverse=True
    )
    titles = " | ".join(entry.title for entry in entries)
    assert "SMS message, delivered: Spring sale" in titles
    assert "Receipt: delivered" in titles
    assert "Replied by SMS: opted out" in titles
    assert "SMS address suppressed: replied stop" in titles


def test_the_lead_page_costs_the_same_queries_for_1_or_50_messages(
    member_client, organization
):
    # given a lead with one message and a lead with fifty
    one, fifty = (
        LeadFactory(organization=organization),
        LeadFactory(organization=organization),
    )
    history(one, messages=1)
    history(fifty, messages=50)

    # when / then the page of each costs the same number of queries
    assert queries_of_page(member_client, fifty) == queries_of_page(member_client, one)


def test_the_lead_page_shows_its_timeline(member_client, organization):
    # given
    lead = LeadFactory(organization=organization)
    history(lead, messages=3)

    # when
    response = member_client.get(reverse("admin:crm_lead_change", args=[lead.pk]))

    # then
    page = response.content.decode()
    assert 'id="lead-timeline"' in page
    assert page.count('class="timeline-message"') == 3
    assert "Appointment booked: Consultation" in page
