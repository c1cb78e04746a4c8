"""The campaign composer: segments with their audience, a preview for a searched
lead, the estimate of a send, the schedule in the organization's time zone, and
"Duplicate"."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from campaigns.models import Campaign
from crm.services.segments import segment_create
from tests.campaigns.factories import CampaignFactory
from tests.crm.factories import LeadFactory, SegmentFactory
from tests.support.campaigns import EVERYONE, launched_campaign

pytestmark = pytest.mark.django_db


def compose(client, **body):
    return client.post(
        reverse("admin:campaigns_campaign_compose"),
        json.dumps(body),
        content_type="application/json",
    )


@pytest.fixture
def segment(organization):
    return SegmentFactory(organization=organization, rules=EVERYONE, name="All")


def test_the_segment_picker_shows_each_segments_audience(member_client, organization):
    # given a segment counted at 3 leads
    LeadFactory.create_batch(3, organization=organization)
    segment_create(organization=organization, name="Everyone", rules=EVERYONE)

    # when
    response = member_client.get(reverse("admin:campaigns_campaign_add"))

    # then
    assert "Everyone (3 leads)" in response.content.decode()


def test_a_lead_is_found_by_name_phone_or_email_in_the_members_organization(
    member_client, organization, other_organization
):
    # given
    ada = LeadFactory(
        organization=organization, name="Ada Lovelace", phones=["+12025550199"]
    )
    LeadFactory(organization=other_organization, name="Ada Other")
    url = reverse("admin:campaigns_campaign_lead_search")

    # when
    by_name = member_client.get(url, {"q": "ada"}).json()["leads"]
    by_phone = member_client.get(url, {"q": "202 555 0199"}).json()["leads"]
    by_email = member_client.get(url, {"q": ada.email.upper()}).json()["leads"]

    # then
    assert [lead["id"] for lead in by_name] == [ada.pk]
    assert [lead["id"] for lead in by_phone] == [ada.pk]
    assert [lead["id"] for lead in by_email] == [ada.pk]
    assert "Ada Lovelace" in by_name[0]["label"]


def test_the_preview_renders_for_the_chosen_lead(member_client, organization, segment):
    # given
    LeadFactory(organization=organization, name="First Lead")
    grace = LeadFactory(organization=organization, name="Grace Hopper")

    # when
    answer = compose(
        member_client,
        organization=organization.pk,
        segment=segment.pk,
        channel="sms",
        template="Hi {{first_name}}!",
        lead=grace.pk,
    ).json()

    # then
    assert answer["preview"]["text"] == "Hi Grace!"
    assert answer["preview"]["lead"] == "Grace Hopper"
    assert answer["preview"]["segments"] == 1


def test_the_estimate_counts_reachable_messages_segments_and_cost(
    member_client, organization, segment, settings
):
    # given four leads, one opted out of SMS and one without a phone
    settings.SMS_PRICE_PER_SEGMENT = Decimal("0.01")
    LeadFactory.create_batch(2, organization=organization)
    LeadFactory(organization=organization, sms_opt_out=True)
    LeadFactory(organization=organization, phones=[], phone="")
    two_segments = "x" * 200  # GSM-7, over 160 characters: 2 segments

    # when
    answer = compose(
        member_client,
        organization=organization.pk,
        segment=segment.pk,
        channel="sms",
        template=two_segments,
    ).json()

    # then
    assert answer["estimate"] == {
        "audience": 4,
        "messages": 2,
        "segments": 4,
        "cost": "0.04",
        "price": "0.01",
    }


def test_a_unicode_message_costs_more_segments(member_client, organization, segment):
    # given one lead and a message with an emoji: UCS-2, 70 characters a segment
    LeadFactory(organization=organization)

    # when
    answer = compose(
        member_client,
        organization=organization.pk,
        segment=segment.pk,
        channel="sms",
        template="🎉" + "x" * 80,
    ).json()

    # then
    assert answer["estimate"]["segments"] == 2
    assert answer["preview"]["encoding"] == "Unicode (UCS-2)"


def test_an_email_estimate_is_priced_per_message(
    member_client, organization, segment, settings
):
    settings.EMAIL_PRICE_PER_MESSAGE = Decimal("0.5")
    LeadFactory.create_batch(3, organization=organization)

    answer = compose(
        member_client,
        organization=organization.pk,
        segment=segment.pk,
        channel="email",
        template="Hello {{name}}",
    ).json()

    assert answer["estimate"]["messages"] == 3
    assert answer["estimate"]["segments"] is None
    assert answer["estimate"]["cost"] == "1.50"


def test_a_template_error_is_answered_with_its_reason(
    member_client, organization, segment
):
    response = compose(
        member_client,
        organization=organization.pk,
        segment=segment.pk,
        channel="sms",
        template="Hi {{nmae}}",
    )

    assert response.status_code == 200
    assert "nmae" in response.json()["error"]


def test_another_organizations_segment_is_refused(
    member_client, organization, other_organization
):
    theirs = SegmentFactory(organization=other_organization)

    response = compose(
        member_client,
        organization=other_organization.pk,
        segment=theirs.pk,
        channel="sms",
        template="Hi",
    )

    assert response.status_code == 400
    assert response.json()["error"] == "choose a segment"


def test_the_schedule_is_entered_in_the_organizations_time_zone(
    member_client, organization, segment
):
    # given an organization in Tokyo (UTC+9)
    organization.time_zone = "Asia/Tokyo"
    organization.save()

    # when a campaign is scheduled for 09:00 on the page
    response = member_client.post(
        reverse("admin:campaigns_campaign_add"),
        {
            "name": "Morning",
            "channel": "sms",
            "segment": segment.pk,
            "subject": "",
            "template": "Hi",
            "chunk_size": "",
            "scheduled_at_0": "2031-05-01",
            "scheduled_at_1": "09:00:00",
        },
    )

    # then it is 00:00 UTC, and the page shows it back as 09:00
    assert response.status_code == 302
    campaign = Campaign.objects.get(name="Morning")
    assert campaign.scheduled_at == datetime(2031, 5, 1, 0, 0, tzinfo=UTC)
    page = member_client.get(
        reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    ).content.decode()
    assert 'value="09:00:00"' in page
    assert "Asia/Tokyo" in page


def test_duplicate_makes_a_new_draft_from_a_launched_campaign(
    member_client, organization
):
    # given a launched campaign
    original = launched_campaign(organization)

    # when
    response = member_client.post(
        reverse("admin:campaigns_campaign_duplicate", args=[original.pk])
    )

    # then a draft with its message opens
    copy = Campaign.objects.exclude(pk=original.pk).get()
    assert response.url == reverse("admin:campaigns_campaign_change", args=[copy.pk])
    assert copy.status == Campaign.Status.DRAFT
    assert copy.name == f"{original.name} (copy)"
    assert (copy.template, copy.segment_id, copy.channel) == (
        original.template,
        original.segment_id,
        original.channel,
    )
    assert copy.dispatch_id is None and copy.launched_at is None


def test_duplicate_is_a_button_on_every_campaigns_page(member_client, organization):
    campaign = CampaignFactory(organization=organization)

    page = member_client.get(
        reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    ).content.decode()

    assert 'name="duplicate"' in page
    assert 'id="composer"' in page


def test_a_superusers_schedule_is_in_the_chosen_organizations_time_zone(
    operator_client, organization, segment
):
    # given an organization in New York (UTC-4 in May)
    organization.time_zone = "America/New_York"
    organization.save()

    # when a superuser schedules its campaign for 09:00
    response = operator_client.post(
        reverse("admin:campaigns_campaign_add"),
        {
            "organization": organization.pk,
            "name": "Morning",
            "channel": "sms",
            "segment": segment.pk,
            "subject": "",
            "template": "Hi",
            "chunk_size": "",
            "scheduled_at_0": "2031-05-01",
            "scheduled_at_1": "09:00:00",
        },
    )

    # then it is 13:00 UTC
    assert response.status_code == 302
    campaign = Campaign.objects.get(name="Morning")
    assert campaign.scheduled_at == datetime(2031, 5, 1, 13, 0, tzinfo=UTC)
