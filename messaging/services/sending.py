"""Sending: claim due logs atomically, call the vendor once a batch, record outcomes."""

import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from config.enqueue import enqueue
from config.metrics import VENDOR_ERRORS, VENDOR_REQUEST_SECONDS
from crm.models import Channel
from crm.services.unsubscribe import unsubscribe_headers
from messaging.adapters import dispatch_adapter
from messaging.backoff import next_attempt_at
from messaging.models import CommunicationLog, Dispatch, LogStatus
from messaging.services import sending_rules
from messaging.services.dispatches import (
    FINISH_DISPATCH_TASK,
    dispatch_attempts_add,
    dispatch_counters_add,
    dispatch_finish_if_done,
)
from messaging.services.logs import NewLog
from messaging.services.suppressing import logs_suppress_recipients
from messaging.sql import by_key_plan, update_from_rows
from vendors.base import (
    IN_DOUBT,
    OutboundMessage,
    SendResult,
    VendorAdapter,
    VendorUnavailable,
)

logger = structlog.get_logger(__name__)

# One vendor call per claimed batch. 200 matches the largest chunk, so a chunk's logs
# usually go out in one call; the adapter splits further to its vendor's own limit.
SEND_BATCH_SIZE = 200
VENDOR_UNAVAILABLE = "vendor_unavailable"
VENDOR_ERROR = "vendor_error"
_LOG_TABLE = CommunicationLog._meta.db_table
CLAIMED_FIELDS = (
    "pk",
    "send_id",
    "channel",
    "recipient",
    "subject",
    "body",
    "attempts",
)
# An attempt's outcome in a dispatch's window of recent attempts (auto-pause): the
# vendor accepted it, or refused it (to retry, or for good).
_OUTCOME_MARKS = {"sent": "0", "pending": "1", "failed": "1"}


def _outcome_mark(status: str, error_code: str) -> str:
    """An attempt's mark in the auto-pause window: none for a call that failed as a
    whole (a vendor outage is retried, and says nothing about the campaign)."""
    if error_code == VENDOR_UNAVAILABLE:
        return ""
    return _OUTCOME_MARKS.get(status, "")


_rng = random.SystemRandom()
_ZERO = Decimal("0")


@dataclass
class SendOutcome:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    # When the first and the last of the batch's retries are due.
    next_due: datetime | None = None
    last_due: datetime | None = None
    finished: bool = False
    unrecorded: list[int] = field(default_factory=list)


class ClaimedLog(NamedTuple):
    id: int
    send_id: str
    channel: str
    recipient: str
    subject: str
    body: str
    attempts: int


def logs_claim(
    *,
    dispatch_id: int,
    limit: int,
    now: datetime,
    rules: sending_rules.SendingRules | None = None,
) -> list[ClaimedLog]:
    """Move up to `limit` due pending logs to processing; no two workers get one log.

    SKIP LOCKED lets concurrent claimers pass over each other's rows instead of
    waiting; the status condition on the update makes a claim exact even where the
    database ignores row locks (SQLite runs one writer at a time anyway). The
    longest due go first, in the order of the due index, which the claim reads
    only as far as `limit` (ordered by id, it would read every due log: 6 ms a
    claim).

    Every attempt meets the sending rules again (`rules`, the dispatch's if not
    given), whatever made the log due (a first send, a retry, a rerun, a resumed
    campaign): a log whose lead opted out or whose recipient was suppressed since
    is skipped instead, and one outside its recipient's window waits for the
    window's opening; neither is claimed.
    """
    rules = rules or sending_rules.dispatch_rules(dispatch_id=dispatch_id)
    with transaction.atomic(), by_key_plan():
        due = [
            sending_rules.ClaimCandidate(*row)
            for row in CommunicationLog.objects.filter(
                dispatch_id=dispatch_id,
                status=LogStatus.PENDING,
                next_attempt_at__lte=now,
            )
            .order_by("next_attempt_at", "pk")
            .select_for_update(skip_locked=True, of=("self",))
            .values_list(
                "pk",
                "channel",
                "recipient",
                "lead__timezone",
                "lead__sms_opt_out",
                "lead__email_opt_out",
            )[:limit]
        ]
        if not due:
            return []
        ids = [log.id for log in due]
        if rules is not None:
            verdict = sending_rules.claims_check(rules=rules, candidates=due, now=now)
            _claims_hold_back(dispatch_id=dispatch_id, verdict=verdict, now=now)
            held_back = verdict.skipped.keys() | verdict.deferred.keys()
            ids = [pk for pk in ids if pk not in held_back]
        if not ids:
            return []
        CommunicationLog.objects.filter(pk__in=ids, status=LogStatus.PENDING).update(
            status=LogStatus.PROCESSING,
            attempts=F("attempts") + 1,
            next_attempt_at=None,
            last_attempt_at=now,
            claimed_at=now,
            updated_at=now,
        )
        rows = CommunicationLog.objects.filter(
            pk__in=ids, status=LogStatus.PROCESSING, last_attempt_at=now
        ).values_list(*CLAIMED_FIELDS)
        return [ClaimedLog(*row) for row in rows]


