"""The nightly retention job: off by default, never past what the snapshots counted."""

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from automations.models import DailySnapshot
from automations.tasks import purge_messages
from messaging.models import CommunicationLog, LogStatus
from messaging.services.dispatches import dispatch_reconcile
from tests.messaging.factories import CommunicationLogFactory, DispatchFactory

pytestmark = pytest.mark.django_db


def delivered_days_ago(dispatch, days: int) -> CommunicationLog:
    log = CommunicationLogFactory(
        dispatch=dispatch, status=LogStatus.DELIVERED, next_attempt_at=None
    )
    when = timezone.now() - dt.timedelta(days=days)
    CommunicationLog.objects.filter(pk=log.pk).update(created_at=when, updated_at=when)
    return log


def snapshot_until(organization, days_ago: int) -> None:
    DailySnapshot.objects.create(
        organization=organization,
        date=timezone.localdate() - dt.timedelta(days=days_ago),
        computed_at=timezone.now(),
    )


def test_retention_is_off_by_default_and_deletes_nothing():
    # given a message a year old, counted by yesterday's snapshot
    dispatch = DispatchFactory()
    log = delivered_days_ago(dispatch, 365)
    snapshot_until(dispatch.organization, 1)

    # when the nightly job runs with the default settings
    result = purge_messages.apply().get()

    # then nothing is deleted
    assert result is None
    assert CommunicationLog.objects.filter(pk=log.pk).exists()


def test_messages_past_retention_are_deleted_and_the_campaign_keeps_its_counts(
    settings,
):
    # given 30 days' retention, messages 40 and 10 days old, snapshots until yesterday
    settings.MESSAGING_RETENTION_DAYS = 30
    dispatch = DispatchFactory()
    delivered_days_ago(dispatch, 40)
    recent = delivered_days_ago(dispatch, 10)
    dispatch_reconcile(dispatch_id=dispatch.pk, repair=True)
    snapshot_until(dispatch.organization, 1)

    # when the nightly job runs
    result = purge_messages.apply().get()

    # then only the old message is gone, and the counters still reconcile
    assert result == {"logs": 1, "receipts": 0}
    assert list(CommunicationLog.objects.values_list("pk", flat=True)) == [recent.pk]
    dispatch.refresh_from_db()
    assert dispatch.delivered == 2
    assert dispatch_reconcile(dispatch_id=dispatch.pk, repair=False).differences == {}


def test_messages_of_days_no_snapshot_counted_yet_are_kept(settings):
    # given 30 days' retention, but one organization's snapshots stopped 60 days ago
    settings.MESSAGING_RETENTION_DAYS = 30
    dispatch = DispatchFactory()
    counted, uncounted = (
        delivered_days_ago(dispatch, 70),
        delivered_days_ago(dispatch, 50),
    )
    snapshot_until(dispatch.organization, 60)

    # when the nightly job runs
    purge_messages.apply().get()

    # then only messages of days a snapshot counted are deleted
    left = set(CommunicationLog.objects.values_list("pk", flat=True))
    assert counted.pk not in left
    assert uncounted.pk in left


def test_a_snapshot_of_a_day_past_retention_is_not_recomputed(settings):
    # given 30 days' retention and a day 40 days ago
    settings.MESSAGING_RETENTION_DAYS = 30
    day = timezone.localdate() - dt.timedelta(days=40)

    # when an operator asks to compute that day again
    with pytest.raises(CommandError, match="past retention"):
        call_command("run_snapshots", date=day.isoformat(), stdout=io.StringIO())


def test_retention_runs_nightly_after_the_snapshots():
    # given the schedules installed
    call_command("setup_schedules", stdout=io.StringIO())

    # when beat reads them
    purge = PeriodicTask.objects.get(task="automations.purge_messages")
    snapshots = PeriodicTask.objects.get(task="automations.snapshot_all")

    # then retention runs daily at 03:00, two hours after the 01:00 snapshots
    assert (purge.crontab.minute, purge.crontab.hour) == ("0", "3")
    assert (snapshots.crontab.minute, snapshots.crontab.hour) == ("0", "1")
