"""The operators' commands: launch, status, rerun, retry and reconcile, as typed."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from campaigns.models import Campaign, CampaignChunk
from campaigns.services import expansion
from messaging.models import Dispatch, LogStatus
from messaging.services.sending import send_due
from tests.support.campaigns import (
    campaign_with_leads,
    expand_all,
    launched_and_chunked,
)
from tests.support.scripted_vendor import ScriptedVendor, fail

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_launch_campaign_says_how_the_audience_was_cut():
    campaign = campaign_with_leads(120)

    output = run("launch_campaign", str(campaign.pk))

    assert output.strip() == (
        f"launched campaign {campaign.pk}: 120 leads in 2 chunks of 100"
    )
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.RUNNING


def test_launch_campaign_refuses_a_campaign_twice_with_the_reason():
    campaign = campaign_with_leads(1)
    run("launch_campaign", str(campaign.pk))

    with pytest.raises(CommandError, match="only a draft or scheduled"):
        run("launch_campaign", str(campaign.pk))
    with pytest.raises(CommandError, match="no campaign 0"):
        run("launch_campaign", "0")


def test_campaign_status_prints_the_counters():
    campaign = launched_and_chunked(3)
    expand_all(campaign)

    output = run("campaign_status", str(campaign.pk))

    assert output.splitlines()[0] == f"{campaign.name} [running]"
    assert "audience: 3" in output
    assert "pending: 3" in output


def test_reconcile_stats_repairs_counters_and_says_what_it_repaired():
    campaign = launched_and_chunked(4)
    expand_all(campaign)
    Dispatch.objects.filter(pk=campaign.dispatch_id).update(pending=1, sent=7)

    with pytest.raises(CommandError, match="1 campaign"):
        run("reconcile_stats", str(campaign.pk), "--check")
    output = run("reconcile_stats", "--all")

    assert f"campaign {campaign.pk}: pending repaired: stored 1, logs say 4" in output
    assert f"campaign {campaign.pk}: sent repaired: stored 7, logs say 0" in output
    assert run("reconcile_stats", str(campaign.pk)).strip() == (
        f"campaign {campaign.pk}: counters match the logs"
    )


def test_rerun_campaign_requeues_dead_chunks_and_failed_messages():
    campaign = launched_and_chunked(4, chunk_size=2)
    first, second = campaign.chunks.order_by("index")
    expansion.chunk_expand(job_id=first.job_id)
    expansion.chunk_mark_dead(job_id=second.job_id, error="OperationalError: gone")
    send_due(
        dispatch_id=campaign.dispatch_id,
        adapter=ScriptedVendor(fail("invalid_number", retryable=False)),
    )

    output = run("rerun_campaign", str(campaign.pk))

    assert output.strip() == (
        f"campaign {campaign.pk}: 1 dead chunks requeued, "
        "2 failed messages queued again"
    )
    second.refresh_from_db()
    assert second.status == CampaignChunk.Status.QUEUED
    assert set(campaign.dispatch.logs.values_list("status", flat=True)) == {
        LogStatus.PENDING
    }


def test_retry_failed_queues_failed_messages_of_one_campaign():
    campaign = launched_and_chunked(2)
    expand_all(campaign)
    send_due(
        dispatch_id=campaign.dispatch_id,
        adapter=ScriptedVendor(fail("invalid_number", retryable=False)),
    )

    output = run("retry_failed", "--campaign", str(campaign.pk))

    assert output.strip() == "2 failed messages queued again"
    with pytest.raises(CommandError, match="no launched campaign 0"):
        run("retry_failed", "--campaign", "0")
