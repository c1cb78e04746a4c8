"""Recovery: release work a dead worker left claimed, and send failed logs again."""

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from crm.models import OPT_OUT_FIELDS
from messaging.adapters import dispatch_adapter
from messaging.models import CommunicationLog, Dispatch, LogStatus
from messaging.services.dispatches import (
    dispatch_counters_add,
    dispatch_finish_if_done,
)
from messaging.services.inbound import SKIP_REASON as OPTED_OUT
from messaging.services.logs import new_send_id
from messaging.services.sending import (
    CLAIMED_FIELDS,
    ClaimedLog,
    logs_record_results,
)
from messaging.sql import update_from_rows
from vendors.base import (
    IN_DOUBT,
    InFlightMessage,
    SendResult,
    VendorAdapter,
    VendorUnavailable,
)

# A log whose request the vendor surely never took, sent again after a backoff.
WORKER_LOST = "worker_lost"
# How long past the lease a lookup may keep failing before the log is `unknown`.
LOOKUP_GIVE_UP = timedelta(hours=1)
# In-flight logs one sweep looks up per dispatch: a dead worker holds one batch.
SETTLE_BATCH_SIZE = 1000
# Our messages' refs read for a lookup: sent this long before the oldest claim.
REFS_SKEW = timedelta(minutes=5)

# A log whose lead has opted out of the log's channel.
_LEAD_OPTED_OUT = Q()
for _channel, _flag in OPT_OUT_FIELDS.items():
    _LEAD_OPTED_OUT |= Q(channel=_channel, **{f"lead__{_flag}": True})


def logs_release_stuck(
    *,
    older_than: timedelta,
    adapter_for: Callable[[int], VendorAdapter] | None = None,
) -> int:
    """Settle logs claimed longer ago than `older_than`; return how many moved.

    Their worker died between claim and record (or lost the vendor's answer). Through
    a vendor that dedupes on send id they are simply sent again (released to
    pending); through one that does not, only once a lookup shows the vendor never
    took them (see _settle_in_flight). `adapter_for` gives a dispatch's adapter.
    """
    now = timezone.now()
    stuck = CommunicationLog.objects.filter(
        status=LogStatus.PROCESSING, claimed_at__lt=now - older_than
    )
    adapter_for = adapter_for or _adapter_for
    moved = 0
    for dispatch_id in sorted(set(stuck.values_list("dispatch_id", flat=True))):
        adapter = adapter_for(dispatch_id)
        of_dispatch = stuck.filter(dispatch_id=dispatch_id)
        if adapter.idempotent_sends:
            moved += _release(of_dispatch, dispatch_id=dispatch_id, now=now)
        else:
            moved += _settle_in_flight(
                of_dispatch,
                dispatch_id=dispatch_id,
                adapter=adapter,
                give_up_before=now - older_than - LOOKUP_GIVE_UP,
            )
    return moved


def _adapter_for(dispatch_id: int) -> VendorAdapter:
    """The adapter a dispatch's logs are sent through (its account's)."""
    return dispatch_adapter(dispatch_id)


def _release(stuck: QuerySet, *, dispatch_id: int, now: datetime) -> int:
    """Put stuck logs back to pending, due now: safe with a vendor that answers a
    known send id with its first result. In a dispatch cancelled since, where
    nothing would send them, they are cancelled."""
    if _dispatch_cancelled(dispatch_id):
        with transaction.atomic():
            locked = list(
                stuck.select_for_update(skip_locked=True).values_list("pk", flat=True)
            )
            CommunicationLog.objects.filter(pk__in=locked).update(
                status=LogStatus.CANCELLED, claimed_at=None, updated_at=now
            )
            dispatch_counters_add(
                dispatch_id=dispatch_id, pending=-len(locked), cancelled=len(locked)
            )
        return 0
    return stuck.update(
        status=LogStatus.PENDING, next_attempt_at=now, claimed_at=None, updated_at=now
    )


def _dispatch_cancelled(dispatch_id: int) -> bool:
    return Dispatch.objects.filter(
        pk=dispatch_id, status=Dispatch.Status.CANCELLED
    ).exists()


