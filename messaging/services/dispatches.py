"""Dispatches: their lifecycle, their counters, and the check that they still add up."""

from dataclasses import dataclass
from decimal import Decimal

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from config.enqueue import enqueue
from crm.models import Organization
from messaging.models import (
    PENDING_DUE,
    CommunicationLog,
    Dispatch,
    LogStatus,
    RetiredCounts,
)

COUNTERS = (
    "audience",
    "skipped",
    "pending",
    "sent",
    "delivered",
    "failed",
    "undelivered",
    "no_receipt",
    "cancelled",
)


# The task that runs dispatch_finish_if_done.
FINISH_DISPATCH_TASK = "messaging.finish_dispatch"
# The error codes an automatic pause's reason names, the most frequent first.
PAUSE_REASON_CODES = 3

logger = structlog.get_logger(__name__)


class DispatchStateError(Exception):
    """The dispatch is not in a state that allows what was asked."""


def dispatch_create(
    *,
    organization: Organization,
    label: str,
    channel: str,
    on_finish_task: str = "",
    on_pause_task: str = "",
    transactional: bool = False,
) -> Dispatch:
    """A new active dispatch; with `on_pause_task` it pauses itself when too many
    of its recent attempts fail (dispatch_attempts_add), and tells that task."""
    return Dispatch.objects.create(
        organization=organization,
        label=label,
        channel=channel,
        on_finish_task=on_finish_task,
        on_pause_task=on_pause_task,
        transactional=transactional,
    )


def dispatch_expect(*, dispatch_id: int, audience: int) -> None:
    """Say how many logs the dispatch will hold in all; it may complete after that."""
    Dispatch.objects.filter(pk=dispatch_id).update(expected_audience=audience)
    enqueue(FINISH_DISPATCH_TASK, dispatch_id)


def dispatch_counters_add(*, dispatch_id: int, cost: Decimal = Decimal("0"), **deltas):
    """Move counters by these deltas, inside the transaction that moved the logs."""
    changes = {name: F(name) + delta for name, delta in deltas.items() if delta}
    if cost:
        changes["cost"] = F("cost") + cost
    if changes:
        Dispatch.objects.filter(pk=dispatch_id).update(**changes)


def dispatch_attempts_add(
    *,
    dispatch_id: int,
    accepted: int,
    refused: int,
    cost: Decimal = Decimal("0"),
    **deltas,
) -> bool:
    """Move counters as dispatch_counters_add does, and note a batch's attempts:
    `accepted` and `refused` by the vendor. True if the dispatch paused itself.

    One statement, as the counters' alone: for a dispatch with an on_pause_task
    the outcomes are appended to its window of recent attempts in the same UPDATE,
    which returns the window's size and refusals for the threshold check. Once the
    window is full and its refused share reaches MESSAGING_AUTO_PAUSE_FAILURE_RATE,
    the dispatch pauses (dispatch_auto_pause).
    """
    window = settings.MESSAGING_AUTO_PAUSE_WINDOW
    marks = "0" * accepted + "1" * refused
    if window <= 0 or not marks:
        dispatch_counters_add(dispatch_id=dispatch_id, cost=cost, **deltas)
        return False
    assignments, params = [], []
    for name, delta in deltas.items():
        if name not in COUNTERS:
            raise ValueError(f"unknown counter {name!r}")
        if delta:
            assignments.append(f"{name} = {name} + %s")
            params.append(delta)
    if cost:
        assignments.append("cost = cost + %s")
        params.append(cost)
    last = "right({}, %s)" if connection.vendor == "postgresql" else "substr({}, -%s)"
    assignments.append(
        "recent_attempts = CASE WHEN on_pause_task = '' THEN recent_attempts"
        f" ELSE {last.format('recent_attempts || %s')} END"
    )
    params += [marks, window, dispatch_id]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Dispatch._meta.db_table} SET {', '.join(assignments)}"
            " WHERE id = %s RETURNING status, on_pause_task, length(recent_attempts),"
            " length(replace(recent_attempts, '0', ''))",
            params,
        )
        row = cursor.fetchone()
    if row is None:
        return False
    status, on_pause_task, attempts, refusals = row
    if (
        not on_pause_task
        or status != Dispatch.Status.ACTIVE
        or attempts < window
        or refusals < settings.MESSAGING_AUTO_PAUSE_FAILURE_RATE * window
    ):
        return False
    return dispatch_auto_pause(
        dispatch_id=dispatch_id,
        attempts=attempts,
        refusals=refusals,
        on_pause_task=on_pause_task,
    )


