"""A campaign's test send: the message as a lead gets it, to the marketer's own
address, never counted in the campaign."""

import pytest

from campaigns.models import Campaign
from campaigns.services import lifecycle, test_send
from campaigns.services.test_send import campaign_test_send
from crm.models import Channel
from messaging.models import CommunicationLog, LogStatus
from messaging.services.sending import logs_send_due
from tests.campaigns.factories import CampaignFactory
from tests.campaigns.test_completion import delivered
from tests.crm.factories import LeadFactory
from tests.support.campaigns import expand_all, launched_and_chunked
from tests.support.messaging import assert_counters_match_logs
from tests.support.scripted_vendor import ScriptedVendor
from tests.support.simulator import RecordingSimulator

pytestmark = pytest.mark.django_db


def test_an_email_test_send_is_the_leads_message_to_my_address_marked_test(
    organization,
):
    # Given a draft email campaign and one of the organization's leads
    campaign = CampaignFactory(
        organization=organization,
        channel=Channel.EMAIL,
        subject="Hello {{first_name}}",
        template="Dear {{name}}, you visited {{visits}} times.",
    )
    lead = LeadFactory(organization=organization, name="Ada Lovelace", visits=7)
    vendor = RecordingSimulator()

    # When a test send goes to the marketer's own address, and its batch is sent
    sent = campaign_test_send(
        campaign_id=campaign.pk, lead_id=lead.pk, to="  Me@Agency.Example "
    )
    logs_send_due(dispatch_id=Campaign.objects.get().test_dispatch_id, adapter=vendor)

    # Then the vendor got the lead's rendering, addressed to the marketer only
    assert (sent.to, sent.lead, sent.status) == (
        "me@agency.example",
        lead.pk,
        "pending",
    )
    (message,) = vendor.received
    assert message.to == "me@agency.example"
    assert message.subject == "[Test] Hello Ada"
    assert message.body.startswith("Dear Ada Lovelace, you visited 7 times.")
    # with the footer the lead would see, its link for the marketer's address
    assert "To stop these emails: " in message.body
    log = CommunicationLog.objects.get(pk=sent.id)
    assert (log.send_id, log.lead_id, log.status) == (sent.send_id, None, "sent")


def test_an_sms_test_send_goes_to_my_normalized_phone(organization):
    campaign = CampaignFactory(organization=organization, template="Hi {{name}}")
    lead = LeadFactory(organization=organization, name="Bo")

    sent = campaign_test_send(
        campaign_id=campaign.pk, lead_id=lead.pk, to="(202) 555-0147"
    )

    log = CommunicationLog.objects.get(pk=sent.id)
    assert (log.recipient, log.body, log.subject) == ("+12025550147", "Hi Bo", "")


@pytest.mark.parametrize(
    ("channel", "to", "reason"),
    [
        (Channel.SMS, "not a phone", "not a valid phone number for this sms campaign"),
        (Channel.EMAIL, "me@", "not a valid email address for this email campaign"),
        (Channel.EMAIL, "+12025550147", "not a valid email address"),
    ],
)
def test_a_bad_address_is_refused_with_the_reason(organization, channel, to, reason):
    campaign = CampaignFactory(
        organization=organization, channel=channel, subject="S", template="Hi"
    )
    lead = LeadFactory(organization=organization)

    with pytest.raises(test_send.TestSendError, match=reason) as error:
        campaign_test_send(campaign_id=campaign.pk, lead_id=lead.pk, to=to)

    assert error.value.field == "to"
    assert not CommunicationLog.objects.exists()


def test_a_lead_of_another_organization_is_refused(organization):
    campaign = CampaignFactory(organization=organization)
    stranger = LeadFactory()

    with pytest.raises(test_send.TestSendError, match="no such lead") as error:
        campaign_test_send(
            campaign_id=campaign.pk, lead_id=stranger.pk, to="+12025550147"
        )

    assert error.value.field == "lead"


def test_test_sends_are_not_counted_and_the_campaign_still_completes(
    django_capture_on_commit_callbacks,
):
    # Given a running SMS campaign of 3 leads
    campaign = launched_and_chunked(3, template="Hi {{name}}")
    lead = campaign.organization.leads.first()

    # When two test sends go out while it runs, and the campaign is sent and delivered
    for _ in range(2):
        campaign_test_send(campaign_id=campaign.pk, lead_id=lead.pk, to="+12025550147")
    expand_all(campaign)
    vendor = ScriptedVendor()
    logs_send_due(dispatch_id=campaign.dispatch_id, adapter=vendor)
    with django_capture_on_commit_callbacks():
        delivered(campaign)
    lifecycle.campaign_mark_completed(dispatch_id=campaign.dispatch_id)

    # Then the campaign counts its 3 messages alone, and it completed
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert (campaign.dispatch.audience, campaign.dispatch.delivered) == (3, 3)
    test_dispatch = campaign.test_dispatch
    assert (test_dispatch.audience, test_dispatch.transactional) == (2, True)
    assert test_dispatch.logs.filter(status=LogStatus.PENDING).count() == 2
    assert_counters_match_logs(campaign.dispatch)
    assert_counters_match_logs(test_dispatch)
