"""Lead CSV uploads: keep the file, import it in a worker, keep the report.

States: (MAPPING ->) QUEUED -> RUNNING -> DONE or FAILED; an admin upload waits in
MAPPING until the marketer maps its columns (lead_import_map). A run claims only a
QUEUED import, so two deliveries of its task never import it twice at once. Nothing
stays unfinished: a run that raises marks its import FAILED with the exception's
class (never its message, which may quote a cell), a transient database error puts
it back to QUEUED for the task's retry, and lead_import_sweep moves on what lost its
worker or its broker message.
"""

import codecs
import contextlib
import io
import logging
import tempfile
import traceback
from datetime import timedelta
from typing import BinaryIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from api.models import LeadImport, LeadImportChunk
from crm.models import Organization
from crm.services.lead_import import (
    ImportFileError,
    ImportReport,
    cells_at_lines,
    column_map_error,
    lead_import_csv,
    preview,
)

logger = logging.getLogger(__name__)

ENCODING = "utf-8-sig"  # UTF-8, with or without the BOM spreadsheets write
# A stored piece of an upload: what web and worker hold in memory at once.
CHUNK_SIZE = 1024 * 1024
# Progress is written at most this often: a row update per batch would cost more.
HEARTBEAT_EVERY = timedelta(seconds=5)
TRANSIENT_ERRORS = (OperationalError, InterfaceError)
# Runs an import may start: a transient error that always comes back (a statement
# timeout is an OperationalError too) must not queue it again for ever.
MAX_ATTEMPTS = 10
# An upload nobody maps is given up (and its file dropped) after this long.
MAPPING_KEPT = timedelta(days=1)


def lead_import_start(
    *,
    organization: Organization,
    filename: str,
    file: BinaryIO,
    created_by=None,
    map_first: bool = False,
) -> LeadImport:
    """Store the upload a chunk at a time, enqueue its import after commit; with
    `map_first` it waits in MAPPING for lead_import_map instead.

    Raises ValidationError (on "file") for an empty file, one larger than
    settings.API_LEAD_IMPORT_MAX_BYTES, or one that is not UTF-8; nothing is kept.
    """
    from api.tasks import import_leads

    maximum = settings.API_LEAD_IMPORT_MAX_BYTES
    decoder = codecs.getincrementaldecoder("utf-8")()
    size, blank = 0, True
    with transaction.atomic():
        upload = LeadImport.objects.create(
            organization=organization,
            created_by=created_by,
            filename="".join(c for c in filename if c.isprintable())[:255],
        )
        index = 0
        while chunk := file.read(CHUNK_SIZE):
            if size + len(chunk) > maximum:
                raise ValidationError(
                    {
                        "file": [
                            f"the file is larger than {maximum} bytes; use import_leads"
                        ]
                    }
                )
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                raise ValidationError(
                    {
                        "file": [
                            f"not UTF-8 text (byte {size + error.start}); "
                            "save it as UTF-8 CSV"
                        ]
                    }
                ) from error
            blank = blank and not chunk.strip()
            LeadImportChunk.objects.create(lead_import=upload, index=index, data=chunk)
            size += len(chunk)
            index += 1
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as error:
            raise ValidationError(
                {"file": ["not UTF-8 text (it ends inside a character)"]}
            ) from error
        if blank:
            raise ValidationError({"file": ["the file is empty"]})
        upload.size = size
        if map_first:
            upload.status = LeadImport.Status.MAPPING
            upload.save(update_fields=["size", "status"])
        else:
            upload.save(update_fields=["size"])
            transaction.on_commit(lambda: import_leads.delay(upload.pk))
    return upload


def lead_import_preview(
    *, lead_import: LeadImport, rows: int = 5
) -> tuple[list[str], list[list[str]]]:
    """The upload's header and first rows, read from its first stored chunk.

    Raises ValidationError (on "file") when the file has no header.
    """
    first = (
        LeadImportChunk.objects.filter(lead_import_id=lead_import.pk, index=0)
        .values_list("data", flat=True)
        .first()
    )
    # The chunk may end inside a character or a row: the preview only needs a few.
    text = codecs.getincrementaldecoder(ENCODING)().decode(bytes(first or b""))
    try:
        return preview(io.StringIO(text, newline=""), rows=rows)
    except ValueError as error:
        raise ValidationError({"file": [str(error)]}) from error