def _claims_hold_back(
    *, dispatch_id: int, verdict: sending_rules.ClaimVerdict, now: datetime
) -> None:
    """Skip the due logs the rules forbid (counted pending -> skipped; the dispatch
    checked for its end after commit) and move the ones they defer to their
    window's opening; the logs are locked by the claim."""
    skipped = update_from_rows(
        table=_LOG_TABLE,
        columns=[("id", "bigint"), ("reason", "varchar(64)")],
        rows=list(verdict.skipped.items()),
        assignments=(
            "status = 'skipped', skip_reason = v.reason, next_attempt_at = NULL,"
            " updated_at = %s"
        ),
        condition="t.status = 'pending'",
        params=[now],
    )
    if skipped:
        dispatch_counters_add(
            dispatch_id=dispatch_id, pending=-len(skipped), skipped=len(skipped)
        )
        # They may have been the last: no send or receipt would check then.
        enqueue(FINISH_DISPATCH_TASK, dispatch_id)
    update_from_rows(
        table=_LOG_TABLE,
        columns=[("id", "bigint"), ("due", "timestamp with time zone")],
        rows=list(verdict.deferred.items()),
        assignments="next_attempt_at = v.due, updated_at = %s",
        condition="t.status = 'pending'",
        params=[now],
    )


def logs_send_due(
    *,
    dispatch_id: int,
    limit: int = SEND_BATCH_SIZE,
    adapter: VendorAdapter | None = None,
) -> SendOutcome:
    """Send one batch of the dispatch's due logs and record what the vendor said."""
    rules = sending_rules.dispatch_rules(dispatch_id=dispatch_id)
    if rules is None or rules.dispatch_status != Dispatch.Status.ACTIVE:
        return SendOutcome()
    claimed = logs_claim(
        dispatch_id=dispatch_id, limit=limit, now=timezone.now(), rules=rules
    )
    return _send_claimed(dispatch_id=dispatch_id, claimed=claimed, adapter=adapter)


def logs_send_claimed(
    *,
    dispatch_id: int,
    channel: str,
    claimed: Sequence[tuple[int, NewLog]],
    adapter: VendorAdapter | None = None,
) -> SendOutcome:
    """Send logs their creator made claimed (logs_create(claim=True)): first attempt."""
    logs = [
        ClaimedLog(pk, log.send_id, channel, log.recipient, log.subject, log.body, 1)
        for pk, log in claimed
    ]
    return _send_claimed(dispatch_id=dispatch_id, claimed=logs, adapter=adapter)


def _status(dispatch_id: int) -> str | None:
    return (
        Dispatch.objects.filter(pk=dispatch_id).values_list("status", flat=True).first()
    )


def _is_cancelled(dispatch_id: int) -> bool:
    return _status(dispatch_id) == Dispatch.Status.CANCELLED


def _send_claimed(
    *, dispatch_id: int, claimed: list[ClaimedLog], adapter: VendorAdapter | None
) -> SendOutcome:
    if not claimed:
        return SendOutcome()
    adapter = adapter or dispatch_adapter(dispatch_id)
    headers = _list_unsubscribe(dispatch_id, claimed)
    messages = [
        OutboundMessage(
            send_id=log.send_id,
            channel=log.channel,
            to=log.recipient,
            body=log.body,
            subject=log.subject,
            headers=headers.get(log.recipient, ()),
        )
        for log in claimed
    ]
    started = time.perf_counter()
    error: Exception | None = None
    try:
        results = adapter.send_batch(messages)
    except VendorUnavailable as unavailable:
        # The whole batch is retried as data, like any retryable failure: the logs
        # go back to pending with a backoff instead of a long Celery countdown.
        error = unavailable
        results = _batch_failed(claimed, VENDOR_UNAVAILABLE, str(unavailable))
    except Exception as unexpected:
        # An adapter's unexpected error (a bug, a response it cannot read) is an
        # attempt like any retryable failure, so the logs fail for good after
        # MESSAGING_MAX_ATTEMPTS instead of being released and claimed for ever.
        # Only its type is logged and kept: its text may quote a recipient or body.
        # A vendor with no idempotency key may have taken some: they stay in
        # flight until recovery's lookup settles them.
        error = unexpected
        code = VENDOR_ERROR if adapter.idempotent_sends else IN_DOUBT
        results = _batch_failed(claimed, code, type(unexpected).__name__)
    _observe_vendor_call(
        adapter=adapter.name,
        dispatch_id=dispatch_id,
        seconds=time.perf_counter() - started,
        results=results,
        error=error,
    )
    return logs_record_results(
        dispatch_id=dispatch_id, vendor=adapter.name, claimed=claimed, results=results
    )


