"""Creating logs: one per message, idempotent on (dispatch, dedupe key)."""

import secrets
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import NamedTuple

from django.db import connection, transaction
from django.utils import timezone

from crm.models import Lead
from messaging.models import CommunicationLog, LogStatus
from messaging.services import sending_rules
from messaging.services.dispatches import dispatch_counters_add
from messaging.sql import (
    bulk_cursor,
    copy_rows,
    ids_array,
    insert_ignoring_conflicts,
)

_TABLE = CommunicationLog._meta.db_table
_STAGE = "log_insert_stage"
# Database connections (psycopg's) whose session has the staging table.
_staged: weakref.WeakSet = weakref.WeakSet()
_INSERT_COLUMNS = (
    "dispatch_id",
    "lead_id",
    "dedupe_key",
    "send_id",
    "channel",
    "recipient",
    "subject",
    "body",
    "status",
    "skip_reason",
    "attempts",
    "next_attempt_at",
    "last_attempt_at",
    "claimed_at",
    "vendor",
    "vendor_ref",
    "error_code",
    "error_message",
    "cost",
    "created_at",
    "updated_at",
)


class NewLog(NamedTuple):
    """A message to create; a non-empty `skip_reason` records it as skipped instead,
    and `not_before` (set by the sending rules) defers it: pending until then."""

    lead_id: int | None
    dedupe_key: str
    send_id: str
    recipient: str
    body: str
    subject: str = ""
    skip_reason: str = ""
    not_before: datetime | None = None


@dataclass(frozen=True)
class CreatedLogs:
    # Sendable logs: claimed, due now, or deferred (of these, `deferred`).
    pending: int
    skipped: int
    # With claim=True: the new logs created claimed (processing), with their ids.
    claimed: tuple[tuple[int, NewLog], ...] = ()
    deferred: int = 0


def new_send_id(*, scope: object, key: object, suffix: str = "") -> str:
    """`send-<scope>-<key>-<epoch ms>-<6 random>`: unique, and readable at a vendor.

    A batch of distinct keys may share one `send_id_suffix()`.
    """
    return f"send-{scope}-{key}-{suffix or send_id_suffix()}"


def send_id_suffix() -> str:
    """`<epoch ms>-<6 random>`, the part of a send id that makes a rerun's new."""
    return f"{int(time.time() * 1000)}-{secrets.token_hex(3)}"


def logs_create(
    *, dispatch_id: int, channel: str, logs: Sequence[NewLog], claim: bool = False
) -> CreatedLogs:
    """Insert the logs that do not exist yet and count them onto the dispatch.

    Existing logs (a rerun, a redelivered task) are left exactly as they are: their
    send id, message and state stand. Every creator's messages meet the
    organization's sending rules here (sending_rules: suppression, frequency cap,
    quiet hours): a message they forbid is skipped with the reason, one they defer
    is created pending, due when its recipient's window opens. With `claim`, the
    new sendable logs due now are created already claimed by the caller, which
    sends them next (sending.logs_send_claimed): as if claimed the moment they were
    written, without writing each row twice. If the caller dies before recording,
    they are claims like any other: the sweeper releases them and they go out
    under the same send id.

    A log's lead is held (locked FOR KEY SHARE, as a foreign-key check would) until
    the logs are committed; a lead deleted since its caller read it gets a skipped
    log, `lead_deleted`, with no lead.
    """
    now = timezone.now()
    # No savepoint: an error here fails the caller's transaction anyway.
    with transaction.atomic(savepoint=False):
        held = _leads_hold({log.lead_id for log in logs} - {None})
        logs = [
            log if log.lead_id is None or log.lead_id in held else _lead_gone(log)
            for log in logs
        ]
        rules = sending_rules.dispatch_rules(dispatch_id=dispatch_id)
        if rules is not None:
            logs = sending_rules.messages_apply_rules(
                rules=rules,
                channel=channel,
                logs=logs,
                zones=held,
                now=now,
            )
        rows = _log_rows(
            logs, dispatch_id=dispatch_id, channel=channel, claim=claim, now=now
        )
        if connection.vendor == "postgresql":
            inserted = _insert_copied(rows)
        else:
            inserted = insert_ignoring_conflicts(
                table=_TABLE,
                columns=_INSERT_COLUMNS,
                rows=rows,
                returning="id, status, dedupe_key",
            )
        skipped = sum(1 for row in inserted if row[1] == LogStatus.SKIPPED)
        pending = len(inserted) - skipped
        by_key = {log.dedupe_key: log for log in logs}
        deferred = sum(
            1
            for _, status, key in inserted
            if status == LogStatus.PENDING and by_key[key].not_before
        )
        claimed = ()
        if claim:
            claimed = tuple(
                (pk, by_key[key])
                for pk, status, key in inserted
                if status == LogStatus.PROCESSING
            )
        dispatch_counters_add(
            dispatch_id=dispatch_id,
            audience=len(inserted),
            pending=pending,
            skipped=skipped,
        )
    return CreatedLogs(
        pending=pending, skipped=skipped, claimed=claimed, deferred=deferred
    )