def lead_import_map(
    *, lead_import: LeadImport, column_map: dict[str, str]
) -> LeadImport:
    """Give an upload waiting in MAPPING its column map and enqueue its import.

    Raises ValidationError for a target that is no field, attribute or "ignore",
    or when the import is no longer waiting for a map.
    """
    from api.tasks import import_leads

    if problem := column_map_error(column_map):
        raise ValidationError({"column_map": [problem]})
    with transaction.atomic():
        queued = LeadImport.objects.filter(
            pk=lead_import.pk, status=LeadImport.Status.MAPPING
        ).update(
            column_map=column_map,
            status=LeadImport.Status.QUEUED,
            heartbeat_at=timezone.now(),
        )
        if not queued:
            raise ValidationError("this import is no longer waiting for a mapping")
        transaction.on_commit(lambda: import_leads.delay(lead_import.pk))
    lead_import.refresh_from_db()
    return lead_import


def lead_import_run(*, import_id: int) -> LeadImport | None:
    """Import a QUEUED upload; any other (running elsewhere, or final) is left."""
    with transaction.atomic():
        upload = (
            LeadImport.objects.select_for_update()
            .select_related("organization")
            .filter(pk=import_id)
            .first()
        )
        if upload is None or upload.status != LeadImport.Status.QUEUED:
            return upload
        if upload.attempts >= MAX_ATTEMPTS:
            _finish(
                upload,
                ImportReport(),
                status=LeadImport.Status.FAILED,
                error=f"gave up after {upload.attempts} attempts ended by the database",
            )
            return upload
        upload.status = LeadImport.Status.RUNNING
        upload.attempts += 1
        upload.started_at = upload.heartbeat_at = timezone.now()
        upload.save(update_fields=["status", "attempts", "started_at", "heartbeat_at"])
    progress = _Progress(upload.pk)
    try:
        report, status, error = _import(upload, progress)
    except TRANSIENT_ERRORS:
        # Rows upsert, so the task's retry may run it again from the start.
        _requeue(upload.pk)
        raise
    except Exception as failure:  # noqa: BLE001 (recorded: the import is final)
        # The class and where, never the message: it may quote a cell of the file.
        name = type(failure).__name__
        logger.error(
            "lead import %s failed: %s\n%s",
            upload.pk,
            name,
            "".join(traceback.format_tb(failure.__traceback__)),
        )
        report, status = progress.report, LeadImport.Status.FAILED
        error = f"the import stopped on an unexpected error ({name})"
    _finish(upload, report, status=status, error=error)
    return upload