def _list_unsubscribe(
    dispatch_id: int, claimed: list[ClaimedLog]
) -> dict[str, tuple[tuple[str, str], ...]]:
    """The RFC 8058 headers of the batch's marketing emails, by recipient.

    One read of the dispatch, and only for a batch holding email: an SMS batch
    costs nothing more. A transactional dispatch's emails carry none.
    """
    emails = {log.recipient for log in claimed if log.channel == Channel.EMAIL}
    emails.discard("")
    if not emails:
        return {}
    found = (
        Dispatch.objects.filter(pk=dispatch_id)
        .values_list("transactional", "organization_id")
        .first()
    )
    if found is None or found[0]:
        return {}
    return {
        address: unsubscribe_headers(organization_id=found[1], address=address)
        for address in emails
    }


def _observe_vendor_call(
    *,
    adapter: str,
    dispatch_id: int,
    seconds: float,
    results: Sequence[SendResult],
    error: Exception | None = None,
) -> None:
    """One log line and one latency observation per vendor call: how many messages
    it carried and what became of them, never who they were for or what they said."""
    if error is None:
        outcome = "ok"
    elif isinstance(error, VendorUnavailable):
        outcome = "unavailable"
    else:
        outcome = "error"
    refused = Counter(
        result.error_code or "unknown" for result in results if not result.accepted
    )
    retryable = sum(1 for result in results if not result.accepted and result.retryable)
    VENDOR_REQUEST_SECONDS.labels(adapter, outcome).observe(seconds)
    for code, count in refused.items():
        VENDOR_ERRORS.labels(adapter, code).inc(count)
    fields = {
        "vendor": adapter,
        "dispatch_id": dispatch_id,
        "outcome": outcome,
        "messages": len(results),
        "ok": len(results) - refused.total(),
        "failed": refused.total() - retryable,
        "retryable": retryable,
        "ms": round(seconds * 1000, 1),
    }
    if outcome == "ok":
        logger.info("vendor_call", **fields)
    elif outcome == "unavailable":
        logger.warning("vendor_call", error=str(error)[:255], **fields)
    else:
        logger.error("vendor_call", error=type(error).__name__, **fields)


def _batch_failed(
    claimed: list[ClaimedLog], code: str, message: str
) -> list[SendResult]:
    """A retryable failure for every log of a vendor call that failed as a whole."""
    return [
        SendResult(
            send_id=log.send_id,
            accepted=False,
            vendor_ref=None,
            error_code=code,
            error_message=message[:255],
            retryable=True,
            cost=_ZERO,
        )
        for log in claimed
    ]