def _settle_in_flight(
    stuck: QuerySet,
    *,
    dispatch_id: int,
    adapter: VendorAdapter,
    give_up_before: datetime,
) -> int:
    """Settle in-flight logs of a vendor with no idempotency key by asking it.

    The lease the sweeper waited (`older_than`) is the grace period in which a
    status callback or the send's own answer would have recorded the log. Then a
    lookup decides: found, the log is sent with the vendor's ref (its callbacks
    match it from then on); surely never taken, it is sent again after a backoff
    (or cancelled, in a cancelled dispatch); not told apart from another message,
    or not found because the vendor has no lookup, it is `unknown` and never sent
    again. While the lookup fails, the log waits in flight; past LOOKUP_GIVE_UP it
    is `unknown` too.
    """
    rows = list(
        stuck.order_by("pk").values_list(*CLAIMED_FIELDS, "claimed_at")[
            :SETTLE_BATCH_SIZE
        ]
    )
    if not rows:
        return 0
    claimed = [ClaimedLog(*row[:-1]) for row in rows]
    claimed_at = {row[0]: row[-1] for row in rows}
    found: dict | None = {}
    if adapter.can_lookup:
        try:
            found = adapter.lookup(_in_flight(claimed, claimed_at))
        except VendorUnavailable:
            found = None
    if found is None:
        unknown = [log for log in claimed if claimed_at[log.id] < give_up_before]
        return _record_unknown(dispatch_id=dispatch_id, logs=unknown)
    unknown = [log for log in claimed if log.send_id not in found]
    settled = [log for log in claimed if log.send_id in found]
    results = [found[log.send_id] or _never_taken(log.send_id) for log in settled]
    outcome = logs_record_results(
        dispatch_id=dispatch_id, vendor=adapter.name, claimed=settled, results=results
    )
    return (
        outcome.sent
        + outcome.retrying
        + outcome.failed
        + _record_unknown(dispatch_id=dispatch_id, logs=unknown)
    )


def _in_flight(
    claimed: list[ClaimedLog], claimed_at: dict[int, datetime]
) -> list[InFlightMessage]:
    """The logs as the vendor's lookup takes them, each with the refs of our other
    messages to the same recipient since (one query for the batch)."""
    since = min(claimed_at.values()) - REFS_SKEW
    refs: dict[str, set[str]] = defaultdict(set)
    for recipient, ref in (
        CommunicationLog.objects.filter(
            recipient__in={log.recipient for log in claimed}, sent_at__gte=since
        )
        .exclude(vendor_ref="")
        .values_list("recipient", "vendor_ref")
    ):
        refs[recipient].add(ref)
    return [
        InFlightMessage(
            send_id=log.send_id,
            to=log.recipient,
            body=log.body,
            since=claimed_at[log.id],
            known_refs=frozenset(refs[log.recipient]),
        )
        for log in claimed
    ]


def _never_taken(send_id: str) -> SendResult:
    return SendResult(
        send_id=send_id,
        accepted=False,
        vendor_ref=None,
        error_code=WORKER_LOST,
        error_message="the vendor never took it; sent again",
        retryable=True,
        cost=Decimal(0),
    )


def _record_unknown(*, dispatch_id: int, logs: list[ClaimedLog]) -> int:
    """Make these logs `unknown`, each only if it is still the claim we read."""
    if not logs:
        return 0
    now = timezone.now()
    with transaction.atomic():
        moved = update_from_rows(
            table=CommunicationLog._meta.db_table,
            columns=[("id", "bigint"), ("attempts", "integer")],
            rows=[(log.id, log.attempts) for log in logs],
            assignments=(
                "status = 'unknown', claimed_at = NULL, error_code = %s,"
                " error_message = %s, updated_at = %s"
            ),
            condition="t.status = 'processing' AND t.attempts = v.attempts",
            params=[
                IN_DOUBT,
                "the vendor may have taken it and cannot tell; not sent again",
                now,
            ],
        )
        dispatch_counters_add(
            dispatch_id=dispatch_id, pending=-len(moved), unknown=len(moved)
        )
    if moved:
        dispatch_finish_if_done(dispatch_id=dispatch_id)
    return len(moved)


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
