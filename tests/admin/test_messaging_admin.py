"""Messages and receipts: filters, the retry action, and the dead-letter page."""

from datetime import UTC, datetime

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from campaigns.models import CampaignChunk
from messaging.models import DeliveryReceipt, LogStatus
from messaging.services.inbound import inbound_handle
from tests.crm.factories import LeadFactory
from tests.messaging.factories import CommunicationLogFactory, DispatchFactory
from tests.support.campaigns import launched_campaign, logs_for
from vendors.base import InboundMessage

pytestmark = pytest.mark.django_db

LOGS = "admin:messaging_communicationlog_changelist"


def shown(response) -> set[int]:
    return {row.pk for row in response.context["cl"].result_list}


@pytest.fixture
def run(organization):
    campaign = launched_campaign(organization)
    delivered = logs_for(campaign, statuses={LogStatus.DELIVERED: 2})
    spam = logs_for(campaign, statuses={LogStatus.FAILED: 2}, error_code="spam")
    bounce = logs_for(campaign, statuses={LogStatus.FAILED: 1}, error_code="bounce")
    campaign.dispatch.audience, campaign.dispatch.failed = 5, 3
    campaign.dispatch.save()
    return campaign, delivered, spam, bounce


def test_logs_filter_by_status_error_code_and_campaign(
    member_client, run, organization
):
    campaign, delivered, spam, bounce = run
    other = logs_for(
        launched_campaign(organization),
        statuses={LogStatus.FAILED: 1},
        error_code="carrier_timeout",
    )

    by_status = member_client.get(reverse(LOGS), {"status__exact": "delivered"})
    by_code = member_client.get(reverse(LOGS), {"error_code": "spam"})
    by_campaign = member_client.get(reverse(LOGS), {"dispatch": campaign.dispatch_id})

    assert shown(by_status) == {log.pk for log in delivered}
    assert shown(by_code) == {log.pk for log in spam}
    assert shown(by_campaign) == {log.pk for log in delivered + spam + bounce}
    assert other[0].pk not in shown(by_campaign)


def test_error_code_choices_come_with_their_counts(member_client, run):
    response = member_client.get(reverse(LOGS))

    assert "spam (2)" in response.content.decode()
    assert "bounce (1)" in response.content.decode()


def test_the_exhausted_filter_lists_dead_letters(member_client, run, settings):
    _, _, spam, bounce = run
    bounce[0].attempts = 1  # a permanent failure on the first attempt
    bounce[0].save()

    response = member_client.get(reverse(LOGS), {"retries": "exhausted"})

    assert shown(response) == {log.pk for log in spam}


def test_retry_action_requeues_only_the_selected_failed_logs(member_client, run):
    _, delivered, spam, bounce = run

    response = member_client.post(
        reverse(LOGS),
        {
            "action": "retry_selected",
            "_selected_action": [spam[0].pk, delivered[0].pk],
        },
    )

    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == [
        "1 failed message(s) queued again; 1 not failed (or in a "
        "cancelled run), left alone"
    ]
    spam[0].refresh_from_db()
    spam[1].refresh_from_db()
    assert (spam[0].status, spam[0].attempts) == (LogStatus.PENDING, 0)
    assert spam[1].status == LogStatus.FAILED


def test_receipts_filter_by_status_and_error_code(member_client, run):
    _, delivered, spam, _ = run
    ok = DeliveryReceipt.objects.create(
        vendor="simulator", vendor_ref="r1", status="DELIVERED", log=delivered[0]
    )
    DeliveryReceipt.objects.create(
        vendor="simulator",
        vendor_ref="r2",
        status="UNDELIVERED",
        error_code="spam",
        log=spam[0],
    )

    url = reverse("admin:messaging_deliveryreceipt_changelist")
    response = member_client.get(url, {"status__exact": "DELIVERED"})
    assert shown(response) == {ok.pk}
    response = member_client.get(url, {"error_code": "spam"})
    assert len(shown(response)) == 1


def test_the_dead_letter_page_lists_dead_chunks_and_exhausted_logs(member_client, run):
    campaign, _, spam, bounce = run
    bounce[0].attempts = 1  # failed for good at once: not a retry exhausted
    bounce[0].save()
    CampaignChunk.objects.create(
        campaign=campaign,
        index=0,
        job_id="job-dead",
        lead_ids=[1, 2, 3],
        status=CampaignChunk.Status.DEAD,
        attempts=5,
        last_error="OperationalError: gone",
        created_at=campaign.created_at,
    )

    response = member_client.get(reverse("admin:campaigns_dead_letter"))

    page = response.content.decode()
    assert response.context["chunk_total"] == 1
    assert response.context["log_total"] == 2
    assert "job-dead" in page and "OperationalError: gone" in page
    assert spam[0].send_id in page
    rerun = reverse("admin:campaigns_campaign_act", args=[campaign.pk, "rerun_dead"])
    assert rerun in page


def test_logs_cannot_be_edited_by_hand(member_client, run):
    _, delivered, _, _ = run

    response = member_client.get(
        reverse("admin:messaging_communicationlog_change", args=[delivered[0].pk])
    )

    assert response.status_code == 200
    assert response.context["has_change_permission"] is False


def test_a_huge_message_list_is_counted_only_up_to_a_cap(
    member_client, run, monkeypatch
):
    from crm.admin_scoping import CappedCountPaginator

    monkeypatch.setattr(CappedCountPaginator, "CAP", 3)

    response = member_client.get(reverse(LOGS))

    assert response.context["cl"].result_count == 3


def sent_to(lead) -> None:
    CommunicationLogFactory(
        dispatch=DispatchFactory(organization=lead.organization),
        lead=lead,
        status=LogStatus.SENT,
        sent_at=timezone.now(),
        next_attempt_at=None,
    )


def reply_from(number: str, body: str) -> None:
    inbound_handle(
        messages=[
            InboundMessage(
                channel="sms", sender=number, body=body, received_at=datetime.now(UTC)
            )
        ]
    )


def test_a_member_reads_replies_to_their_messages_and_never_to_anothers(
    member_client, organization, other_organization
):
    # Given a reply to the member's organization's message, and one to another's
    sent_to(LeadFactory(organization=organization, phones=["+12025550146"]))
    reply_from("+12025550146", "See you Monday")
    their_number = "+12025550147"
    sent_to(LeadFactory(organization=other_organization, phones=[their_number]))
    reply_from(their_number, "My card ends 4242")

    # When the member adds a lead with the other's number and opens the replies
    LeadFactory(organization=organization, phones=[their_number])
    response = member_client.get(reverse("admin:messaging_inboundreply_changelist"))

    # Then they read their own reply only
    assert response.status_code == 200
    assert [reply.body for reply in response.context["cl"].result_list] == [
        "See you Monday"
    ]
    assert "4242" not in response.content.decode()