def logs_record_results(
    *,
    dispatch_id: int,
    vendor: str,
    claimed: list[ClaimedLog],
    results: list[SendResult],
) -> SendOutcome:
    """Record each claimed log's outcome, only if it is still the claim we made.

    A log the sweeper released and another worker claimed since has a higher attempt
    number; the condition on `attempts` leaves it to that worker. A result IN_DOUBT
    (the request may have reached a vendor that has no idempotency key) is not
    recorded: the log stays in flight, and recovery's lookup settles it.
    """
    now = timezone.now()
    outcome = SendOutcome(claimed=len(claimed))
    held = claimed
    doubtful = {r.send_id for r in results if r.error_code == IN_DOUBT}
    if doubtful:
        claimed = [log for log in claimed if log.send_id not in doubtful]
        results = [r for r in results if r.send_id not in doubtful]
    rows = _result_rows(claimed, results, now=now, outcome=outcome)
    with transaction.atomic():
        if outcome.next_due is not None and _is_cancelled(dispatch_id):
            # Nothing sends a cancelled dispatch's pending logs: a retry is over.
            rows = [
                row[:2] + ("cancelled",) + row[3:7] + (None,)
                if row[2] == "pending"
                else row
                for row in rows
            ]
            outcome.next_due = outcome.last_due = None
        status_of = {row[0]: row[2] for row in rows}
        code_of = {row[0]: row[5] for row in rows}
        recorded = _results_write(rows, vendor=vendor, now=now)
        sent_ids = [pk for pk in recorded if status_of[pk] == "sent"]
        retry_ids = [pk for pk in recorded if status_of[pk] == "pending"]
        failed_ids = [pk for pk in recorded if status_of[pk] == "failed"]
        if failed_ids:
            logs_suppress_recipients(
                failures=[(pk, vendor, code_of[pk]) for pk in failed_ids]
            )
        cancelled_ids = [pk for pk in recorded if status_of[pk] == "cancelled"]
        sent_set = set(sent_ids)
        cost = sum((row[4] for row in rows if row[0] in sent_set), Decimal("0"))
        written = set(recorded)
        dispatch_attempts_add(
            dispatch_id=dispatch_id,
            # In the batch's order: a batch larger than the window keeps its last
            # attempts, not its refusals bunched at the end.
            outcomes="".join(
                _outcome_mark(status_of[log.id], code_of[log.id])
                for log in claimed
                if log.id in written
            ),
            sent=len(sent_ids),
            failed=len(failed_ids),
            cancelled=len(cancelled_ids),
            pending=-(len(sent_ids) + len(failed_ids) + len(cancelled_ids)),
            cost=cost,
        )
    outcome.sent, outcome.retrying, outcome.failed = (
        len(sent_ids),
        len(retry_ids),
        len(failed_ids),
    )
    recorded = sent_set.union(retry_ids, failed_ids, cancelled_ids)
    outcome.unrecorded = [log.id for log in held if log.id not in recorded]
    if failed_ids:
        outcome.finished = dispatch_finish_if_done(dispatch_id=dispatch_id)
    return outcome


def _result_rows(
    claimed: list[ClaimedLog],
    results: list[SendResult],
    *,
    now: datetime,
    outcome: SendOutcome,
) -> list[tuple]:
    """Each log's new state as a row of _results_write: sent, pending again (a retry,
    due after its backoff; the first and last due noted on `outcome`) or failed."""
    max_attempts = settings.MESSAGING_MAX_ATTEMPTS
    by_send_id = {result.send_id: result for result in results}
    rows = []
    for log in claimed:
        result = by_send_id[log.send_id]
        if result.accepted:
            rows.append(
                (log.id, log.attempts, "sent", result.vendor_ref, result.cost, "", "")
                + (None,)
            )
        elif result.retryable and log.attempts < max_attempts:
            due = next_attempt_at(now=now, attempts=log.attempts, rng=_rng)
            rows.append(
                (log.id, log.attempts, "pending", "", _ZERO, result.error_code)
                + (result.error_message, due)
            )
            outcome.next_due = min(filter(None, [outcome.next_due, due]))
            outcome.last_due = max(filter(None, [outcome.last_due, due]))
        else:
            rows.append(
                (log.id, log.attempts, "failed", "", _ZERO, result.error_code)
                + (result.error_message, None)
            )
    return rows


def _results_write(rows: list[tuple], *, vendor: str, now: datetime) -> list[int]:
    """One statement for the whole batch, whatever became of each log; the ids of
    the logs still held by this claim, and so written."""
    return update_from_rows(
        table=_LOG_TABLE,
        columns=[
            ("id", "bigint"),
            ("attempts", "integer"),
            ("status", "varchar(12)"),
            ("ref", "varchar(120)"),
            ("cost", "numeric(10, 4)"),
            ("code", "varchar(64)"),
            ("message", "varchar(255)"),
            ("due", "timestamp with time zone"),
        ],
        rows=rows,
        assignments=(
            "status = v.status,"
            " vendor = CASE WHEN v.status = 'sent' THEN %s ELSE t.vendor END,"
            " vendor_ref = CASE WHEN v.status = 'sent' THEN v.ref"
            " ELSE t.vendor_ref END,"
            " cost = t.cost + v.cost,"
            " sent_at = CASE WHEN v.status = 'sent' THEN %s ELSE t.sent_at END,"
            " failed_at = CASE WHEN v.status = 'failed' THEN %s"
            " ELSE t.failed_at END,"
            " next_attempt_at = v.due, claimed_at = NULL, error_code = v.code,"
            " error_message = v.message, updated_at = %s"
        ),
        condition="t.status = 'processing' AND t.attempts = v.attempts",
        params=[vendor, now, now, now],
    )
