"""Recovery: release work a dead worker left claimed, and send failed logs again."""

from collections import Counter
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crm.models import OPT_OUT_FIELDS
from messaging.models import CommunicationLog, Dispatch, LogStatus
from messaging.services.dispatches import dispatch_counters_add
from messaging.services.inbound import SKIP_REASON as OPTED_OUT
from messaging.services.logs import new_send_id
from messaging.sql import update_from_rows

# A log whose lead has opted out of the log's channel.
_LEAD_OPTED_OUT = Q()
for _channel, _flag in OPT_OUT_FIELDS.items():
    _LEAD_OPTED_OUT |= Q(channel=_channel, **{f"lead__{_flag}": True})


def logs_release_stuck(*, older_than: timedelta) -> int:
    """Put logs claimed longer ago than `older_than` back to pending, due now.

    Their worker died between claim and record. Sending them again is safe: they keep
    their send id, and the vendor answers a known send id with its first result. In
    a dispatch cancelled since, where nothing would send them, they are cancelled.
    """
    now = timezone.now()
    stuck = CommunicationLog.objects.filter(
        status=LogStatus.PROCESSING, claimed_at__lt=now - older_than
    )
    in_cancelled = Q(dispatch__status=Dispatch.Status.CANCELLED)
    with transaction.atomic():
        locked = list(
            stuck.filter(in_cancelled)
            .select_for_update(of=("self",), skip_locked=True)
            .values_list("pk", "dispatch_id")
        )
        CommunicationLog.objects.filter(pk__in=[pk for pk, _ in locked]).update(
            status=LogStatus.CANCELLED, claimed_at=None, updated_at=now
        )
        per_dispatch = Counter(dispatch_id for _, dispatch_id in locked)
        for dispatch_id, count in sorted(per_dispatch.items()):
            dispatch_counters_add(
                dispatch_id=dispatch_id, pending=-count, cancelled=count
            )
    return stuck.exclude(in_cancelled).update(
        status=LogStatus.PENDING, next_attempt_at=now, claimed_at=None, updated_at=now
    )


def logs_retry_failed(
    *, dispatch_ids: list[int] | None = None, log_ids: list[int] | None = None
) -> int:
    """Send failed logs again from a fresh attempt count; return how many.

    `dispatch_ids` and `log_ids` narrow which failed logs (the admin retries the
    ones a user selected).

    A log whose lead has opted out of its channel since is skipped as `opted_out`
    instead: a retry never sends to someone who said STOP.

    A log the vendor accepted and then could not deliver needs a new send id: under
    its old one the vendor would answer with the old acceptance and send nothing.
    What was spent on earlier attempts stays in the log's cost.
    """
    failed = CommunicationLog.objects.filter(status=LogStatus.FAILED).exclude(
        dispatch__status=Dispatch.Status.CANCELLED
    )
    if dispatch_ids is not None:
        failed = failed.filter(dispatch_id__in=dispatch_ids)
    if log_ids is not None:
        failed = failed.filter(pk__in=log_ids)
    retried = 0
    for dispatch_id in failed.values_list("dispatch_id", flat=True).distinct():
        retried += _retry_failed_of(dispatch_id=dispatch_id, log_ids=log_ids)
    return retried


def _retry_failed_of(*, dispatch_id: int, log_ids: list[int] | None = None) -> int:
    now = timezone.now()
    with transaction.atomic():
        Dispatch.objects.select_for_update().filter(pk=dispatch_id).first()
        logs = CommunicationLog.objects.filter(
            dispatch_id=dispatch_id, status=LogStatus.FAILED
        )
        if log_ids is not None:
            logs = logs.filter(pk__in=log_ids)
        opted_out = logs.filter(_LEAD_OPTED_OUT)
        skipped_sent = opted_out.filter(sent_at__isnull=False).count()
        skipped = opted_out.update(
            status=LogStatus.SKIPPED,
            skip_reason=OPTED_OUT,
            next_attempt_at=None,
            sent_at=None,
            updated_at=now,
        )
        were_sent = list(
            logs.filter(sent_at__isnull=False).values_list("pk", flat=True)
        )
        update_from_rows(
            table=CommunicationLog._meta.db_table,
            columns=[("id", "bigint"), ("send_id", "varchar(120)")],
            rows=[
                (pk, new_send_id(scope=f"d{dispatch_id}", key=f"{pk}r"))
                for pk in were_sent
            ],
            assignments="send_id = v.send_id",
        )
        count = logs.update(
            status=LogStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            error_code="",
            error_message="",
            sent_at=None,
            failed_at=None,
            vendor_ref="",
            updated_at=now,
        )
        dispatch_counters_add(
            dispatch_id=dispatch_id,
            failed=-count - skipped,
            pending=count,
            skipped=skipped,
            sent=-len(were_sent) - skipped_sent,
            undelivered=-len(were_sent) - skipped_sent,
        )
        if count:
            Dispatch.objects.filter(
                pk=dispatch_id, status=Dispatch.Status.COMPLETED
            ).update(status=Dispatch.Status.ACTIVE, finished_at=None)
    return count
