"""Content bounds: checked when a campaign or a nurture step is saved, and kept by
every rendering, so no lead's data can stop an expansion or a nurture step."""

import pytest
from django.core.exceptions import ValidationError

from campaigns.admin.forms import CampaignAdminForm
from campaigns.models import Campaign
from campaigns.services import expansion, lifecycle
from crm.models import Channel
from messaging.models import CommunicationLog, LogStatus
from tests.campaigns.factories import CampaignFactory
from tests.crm.factories import LeadFactory, OrganizationFactory, SegmentFactory
from tests.support.campaigns import EVERYONE

pytestmark = pytest.mark.django_db

LONG_NAME = "N" * 190
LONG_SUBJECT = "S" * 190 + " for {{name}}"  # 200 characters as written
SMS_LIMIT = 1600


def launched_and_chunked(campaign: Campaign) -> Campaign:
    lifecycle.campaign_launch(campaign_id=campaign.pk)
    expansion.campaign_chunk_audience(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    return campaign


def test_an_email_subject_rendered_past_the_column_is_cut_and_sent():
    # given an email campaign whose 200-character subject names leads of 190
    organization = OrganizationFactory()
    LeadFactory.create_batch(3, organization=organization, name=LONG_NAME)
    segment = SegmentFactory(organization=organization, rules=EVERYONE)
    campaign = launched_and_chunked(
        CampaignFactory(
            organization=organization,
            segment=segment,
            channel=Channel.EMAIL,
            subject=LONG_SUBJECT,
            template="Hello {{name}}",
        )
    )

    # when its chunk is expanded
    for job_id in campaign.chunks.values_list("job_id", flat=True):
        expansion.chunk_expand(job_id=job_id)

    # then every message is pending, its subject cut to 255 with an ellipsis
    logs = CommunicationLog.objects.filter(dispatch=campaign.dispatch_id)
    assert set(logs.values_list("status", flat=True)) == {LogStatus.PENDING}
    subject = logs.first().subject
    assert len(subject) == 255
    assert subject.startswith("S" * 190 + " for NNN")
    assert subject.endswith("…")


def test_an_sms_rendered_past_the_vendor_limit_is_skipped_and_the_rest_go():
    # given an SMS campaign quoting an attribute, one lead's far too long
    organization = OrganizationFactory()
    LeadFactory.create_batch(2, organization=organization, attributes={"note": "ok"})
    long = LeadFactory(organization=organization, attributes={"note": "x" * 2000})
    segment = SegmentFactory(organization=organization, rules=EVERYONE)
    campaign = launched_and_chunked(
        CampaignFactory(
            organization=organization,
            segment=segment,
            template="Note: {{attributes.note}}",
        )
    )

    # when its chunk is expanded
    for job_id in campaign.chunks.values_list("job_id", flat=True):
        expansion.chunk_expand(job_id=job_id)

    # then that lead's message is skipped with the reason, the others pending
    logs = CommunicationLog.objects.filter(dispatch=campaign.dispatch_id)
    by_lead = {log.lead_id: (log.status, log.skip_reason) for log in logs}
    assert by_lead.pop(long.pk) == (LogStatus.SKIPPED, "body_too_long")
    assert set(by_lead.values()) == {(LogStatus.PENDING, "")}


def campaign_fields(**overrides) -> dict:
    organization = OrganizationFactory()
    return {
        "organization": organization,
        "name": "Bounds",
        "channel": Channel.SMS,
        "segment": SegmentFactory(organization=organization, rules=EVERYONE),
        "template": "Hi {{name}}",
        **overrides,
    }


def test_saving_an_sms_template_longer_than_vendors_take_is_refused():
    # given an SMS template of 1,601 characters; when the campaign is created
    with pytest.raises(ValidationError) as error:
        lifecycle.campaign_create(**campaign_fields(template="x" * (SMS_LIMIT + 1)))

    # then the template is named with the bound
    assert "1600" in error.value.message_dict["template"][0]


def test_saving_a_subject_longer_than_the_column_is_refused():
    # given a 256-character subject; when the email campaign is created
    with pytest.raises(ValidationError) as error:
        lifecycle.campaign_create(
            **campaign_fields(channel=Channel.EMAIL, subject="s" * 256)
        )

    # then the subject is named with the bound
    assert "255" in error.value.message_dict["subject"][0]


def test_the_admin_form_refuses_an_sms_template_too_long():
    # given the campaign form with a template of 1,601 characters
    fields = campaign_fields(template="x" * (SMS_LIMIT + 1))
    form = CampaignAdminForm(
        data={
            **fields,
            "organization": fields["organization"].pk,
            "segment": fields["segment"].pk,
        }
    )

    # when it is validated; then the error is at the template
    assert not form.is_valid()
    assert "1600" in form.errors["template"][0]


def test_a_campaign_quoting_an_attribute_sends_each_leads_value():
    # given an SMS campaign quoting each lead's plan
    organization = OrganizationFactory()
    LeadFactory(organization=organization, attributes={"plan": "gold"})
    LeadFactory(organization=organization, attributes={})
    segment = SegmentFactory(organization=organization, rules=EVERYONE)
    campaign = launched_and_chunked(
        CampaignFactory(
            organization=organization,
            segment=segment,
            template="Plan: {{attributes.plan}}.",
        )
    )

    # when its chunk is expanded
    for job_id in campaign.chunks.values_list("job_id", flat=True):
        expansion.chunk_expand(job_id=job_id)

    # then each message says the lead's own plan (empty when it has none)
    logs = CommunicationLog.objects.filter(dispatch=campaign.dispatch_id)
    assert sorted(logs.values_list("body", flat=True)) == ["Plan: .", "Plan: gold."]


def test_a_lead_whose_rendering_fails_is_skipped_and_the_rest_go(monkeypatch, caplog):
    # given a campaign where rendering one lead's message raises
    organization = OrganizationFactory()
    good = LeadFactory(organization=organization)
    bad = LeadFactory(organization=organization, name="Bad Data")
    segment = SegmentFactory(organization=organization, rules=EVERYONE)
    campaign = launched_and_chunked(
        CampaignFactory(organization=organization, segment=segment)
    )
    real_renderer = expansion.renderer

    def renderer(template):
        render = real_renderer(template)

        def render_one(lead):
            if lead.id == bad.pk:
                raise ValueError(f"cannot render {lead.name}")
            return render(lead)

        return render_one

    monkeypatch.setattr(expansion, "renderer", renderer)

    # when its chunk is expanded
    for job_id in campaign.chunks.values_list("job_id", flat=True):
        expansion.chunk_expand(job_id=job_id)

    # then that message is skipped with the reason, logged without the lead's data
    logs = CommunicationLog.objects.filter(dispatch=campaign.dispatch_id)
    by_lead = {log.lead_id: (log.status, log.skip_reason) for log in logs}
    assert by_lead == {
        good.pk: (LogStatus.PENDING, ""),
        bad.pk: (LogStatus.SKIPPED, "render_failed"),
    }
    assert "ValueError" in caplog.text
    assert "Bad Data" not in caplog.text