def _log_rows(
    logs: Sequence[NewLog],
    *,
    dispatch_id: int,
    channel: str,
    claim: bool,
    now: datetime,
) -> list[tuple]:
    """The logs as rows of _INSERT_COLUMNS: skipped, deferred (pending, due when
    the rules allow), or sendable now (pending, or with `claim` processing, its
    first attempt under way)."""
    fresh = LogStatus.PROCESSING if claim else LogStatus.PENDING
    # (status, attempts, next_attempt_at, last_attempt_at, claimed_at) of a log
    sendable = (fresh, 1, None, now, now) if claim else (fresh, 0, now, None, None)
    skipped = (LogStatus.SKIPPED, 0, None, None, None)
    rows = []
    for log in logs:
        if log.skip_reason:
            state = skipped
        elif log.not_before:
            state = (LogStatus.PENDING, 0, log.not_before, None, None)
        else:
            state = sendable
        rows.append(
            (
                dispatch_id,
                log.lead_id,
                log.dedupe_key,
                log.send_id,
                channel,
                log.recipient,
                log.subject,
                log.body,
                state[0],
                log.skip_reason,
                *state[1:],
                "",
                "",
                "",
                "",
                0,
                now,
                now,
            )
        )
    return rows


def _leads_hold(lead_ids: set[int]) -> dict[int, str]:
    """Of these leads, those that exist, with their time zones (the sending rules
    read them); each locked until commit against deletion.

    The log table has no database-level foreign key to leads: its checks run row by
    row, 1.7 s of 3.2 s of Postgres's time to write 100,000 logs, where this one
    statement takes 0.05 s. Deleting a lead waits for the lock, then its trigger
    (migration messaging 0005) clears the lead from the logs committed meanwhile.
    """
    if not lead_ids:
        return {}
    if connection.vendor != "postgresql":
        return dict(Lead.objects.filter(pk__in=lead_ids).values_list("pk", "timezone"))
    with bulk_cursor() as cursor:
        cursor.execute(
            f"SELECT id, timezone FROM {Lead._meta.db_table}"
            " WHERE id = ANY(%b::bigint[]) FOR KEY SHARE",
            [ids_array(lead_ids)],
        )
        return dict(cursor.fetchall())


def _lead_gone(log: NewLog) -> NewLog:
    """A log whose lead was deleted since it was read: kept, skipped, lead-less."""
    return NewLog(None, log.dedupe_key, log.send_id, "", "", skip_reason="lead_deleted")


def logs_cancel_pending(*, dispatch_id: int, dedupe_keys: Sequence[str]) -> int:
    """Cancel these logs if no worker has picked them up yet; return how many.

    For an owner whose reason to send is gone (a reminder of a cancelled
    appointment, a dunning notice of a paid invoice). A log being sent right now is
    left to finish: the vendor may already have it.
    """
    if not dedupe_keys:
        return 0
    with transaction.atomic():
        cancelled = CommunicationLog.objects.filter(
            dispatch_id=dispatch_id,
            dedupe_key__in=list(dedupe_keys),
            status=LogStatus.PENDING,
        ).update(
            status=LogStatus.CANCELLED,
            next_attempt_at=None,
            updated_at=timezone.now(),
        )
        dispatch_counters_add(
            dispatch_id=dispatch_id, pending=-cancelled, cancelled=cancelled
        )
    return cancelled


def _insert_copied(rows: list[tuple]) -> list[tuple]:
    """COPY the rows straight into the table, under ids taken from its sequence.

    A log that exists already (a rerun, a redelivered task) fails the COPY at its
    unique key: nothing is written and the rows take the staged path, which
    inserts only what is new.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(%s::regclass) FROM generate_series(1, %s)",
            [_id_sequence(), len(rows)],
        )
        ids = [pk for (pk,) in cursor.fetchall()]
    copied = copy_rows(
        table=_TABLE,
        columns=("id", *_INSERT_COLUMNS),
        rows=((pk, *row) for pk, row in zip(ids, rows, strict=True)),
    )
    if not copied:
        return _insert_staged(rows)
    return [(pk, row[8], row[2]) for pk, row in zip(ids, rows, strict=True)]


@cache
def _id_sequence() -> str:
    """The sequence behind the table's ids, named once: asked for in the statement,
    Postgres looks it up in the catalog for every id (7 us each)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [_TABLE])
        return cursor.fetchone()[0]


def _insert_staged(rows: list[tuple]) -> list[tuple]:
    """COPY the rows into this session's staging table, then INSERT what is new."""
    columns = ", ".join(_INSERT_COLUMNS)
    with connection.cursor() as cursor:
        if connection.connection not in _staged:
            cursor.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE}"
                f" AS SELECT {columns} FROM {_TABLE} WITH NO DATA"
            )
            # Known to exist once committed: a rollback takes the table with it.
            raw = connection.connection
            transaction.on_commit(lambda: _staged.add(raw))
        with cursor.copy(f"COPY {_STAGE} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"WITH staged AS (DELETE FROM {_STAGE} RETURNING {columns})"
            f" INSERT INTO {_TABLE} ({columns}) SELECT {columns} FROM staged"
            " ON CONFLICT DO NOTHING RETURNING id, status, dedupe_key"
        )
        return cursor.fetchall()
