"""Quiet hours, the transactional night and the frequency cap: nobody is texted at
3 a.m. their time, nobody is flooded, and what waits is sent when its time comes."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from automations.models import AutomationDispatch
from automations.selectors import reminders_due
from automations.services.reminders import reminders_send
from campaigns.models import Campaign
from campaigns.services import expansion
from crm.models import Organization
from messaging.models import CommunicationLog, Dispatch, LogStatus
from messaging.services.logs import NewLog, logs_create
from messaging.services.outbound import dispatches_send_due
from messaging.services.receipts import receipts_process, receipts_store
from messaging.services.sending import logs_send_due
from messaging.services.sending_rules import window_opening
from tests.automations.factories import AppointmentFactory
from tests.messaging.factories import CommunicationLogFactory, DispatchFactory
from tests.support.campaigns import expand_all, launched_and_chunked
from tests.support.messaging import assert_counters_match_logs, pending_logs
from tests.support.scripted_vendor import ScriptedVendor, accept
from vendors.base import Receipt

pytestmark = pytest.mark.django_db

UTC = dt.UTC
# 03:00 UTC is 22:00 the evening before in New York (EST, UTC-5) and 04:00 in Paris.
NIGHT = dt.datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
NEW_YORK_MORNING = dt.datetime(2026, 3, 2, 13, 0, tzinfo=UTC)  # 08:00 EST
PARIS_MORNING = dt.datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # 08:00 CET


def with_rules(organization: Organization, **rules) -> None:
    """The organization's sending rules: quiet hours 08:00-21:00 and the night
    22:00-07:00 (the defaults), unless given."""
    fields = {
        "quiet_hours_enabled": True,
        "quiet_hours_start": dt.time(8),
        "quiet_hours_end": dt.time(21),
        "transactional_night_start": dt.time(22),
        "transactional_night_end": dt.time(7),
        **rules,
    }
    Organization.objects.filter(pk=organization.pk).update(**fields)


def expand_and_claim(campaign: Campaign) -> list:
    """Expand every chunk as the expand task does (sendable logs created claimed);
    the logs created claimed, to be sent at once."""
    claimed = []
    for job_id in campaign.chunks.values_list("job_id", flat=True):
        result = expansion.chunk_expand(job_id=job_id, claim=True)
        claimed += result.claimed
    return claimed


def deliver_everything_sent(dispatch_id: int) -> None:
    logs = CommunicationLog.objects.filter(dispatch=dispatch_id, status="sent")
    receipts_store(
        vendor="scripted",
        receipts=[
            Receipt(log.vendor_ref, "DELIVERED", None, log.sent_at, {}) for log in logs
        ],
    )
    receipts_process()


def test_marketing_at_night_in_the_leads_zone_waits_for_its_morning(time_machine):
    # given a campaign whose lead is in New York, expanded at 22:00 there
    time_machine.move_to(NIGHT, tick=False)
    campaign = launched_and_chunked(1)
    with_rules(campaign.organization)
    campaign.organization.leads.update(timezone="America/New_York")

    # when its chunk is expanded (which normally sends at once)
    claimed = expand_and_claim(campaign)

    # then nothing is sent now: the message is pending, due at 08:00 New York time
    assert claimed == []
    log = CommunicationLog.objects.get(dispatch=campaign.dispatch_id)
    assert (log.status, log.attempts) == (LogStatus.PENDING, 0)
    assert log.next_attempt_at == NEW_YORK_MORNING
    campaign.dispatch.refresh_from_db()
    assert (campaign.dispatch.pending, campaign.dispatch.skipped) == (1, 0)
    assert_counters_match_logs(campaign.dispatch)


@pytest.mark.parametrize("lead_zone", ["", "Mars/Olympus_Mons"], ids=["none", "bad"])
def test_a_lead_without_a_known_zone_waits_for_the_morning_in_the_organizations(
    lead_zone, time_machine
):
    time_machine.move_to(NIGHT, tick=False)
    campaign = launched_and_chunked(1)
    with_rules(campaign.organization, time_zone="Europe/Paris")
    campaign.organization.leads.update(timezone=lead_zone)

    expand_all(campaign)

    log = CommunicationLog.objects.get(dispatch=campaign.dispatch_id)
    assert log.next_attempt_at == PARIS_MORNING


def test_marketing_inside_the_window_goes_out_at_once(time_machine):
    time_machine.move_to(NEW_YORK_MORNING + dt.timedelta(hours=2), tick=False)
    campaign = launched_and_chunked(2)
    with_rules(campaign.organization)

    claimed = expand_and_claim(campaign)

    assert len(claimed) == 2


def test_the_deferred_message_is_sent_when_due_and_the_campaign_completes(
    time_machine, monkeypatch
):
    # given a campaign deferred overnight
    time_machine.move_to(NIGHT, tick=False)
    campaign = launched_and_chunked(2)
    with_rules(campaign.organization)
    expand_and_claim(campaign)
    vendor = ScriptedVendor(accept)

    # then before the morning beat's dispatcher finds nothing due, a send nothing
    time_machine.move_to(NEW_YORK_MORNING - dt.timedelta(minutes=1), tick=False)
    assert dispatches_send_due(now=timezone.now()) == 0
    assert logs_send_due(dispatch_id=campaign.dispatch_id, adapter=vendor).sent == 0

    # when the morning comes, beat's dispatcher enqueues the send, which sends them
    time_machine.move_to(NEW_YORK_MORNING + dt.timedelta(seconds=30), tick=False)
    enqueued = []
    monkeypatch.setattr(
        "messaging.services.outbound.enqueue", lambda *args, **_: enqueued.append(args)
    )
    assert dispatches_send_due(now=timezone.now()) == 1
    assert enqueued == [("messaging.send_batch", campaign.dispatch_id)]
    assert logs_send_due(dispatch_id=campaign.dispatch_id, adapter=vendor).sent == 2

    # and once their receipts come the campaign's dispatch completes
    deliver_everything_sent(campaign.dispatch_id)
    campaign.dispatch.refresh_from_db()
    assert campaign.dispatch.status == Dispatch.Status.COMPLETED
    assert_counters_match_logs(campaign.dispatch)


def test_a_retry_falling_due_at_night_waits_for_the_morning(time_machine):
    time_machine.move_to(NIGHT, tick=False)
    dispatch = DispatchFactory()
    with_rules(dispatch.organization)
    log = CommunicationLogFactory(
        dispatch=dispatch, lead__timezone="America/New_York", attempts=1
    )
    vendor = ScriptedVendor(accept)

    outcome = logs_send_due(dispatch_id=dispatch.pk, adapter=vendor)

    log.refresh_from_db()
    assert outcome.claimed == 0 and vendor.calls == []
    assert (log.status, log.attempts) == (LogStatus.PENDING, 1)
    assert log.next_attempt_at == NEW_YORK_MORNING


def test_a_reminder_is_exempt_from_quiet_hours_but_not_sent_at_night(time_machine):
    # given an organization in New York time with a reminder due at 21:30 there,
    # past the marketing window, and one due at 23:30
    evening = dt.datetime(2026, 3, 2, 2, 30, tzinfo=UTC)  # 21:30 EST
    time_machine.move_to(evening, tick=False)
    early = AppointmentFactory(starts_at=evening + dt.timedelta(hours=2))
    with_rules(early.organization, time_zone="America/New_York")
    early.lead.timezone = ""
    early.lead.save()

    # when the reminders are created at 21:30 and at 23:30
    def scan():
        for org, jobs in reminders_due(now=timezone.now()).items():
            reminders_send(org_id=org, jobs=jobs)

    scan()
    time_machine.move_to(evening + dt.timedelta(hours=2), tick=False)
    late = AppointmentFactory(
        organization=early.organization,
        lead__timezone="",
        starts_at=timezone.now() + dt.timedelta(hours=2),
    )
    scan()

    # then the first is due at once, the second at 07:00 the next morning
    dispatch = AutomationDispatch.objects.get(organization=early.organization).dispatch
    assert dispatch.transactional
    by_lead = {log.lead_id: log for log in dispatch.logs.all()}
    assert by_lead[early.lead_id].next_attempt_at == evening
    assert by_lead[late.lead_id].next_attempt_at == dt.datetime(
        2026, 3, 2, 12, 0, tzinfo=UTC
    )
    assert {log.status for log in by_lead.values()} == {LogStatus.PENDING}


def earlier_marketing(lead, count: int, *, transactional: bool = False, days=1):
    """`count` messages sent to the lead `days` ago by another dispatch."""
    dispatch = DispatchFactory(
        organization=lead.organization, transactional=transactional
    )
    for index in range(count):
        log = CommunicationLogFactory(
            dispatch=dispatch,
            lead=lead,
            dedupe_key=f"{lead.pk}-{index}",
            status=LogStatus.DELIVERED,
            next_attempt_at=None,
            sent_at=timezone.now(),
        )
        CommunicationLog.objects.filter(pk=log.pk).update(
            created_at=timezone.now() - dt.timedelta(days=days)
        )


def test_a_lead_at_its_frequency_cap_is_skipped_others_are_not():
    campaign = launched_and_chunked(3)
    with_rules(
        campaign.organization,
        quiet_hours_enabled=False,
        frequency_cap_count=2,
        frequency_cap_days=7,
    )
    capped, below, long_ago = campaign.organization.leads.order_by("pk")
    earlier_marketing(capped, 2)
    earlier_marketing(below, 1)
    earlier_marketing(long_ago, 3, days=8)

    expand_all(campaign)

    logs = {
        log.lead_id: log
        for log in CommunicationLog.objects.filter(dispatch=campaign.dispatch_id)
    }
    assert (logs[capped.pk].status, logs[capped.pk].skip_reason) == (
        LogStatus.SKIPPED,
        "frequency_cap",
    )
    assert logs[below.pk].status == LogStatus.PENDING
    assert logs[long_ago.pk].status == LogStatus.PENDING
    assert_counters_match_logs(campaign.dispatch)


def test_transactional_messages_neither_count_nor_are_capped():
    campaign = launched_and_chunked(1)
    with_rules(campaign.organization, quiet_hours_enabled=False, frequency_cap_count=1)
    lead = campaign.organization.leads.get()
    earlier_marketing(lead, 5, transactional=True)

    expand_all(campaign)
    reminders = DispatchFactory(organization=lead.organization, transactional=True)
    earlier_marketing(lead, 1)
    logs_create(
        dispatch_id=reminders.pk,
        channel="sms",
        logs=[NewLog(lead.pk, "reminder", f"send-r-{lead.pk}", lead.phone, "Hi")],
    )

    assert CommunicationLog.objects.get(dispatch=campaign.dispatch_id).status == (
        LogStatus.PENDING
    )
    assert reminders.logs.get().status == LogStatus.PENDING


def test_the_frequency_cap_is_off_by_default():
    campaign = launched_and_chunked(1)
    assert campaign.organization.frequency_cap_count is None
    earlier_marketing(campaign.organization.leads.get(), 20)

    expand_all(campaign)

    assert CommunicationLog.objects.get(dispatch=campaign.dispatch_id).status == (
        LogStatus.PENDING
    )


def test_a_sequences_earlier_steps_and_its_batch_count_against_the_cap():
    dispatch = DispatchFactory()
    with_rules(dispatch.organization, quiet_hours_enabled=False, frequency_cap_count=2)
    (first,) = pending_logs(dispatch, 1)

    logs_create(
        dispatch_id=dispatch.pk,
        channel="sms",
        logs=[
            NewLog(first.lead_id, f"again-{n}", f"send-again-{n}", first.recipient, "x")
            for n in range(3)
        ],
    )

    statuses = sorted(dispatch.logs.values_list("status", "skip_reason"))
    assert statuses == [
        ("pending", ""),
        ("pending", ""),
        ("skipped", "frequency_cap"),
        ("skipped", "frequency_cap"),
    ]


@pytest.mark.parametrize(
    ("local", "opens", "closes", "expected"),
    [
        (dt.datetime(2026, 3, 2, 7, 59), dt.time(8), dt.time(21), "03-02 08:00"),
        (dt.datetime(2026, 3, 2, 8, 0), dt.time(8), dt.time(21), None),
        (dt.datetime(2026, 3, 2, 21, 0), dt.time(8), dt.time(21), "03-03 08:00"),
        (dt.datetime(2026, 3, 2, 23, 0), dt.time(7), dt.time(22), "03-03 07:00"),
        (dt.datetime(2026, 3, 2, 3, 0), dt.time(7), dt.time(22), "03-02 07:00"),
        (dt.datetime(2026, 3, 2, 3, 0), dt.time(22), dt.time(6), None),
        (dt.datetime(2026, 3, 2, 12, 0), dt.time(22), dt.time(6), "03-02 22:00"),
        (dt.datetime(2026, 3, 2, 3, 0), dt.time(0), dt.time(0), None),
    ],
)
def test_the_window_opens_next_at_its_start_in_local_time(
    local, opens, closes, expected
):
    zone = ZoneInfo("America/New_York")
    opening = window_opening(
        now=local.replace(tzinfo=zone), zone=zone, opens=opens, closes=closes
    )
    if expected is None:
        assert opening is None
    else:
        assert opening.astimezone(zone).strftime("%m-%d %H:%M") == expected