def dispatch_auto_pause(
    *, dispatch_id: int, attempts: int, refusals: int, on_pause_task: str
) -> bool:
    """Pause the active dispatch, saying why, and tell `on_pause_task`; True if
    it paused (it may have been paused or finished meanwhile)."""
    codes = (
        CommunicationLog.objects.filter(dispatch_id=dispatch_id)
        .exclude(error_code="")
        .values_list("error_code")
        .annotate(count=Count("id"))
        .order_by("-count", "error_code")[:PAUSE_REASON_CODES]
    )
    named = ", ".join(f"{code} {count}" for code, count in codes) or "none recorded"
    reason = (
        f"Paused automatically: {round(100 * refusals / attempts)}% of the last "
        f"{attempts} attempts failed (codes: {named}). Resume once the cause is fixed."
    )[: Dispatch._meta.get_field("paused_reason").max_length]
    paused = Dispatch.objects.filter(
        pk=dispatch_id, status=Dispatch.Status.ACTIVE
    ).update(status=Dispatch.Status.PAUSED, paused_reason=reason)
    if not paused:
        return False
    enqueue(on_pause_task, dispatch_id)
    logger.warning(
        "dispatch_auto_paused",
        dispatch_id=dispatch_id,
        attempts=attempts,
        refused=refusals,
    )
    return True


def dispatch_finish_if_done(*, dispatch_id: int) -> bool:
    """Mark the dispatch completed once no log is left non-final; tell its owner.

    Called after every stage that can make logs final. The counters move in the
    same transactions as the logs, so they decide: every log is made, none pending
    or held by a worker, and every sent one has had its receipt (delivered, or
    undelivered). They are read without a lock first: locking the row on every call
    queued each batch behind the others' counter updates.
    """
    unlocked = Dispatch.objects.filter(
        pk=dispatch_id, status=Dispatch.Status.ACTIVE
    ).first()
    if unlocked is None or not _all_final(unlocked):
        return False
    with transaction.atomic():
        dispatch = (
            Dispatch.objects.select_for_update()
            .filter(pk=dispatch_id, status=Dispatch.Status.ACTIVE)
            .first()
        )
        if dispatch is None or not _all_final(dispatch):
            return False
        dispatch.status = Dispatch.Status.COMPLETED
        dispatch.finished_at = timezone.now()
        dispatch.save(update_fields=["status", "finished_at"])
        if dispatch.on_finish_task:
            enqueue(dispatch.on_finish_task, dispatch.pk)
    return True


def _all_final(dispatch: Dispatch) -> bool:
    return dispatch.all_sent and dispatch.awaiting_receipts == 0


# Active dispatches whose counters say nothing is left non-final (_all_final, as one
# filter over the dispatch table).
_DONE = Q(
    status=Dispatch.Status.ACTIVE,
    expected_audience__isnull=False,
    audience__gte=F("expected_audience"),
    pending=0,
    sent=F("delivered") + F("undelivered") + F("no_receipt"),
)


def dispatches_finish_done() -> list[int]:
    """Finish every active dispatch with nothing left non-final; return their ids.

    The sweeper's backstop for a finish check that never ran (a lost broker
    message, receipts applied while paused, a resume with nothing left to send).
    One read of the dispatch table, then the same lock-and-check as any stage's.
    """
    done = Dispatch.objects.filter(_DONE).values_list("pk", flat=True)
    return [pk for pk in done if dispatch_finish_if_done(dispatch_id=pk)]


def dispatch_pause(*, dispatch: Dispatch) -> None:
    updated = Dispatch.objects.filter(
        pk=dispatch.pk, status=Dispatch.Status.ACTIVE
    ).update(status=Dispatch.Status.PAUSED)
    if not updated:
        raise DispatchStateError(f"{dispatch} is {dispatch.status}, not active")


def dispatch_resume(*, dispatch: Dispatch) -> None:
    """Send again; an automatic pause's reason and its window of attempts are
    cleared, so the resumed dispatch is judged on what it sends from now on."""
    updated = Dispatch.objects.filter(
        pk=dispatch.pk, status=Dispatch.Status.PAUSED
    ).update(status=Dispatch.Status.ACTIVE, paused_reason="", recent_attempts="")
    if not updated:
        raise DispatchStateError(f"{dispatch} is {dispatch.status}, not paused")


