"""Workers killed between claim and record lose nothing and send nothing twice."""

import signal

import psutil
import pytest
from django.db.models import Count

from campaigns.models import Campaign
from campaigns.services.lifecycle import campaign_launch
from messaging.models import CommunicationLog, LogStatus
from messaging.services.dispatches import dispatch_reconcile
from tests.campaigns.factories import CampaignFactory
from tests.crm.factories import LeadFactory, OrganizationFactory, SegmentFactory
from tests.support.workers import accepted_counts, beat_duties, wait_for
from vendors.registry import get_adapter

pytestmark = pytest.mark.integration


def kill_hard(processes) -> None:
    """SIGKILL each worker and its pool children: no shutdown, no acks, no cleanup."""
    for process in processes:
        worker = psutil.Process(process.pid)
        for child in worker.children(recursive=True):
            child.send_signal(signal.SIGKILL)
        worker.send_signal(signal.SIGKILL)
        process.wait(timeout=10)


def test_a_worker_killed_while_the_vendor_answers_loses_nothing(start_workers):
    organization = OrganizationFactory()
    leads = LeadFactory.create_batch(60, organization=organization)
    segment = SegmentFactory(
        organization=organization, rules={"field": "visits", "op": "gte", "value": 0}
    )
    campaign = CampaignFactory(organization=organization, segment=segment)
    simulator = get_adapter("simulator")
    simulator.reset()
    # Each vendor call takes 4 s, the answer's half after the vendor has accepted:
    # a wide window in which accepted messages are still only claimed.
    first = start_workers(
        2,
        SIMULATOR_LATENCY_MS="4000",
        SIMULATOR_SUCCESS_RATE="1.0",
        MESSAGING_STUCK_AFTER_SECONDS="3",
    )
    campaign_launch(campaign_id=campaign.pk)

    def accepted_but_unrecorded() -> set[str]:
        claimed = set(
            CommunicationLog.objects.filter(
                dispatch__campaign=campaign, status=LogStatus.PROCESSING
            ).values_list("send_id", flat=True)
        )
        return claimed & set(simulator.accepted_counts())

    wait_for(lambda: bool(accepted_but_unrecorded()), timeout=60, every=0.05)
    kill_hard(first)
    orphans = accepted_but_unrecorded()
    assert orphans, "the workers recorded the batch before they were killed"

    start_workers(1, SIMULATOR_SUCCESS_RATE="1.0", MESSAGING_STUCK_AFTER_SECONDS="3")
    wait_for(
        lambda: (
            Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.COMPLETED
        ),
        timeout=120,
        tick=beat_duties,
    )

    campaign.refresh_from_db()
    logs = CommunicationLog.objects.filter(dispatch=campaign.dispatch_id)
    per_lead = dict(logs.values_list("lead_id").annotate(n=Count("id")))
    assert per_lead == {lead.pk: 1 for lead in leads}
    assert not logs.exclude(
        status__in=[LogStatus.DELIVERED, LogStatus.FAILED, LogStatus.SKIPPED]
    ).exists()
    # The orphans were claimed again by the new worker, and the vendor answered the
    # repeated send id with the message it already had.
    assert set(logs.filter(send_id__in=orphans).values_list("attempts", flat=True)) == {
        2
    }
    accepted = accepted_counts(simulator, logs.values_list("send_id", flat=True))
    assert set(accepted.values()) == {1}
    assert len(accepted) == logs.exclude(sent_at=None).count() == len(leads)
    assert (
        dispatch_reconcile(dispatch_id=campaign.dispatch_id, repair=False).differences
        == {}
    )
