"""The campaign pages: checked templates, lifecycle actions, the run's dashboard."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from campaigns.admin.campaign import CampaignAdmin
from campaigns.models import Campaign, CampaignChunk
from campaigns.services import lifecycle
from crm.models import Membership
from messaging.models import LogStatus
from tests.campaigns.factories import CampaignFactory
from tests.crm.factories import (
    LeadFactory,
    MembershipFactory,
    SegmentFactory,
    UserFactory,
)
from tests.support.campaigns import EVERYONE, launched_campaign, logs_for
from vendors.sms import sms_segments

pytestmark = pytest.mark.django_db


@pytest.fixture
def segment(organization):
    LeadFactory.create_batch(3, organization=organization)
    return SegmentFactory(organization=organization, rules=EVERYONE, name="All")


def add_form(segment, **overrides):
    return {
        "name": "Spring",
        "channel": "sms",
        "segment": segment.pk,
        "subject": "",
        "template": "Hi {{name}}!",
        "chunk_size": "",
        "scheduled_at_0": "",
        "scheduled_at_1": "",
        **overrides,
    }


def said(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_an_unknown_placeholder_is_named_at_the_template_field(member_client, segment):
    response = member_client.post(
        reverse("admin:campaigns_campaign_add"),
        add_form(segment, template="Hi {{nmae}}"),
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["template"]
    assert "unknown placeholder {{nmae}}" in errors[0]
    assert not Campaign.objects.exists()


def test_an_email_campaign_without_subject_is_refused(member_client, segment):
    response = member_client.post(
        reverse("admin:campaigns_campaign_add"), add_form(segment, channel="email")
    )

    assert "needs a subject" in response.context["adminform"].form.errors["subject"][0]


def test_a_valid_campaign_is_created_as_a_draft_by_its_author(
    member_client, member, segment
):
    response = member_client.post(
        reverse("admin:campaigns_campaign_add"), add_form(segment)
    )

    assert response.status_code == 302
    campaign = Campaign.objects.get()
    assert campaign.status == Campaign.Status.DRAFT
    assert campaign.created_by == member
    assert campaign.organization == segment.organization


def test_the_form_shows_placeholders_and_the_message_size(member_client, segment):
    campaign = CampaignFactory(organization=segment.organization, segment=segment)
    text = campaign.template

    response = member_client.get(
        reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    )

    page = response.content.decode()
    assert 'data-placeholder="first_name"' in page
    size = response.context["template_size"]
    assert size == {
        "characters": len(text),
        "segments": sms_segments(text),
        "encoding": "GSM-7",
    }
    assert 'id="sms-alphabet"' in page


def test_launch_button_launches_and_says_what_it_did(member_client, segment):
    campaign = CampaignFactory(organization=segment.organization, segment=segment)

    response = member_client.post(
        reverse("admin:campaigns_campaign_act", args=[campaign.pk, "launch"])
    )

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    assert said(response) == [
        f"“{campaign}” launched: 3 leads in 1 chunk(s) of up to 50."
    ]


def test_a_launched_campaign_is_a_read_only_record(member_client, organization):
    campaign = launched_campaign(organization)

    response = member_client.get(
        reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    )

    form = response.context["adminform"].form
    assert "template" not in form.fields
    assert response.context["show_save"] is False
    names = [action["name"] for action in response.context["campaign_actions"]]
    assert names == ["pause", "cancel", "retry_failed", "rerun_dead"]


@pytest.mark.parametrize(
    ("action", "status_before", "status_after", "message"),
    [
        ("pause", "running", "paused", "paused: no new messages are claimed"),
        ("resume", "paused", "running", "resumed"),
        ("cancel", "running", "cancelled", "cancelled: 2 message(s) not yet sent"),
    ],
)
def test_changelist_actions_call_the_lifecycle_and_report(
    member_client, organization, action, status_before, status_after, message
):
    campaign = launched_campaign(organization)
    campaign.dispatch.status = "paused" if status_before == "paused" else "active"
    campaign.dispatch.audience = campaign.dispatch.pending = 2
    campaign.dispatch.save()
    Campaign.objects.filter(pk=campaign.pk).update(status=status_before)
    logs_for(campaign, statuses={LogStatus.PENDING: 2})

    response = member_client.post(
        reverse("admin:campaigns_campaign_changelist"),
        {"action": f"action_{action}", "_selected_action": [campaign.pk]},
    )

    campaign.refresh_from_db()
    assert campaign.status == status_after
    assert message in said(response)[0]


def test_an_action_refused_by_the_state_machine_says_why(member_client, organization):
    campaign = CampaignFactory(organization=organization)

    response = member_client.post(
        reverse("admin:campaigns_campaign_changelist"),
        {"action": "action_pause", "_selected_action": [campaign.pk]},
    )

    assert "cannot pause it" in said(response)[0]


def test_retry_failed_queues_the_failed_messages_again(member_client, organization):
    campaign = launched_campaign(organization)
    Campaign.objects.filter(pk=campaign.pk).update(status="completed")
    logs_for(campaign, statuses={LogStatus.FAILED: 2, LogStatus.DELIVERED: 1})
    campaign.dispatch.failed = 2
    campaign.dispatch.save()

    response = member_client.post(
        reverse("admin:campaigns_campaign_act", args=[campaign.pk, "retry_failed"])
    )

    assert said(response) == [f"“{campaign}” 2 failed message(s) queued again."]
    assert campaign.dispatch.logs.filter(status=LogStatus.PENDING).count() == 2


def test_rerun_dead_chunks_requeues_them(member_client, organization):
    campaign = launched_campaign(organization)
    CampaignChunk.objects.create(
        campaign=campaign,
        index=0,
        job_id="dead-0",
        lead_ids=[1],
        status=CampaignChunk.Status.DEAD,
        created_at=campaign.created_at,
    )

    response = member_client.post(
        reverse("admin:campaigns_campaign_act", args=[campaign.pk, "rerun_dead"])
    )

    assert said(response) == [f"“{campaign}” 1 dead chunk(s) queued again."]
    assert campaign.chunks.get().status == CampaignChunk.Status.QUEUED


def test_the_campaign_page_shows_progress_funnel_chart_and_failure_codes(
    member_client, organization
):
    campaign = launched_campaign(organization, total_leads=6)
    logs_for(campaign, statuses={LogStatus.DELIVERED: 3})
    logs_for(campaign, statuses={LogStatus.FAILED: 2}, error_code="spam")
    logs_for(campaign, statuses={LogStatus.FAILED: 1}, error_code="invalid_number")
    dispatch = campaign.dispatch
    dispatch.audience, dispatch.sent, dispatch.delivered, dispatch.failed = 6, 3, 3, 3
    dispatch.expected_audience = 6
    dispatch.save()

    response = member_client.get(
        reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    )

    dashboard = response.context["dashboard"]
    assert dashboard["percent"] == 100.0
    assert dashboard["failure_codes"] == [("spam", 2), ("invalid_number", 1)]
    page = response.content.decode()
    assert '<progress id="campaign-progress" max="100" value="100.0">' in page
    assert 'data-counter="delivered">3<' in page
    assert "funnel-delivered" in page
    assert 'class="bar bar-sent"' in page and 'data-value="3"' in page


def test_a_post_is_needed_to_act(member_client, organization):
    campaign = CampaignFactory(organization=organization)

    response = member_client.get(
        reverse("admin:campaigns_campaign_act", args=[campaign.pk, "launch"])
    )

    assert response.status_code == 405


def change_form(campaign, **overrides):
    return {
        "name": campaign.name,
        "channel": campaign.channel,
        "segment": campaign.segment_id,
        "subject": campaign.subject,
        "template": campaign.template,
        "chunk_size": campaign.chunk_size or "",
        "scheduled_at_0": "",
        "scheduled_at_1": "",
        **overrides,
    }


@pytest.mark.parametrize("scheduled", [False, True])
def test_saving_a_launched_campaigns_form_changes_nothing(
    member_client, organization, scheduled
):
    # Given a running campaign whose scheduled time has passed
    campaign = launched_campaign(organization)
    past = {"scheduled_at_0": "2020-01-01", "scheduled_at_1": "09:00"}
    Campaign.objects.filter(pk=campaign.pk).update(
        scheduled_at="2020-01-01T09:00Z" if scheduled else None
    )
    campaign.refresh_from_db()

    # When a crafted POST saves its change form with other content
    member_client.post(
        reverse("admin:campaigns_campaign_change", args=[campaign.pk]),
        change_form(
            campaign, name="Renamed", template="Changed", **(past if scheduled else {})
        ),
    )

    # Then it is still running with its content, and beat launches nothing again
    stored = Campaign.objects.get(pk=campaign.pk)
    assert (stored.status, stored.name, stored.template) == (
        Campaign.Status.RUNNING,
        campaign.name,
        campaign.template,
    )
    assert lifecycle.campaign_launch_due(now=timezone.now()) == []
    assert stored.dispatch_id == campaign.dispatch_id


def test_a_campaign_launched_while_its_form_was_open_is_not_reset(
    member_client, organization, monkeypatch
):
    # Given a form opened on a draft that has been launched since
    campaign = launched_campaign(organization)
    stale = Campaign.objects.get(pk=campaign.pk)
    stale.status = Campaign.Status.DRAFT
    monkeypatch.setattr(CampaignAdmin, "get_object", lambda *args, **kwargs: stale)

    # When the form is saved
    response = member_client.post(
        reverse("admin:campaigns_campaign_change", args=[campaign.pk]),
        change_form(campaign, name="Renamed"),
        follow=True,
    )

    # Then the campaign is left running as it was, and the page says why
    stored = Campaign.objects.get(pk=campaign.pk)
    assert (stored.status, stored.name) == (Campaign.Status.RUNNING, campaign.name)
    assert any("cannot edit it" in message for message in said(response))


@pytest.mark.parametrize("status", ["running", "paused"])
def test_a_campaign_still_sending_cannot_be_deleted_from_the_admin(
    client, organization, status
):
    # Given an owner, and a campaign still sending or paused mid-way
    owner = MembershipFactory(
        organization=organization,
        user=UserFactory(is_staff=True),
        role=Membership.Role.OWNER,
    ).user
    client.force_login(owner)
    campaign = launched_campaign(organization)
    Campaign.objects.filter(pk=campaign.pk).update(status=status)

    # When they delete it from its page, and with the changelist's bulk action
    client.post(
        reverse("admin:campaigns_campaign_delete", args=[campaign.pk]),
        {"post": "yes"},
    )
    client.post(
        reverse("admin:campaigns_campaign_changelist"),
        {"action": "delete_selected", "_selected_action": [campaign.pk], "post": "yes"},
    )

    # Then it is still there, to be paused or cancelled
    assert Campaign.objects.filter(pk=campaign.pk, status=status).exists()


def test_the_campaign_page_counts_messages_without_receipt(member_client, organization):
    # given a campaign whose two sent messages got no receipt in time
    campaign = launched_campaign(organization, total_leads=2)
    logs_for(campaign, statuses={LogStatus.NO_RECEIPT: 2})
    dispatch = campaign.dispatch
    dispatch.audience = dispatch.sent = dispatch.no_receipt = 2
    dispatch.expected_audience = 2
    dispatch.save()

    # when its page is shown
    response = member_client.get(
        reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    )

    # then they are counted, as final
    page = response.content.decode()
    assert 'data-counter="no_receipt">2<' in page
    assert response.context["dashboard"]["percent"] == 100.0