def lead_import_sweep(*, now=None) -> tuple[int, int]:
    """Move on imports without a sign of life for API_LEAD_IMPORT_STALL_SECONDS.

    A RUNNING one lost its worker (killed, out of memory, past its time limit) or
    hangs: it is FAILED, saying so; its rows so far are imported. A QUEUED one lost
    its broker message: it is enqueued again. One left in MAPPING for MAPPING_KEPT
    is FAILED and its file dropped. Returns (failed, enqueued).
    """
    from api.tasks import import_leads

    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.API_LEAD_IMPORT_STALL_SECONDS)
    with transaction.atomic():
        stuck = list(
            LeadImport.objects.select_for_update(skip_locked=True)
            .filter(status=LeadImport.Status.RUNNING, heartbeat_at__lt=stale)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        LeadImport.objects.filter(pk__in=stuck).update(
            status=LeadImport.Status.FAILED,
            error=(
                "the import stopped making progress (no sign of it for "
                f"{settings.API_LEAD_IMPORT_STALL_SECONDS} s): its worker stopped; "
                "the rows counted were imported, upload the file again for the rest"
            ),
            finished_at=now,
        )
        unmapped = list(
            LeadImport.objects.select_for_update(skip_locked=True)
            .filter(
                status=LeadImport.Status.MAPPING, heartbeat_at__lt=now - MAPPING_KEPT
            )
            .values_list("pk", flat=True)
        )
        LeadImport.objects.filter(pk__in=unmapped).update(
            status=LeadImport.Status.FAILED,
            error="no column mapping was chosen within a day: upload the file again",
            finished_at=now,
        )
        stuck += unmapped
        LeadImportChunk.objects.filter(lead_import_id__in=stuck).delete()
        lost = list(
            LeadImport.objects.select_for_update(skip_locked=True)
            .filter(status=LeadImport.Status.QUEUED, heartbeat_at__lt=stale)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        LeadImport.objects.filter(pk__in=lost).update(heartbeat_at=now)
        for pk in lost:
            transaction.on_commit(lambda pk=pk: import_leads.delay(pk))
    return len(stuck), len(lost)


class _Progress:
    """The progress callback: keeps the latest report, beats the import's heart."""

    def __init__(self, import_id: int) -> None:
        self.import_id = import_id
        self.report = ImportReport()
        self.written = timezone.now()

    def __call__(self, report: ImportReport) -> None:
        self.report = report
        now = timezone.now()
        if now - self.written < HEARTBEAT_EVERY:
            return
        self.written = now
        LeadImport.objects.filter(
            pk=self.import_id, status=LeadImport.Status.RUNNING
        ).update(
            heartbeat_at=now,
            rows_read=report.rows_read,
            created=report.created,
            updated=report.updated,
            rejected_count=report.rejected_count,
        )


def _import(upload: LeadImport, progress: _Progress) -> tuple[ImportReport, str, str]:
    """Spool the stored chunks to a local file and import it (the parse process
    reads the file; it cannot share the database connection); keep the rejected
    rows' cells on the report, to be handed back for fixing."""
    with tempfile.TemporaryFile() as spool:
        chunks = LeadImportChunk.objects.filter(lead_import_id=upload.pk)
        for pk in list(chunks.order_by("index").values_list("pk", flat=True)):
            spool.write(
                LeadImportChunk.objects.values_list("data", flat=True).get(pk=pk)
            )
        spool.seek(0)
        stream = io.TextIOWrapper(spool, encoding=ENCODING, newline="")
        try:
            report = lead_import_csv(
                organization=upload.organization,
                stream=stream,
                progress=progress,
                column_map=upload.column_map or None,
            )
            status, error = LeadImport.Status.DONE, ""
        except ImportFileError as failure:
            report, status = failure.report, LeadImport.Status.FAILED
            error = str(failure)
        finally:
            stream.detach()  # the spool closes with its own block
        if report.rejected:
            spool.seek(0)
            stream = io.TextIOWrapper(
                spool, encoding=ENCODING, newline="", errors="replace"
            )
            # Line 1, the header, heads the rejected rows' CSV.
            report.rejected_cells = cells_at_lines(
                stream, {1, *(line for line, _ in report.rejected)}
            )
            stream.detach()
    return report, status, error


def _requeue(import_id: int) -> None:
    if not connection.in_atomic_block and not connection.is_usable():
        connection.close()  # the next query connects again
    # If the database is still away, it stays RUNNING: the sweeper fails it later.
    with contextlib.suppress(TRANSIENT_ERRORS):
        LeadImport.objects.filter(
            pk=import_id, status=LeadImport.Status.RUNNING
        ).update(status=LeadImport.Status.QUEUED, heartbeat_at=timezone.now())


def _finish(upload: LeadImport, report: ImportReport, *, status: str, error: str):
    now = timezone.now()
    upload.status = status
    upload.error = error
    upload.rows_read = report.rows_read
    upload.created = report.created
    upload.updated = report.updated
    cells = report.rejected_cells
    upload.rejected = [
        {"line": line, "reason": reason, "cells": _storable(cells.get(line, []))}
        for line, reason in report.rejected
    ]
    upload.rejected_count = report.rejected_count
    upload.header = _storable(cells.get(1, []))
    upload.finished_at = upload.heartbeat_at = now
    with transaction.atomic():
        upload.save()
        LeadImportChunk.objects.filter(lead_import_id=upload.pk).delete()


def _storable(cells: list[str]) -> list[str]:
    """Cells as JSON in Postgres holds them: a NUL (a reason to reject a row) is
    shown as U+FFFD, where the marketer sees what to fix."""
    return [cell.replace("\x00", "\ufffd") for cell in cells]