def dispatch_cancel(*, dispatch: Dispatch) -> int:
    """Cancel every log not yet handed to the vendor; return how many.

    Logs a worker is sending at this moment (processing) are left to finish: the
    vendor may already have them, and their outcome is still recorded.
    """
    with transaction.atomic():
        locked = Dispatch.objects.select_for_update().get(pk=dispatch.pk)
        if locked.status in (Dispatch.Status.CANCELLED, Dispatch.Status.COMPLETED):
            raise DispatchStateError(f"{dispatch} is already {locked.status}")
        now = timezone.now()
        cancelled = _cancel_pending(dispatch_id=locked.pk, now=now)
        locked.status = Dispatch.Status.CANCELLED
        locked.finished_at = now
        locked.save(update_fields=["status", "finished_at"])
    return cancelled


def _cancel_pending(*, dispatch_id: int, now) -> int:
    cancelled = CommunicationLog.objects.filter(
        PENDING_DUE, dispatch_id=dispatch_id
    ).update(status=LogStatus.CANCELLED, next_attempt_at=None, updated_at=now)
    dispatch_counters_add(
        dispatch_id=dispatch_id, pending=-cancelled, cancelled=cancelled
    )
    return cancelled


def dispatches_cancel_leftovers() -> int:
    """Cancel pending logs left in cancelled dispatches; return how many.

    A retry recorded, or a claim released, just as its dispatch was cancelled can
    still land as pending, where nothing sends it: the sweeper's backstop. Only
    cancelled dispatches whose counters hold pending or in-flight logs are read.
    """
    leftover = Dispatch.objects.filter(
        status=Dispatch.Status.CANCELLED, pending__gt=0
    ).values_list("pk", flat=True)
    now = timezone.now()
    total = 0
    for dispatch_id in leftover:
        with transaction.atomic():
            total += _cancel_pending(dispatch_id=dispatch_id, now=now)
    return total


@dataclass(frozen=True)
class Reconciliation:
    dispatch_id: int
    stored: dict
    counted: dict

    @property
    def differences(self) -> dict:
        return {
            name: (self.stored[name], self.counted[name])
            for name in self.counted
            if self.stored[name] != self.counted[name]
        }


def log_counters() -> dict:
    """The aggregates that count logs into a dispatch's counters (and cost)."""
    return {
        "audience": Count("id"),
        "skipped": Count("id", filter=Q(status=LogStatus.SKIPPED)),
        "pending": Count(
            "id", filter=Q(status__in=[LogStatus.PENDING, LogStatus.PROCESSING])
        ),
        "sent": Count("id", filter=Q(sent_at__isnull=False)),
        "delivered": Count("id", filter=Q(status=LogStatus.DELIVERED)),
        "failed": Count("id", filter=Q(status=LogStatus.FAILED)),
        "undelivered": Count(
            "id", filter=Q(status=LogStatus.FAILED, sent_at__isnull=False)
        ),
        "no_receipt": Count("id", filter=Q(status=LogStatus.NO_RECEIPT)),
        "cancelled": Count("id", filter=Q(status=LogStatus.CANCELLED)),
        "cost": Sum("cost"),
    }


def dispatch_count_logs(*, dispatch_id: int) -> dict:
    """The counters as a count over the logs, and over those retention deleted: the
    truth the stored ones must equal."""
    logs = CommunicationLog.objects.filter(dispatch_id=dispatch_id)
    counted = logs.aggregate(**log_counters())
    # SQLite sums decimals as floats: round back to the stored precision.
    places = Dispatch._meta.get_field("cost").decimal_places
    counted["cost"] = Decimal(counted["cost"] or 0).quantize(Decimal(1).scaleb(-places))
    retired = RetiredCounts.objects.filter(dispatch_id=dispatch_id).first()
    if retired is not None:
        for name in counted:
            counted[name] += getattr(retired, name, 0)
    return counted


def dispatch_reconcile(*, dispatch_id: int, repair: bool) -> Reconciliation:
    """Compare the stored counters with a count over the logs; repair if asked.

    The dispatch row is locked while counting, so no stage moves logs in between.
    """
    with transaction.atomic():
        dispatch = Dispatch.objects.select_for_update().get(pk=dispatch_id)
        counted = dispatch_count_logs(dispatch_id=dispatch_id)
        stored = {name: getattr(dispatch, name) for name in counted}
        result = Reconciliation(dispatch_id=dispatch_id, stored=stored, counted=counted)
        if repair and result.differences:
            Dispatch.objects.filter(pk=dispatch_id).update(**counted)
    return result
