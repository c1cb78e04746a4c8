"""Every marketing email carries its recipient's unsubscribe link and the RFC 8058
headers; a transactional email (a reminder, a dunning notice) carries neither."""

import pytest
from django.test import Client

from automations.models import AutomationDispatch
from automations.services.outbox import automation_dispatch_id, lead_message
from crm.models import Channel, Suppression
from messaging.models import CommunicationLog
from messaging.services.outbound import messages_queue
from messaging.services.sending import logs_send_due
from tests.support.campaigns import expand_all, launched_and_chunked
from tests.support.simulator import RecordingSimulator

pytestmark = pytest.mark.django_db

BASE = "https://crm.example.com"


@pytest.fixture(autouse=True)
def _public_base_url(settings):
    settings.PUBLIC_BASE_URL = BASE


def test_a_campaign_email_has_the_link_in_its_body_and_both_headers(settings):
    # Given an email campaign of two leads, launched and expanded
    campaign = launched_and_chunked(
        2, channel=Channel.EMAIL, subject="News", template="Hi {{name}}"
    )
    expand_all(campaign)
    vendor = RecordingSimulator()

    # When its batch is sent
    logs_send_due(dispatch_id=campaign.dispatch_id, adapter=vendor)

    # Then each message ends with its own recipient's link, in the headers too
    assert len(vendor.received) == 2
    links = set()
    for message in vendor.received:
        body, footer = message.body.split("\n\n--\nTo stop these emails: ")
        assert body.startswith("Hi ")
        assert footer.startswith(f"{BASE}/u/")
        headers = dict(message.headers)
        assert headers == {
            "List-Unsubscribe": f"<{footer}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
        links.add(footer)
    assert len(links) == 2
    # And a click on one link unsubscribes that recipient, and only them
    message = vendor.received[0]
    Client().post(dict(message.headers)["List-Unsubscribe"][1:-1].removeprefix(BASE))
    assert list(Suppression.objects.values_list("address", flat=True)) == [message.to]


def test_a_campaign_sms_has_neither():
    campaign = launched_and_chunked(1, channel=Channel.SMS, template="Hi {{name}}")
    expand_all(campaign)
    vendor = RecordingSimulator()

    logs_send_due(dispatch_id=campaign.dispatch_id, adapter=vendor)

    (message,) = vendor.received
    assert "To stop these emails" not in message.body
    assert message.headers == ()


def test_a_transactional_email_has_neither_link_nor_headers(organization):
    # Given a reminder email in the organization's reminders dispatch
    from tests.crm.factories import LeadFactory

    lead = LeadFactory(organization=organization)
    dispatch_id = automation_dispatch_id(
        organization_id=organization.pk,
        kind=AutomationDispatch.Kind.REMINDERS,
        channel=Channel.EMAIL,
    )
    messages_queue(
        dispatch_id=dispatch_id,
        channel=Channel.EMAIL,
        messages=[
            lead_message(
                lead=lead,
                channel=Channel.EMAIL,
                dedupe_key="appt-1-24h",
                body="See you tomorrow",
                subject="Reminder",
            )
        ],
    )
    vendor = RecordingSimulator()

    # When it is sent
    logs_send_due(dispatch_id=dispatch_id, adapter=vendor)

    # Then it is the message as written, with no unsubscribe header
    (message,) = vendor.received
    assert (message.body, message.headers) == ("See you tomorrow", ())
    assert CommunicationLog.objects.get().body == "See you tomorrow"
