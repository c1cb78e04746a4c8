"""Lead CSV uploads: keep the file, import it in a worker, keep the report."""

import io

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from api.models import LeadImport
from crm.models import Organization
from crm.services.lead_import import ImportFileError, ImportReport, lead_import_csv

ENCODING = "utf-8-sig"  # UTF-8, with or without the BOM spreadsheets write


def lead_import_start(
    *, organization: Organization, filename: str, content: bytes, created_by=None
) -> LeadImport:
    """Store the upload and enqueue its import after commit; 400s name the file."""
    from api.tasks import import_leads

    maximum = settings.API_LEAD_IMPORT_MAX_BYTES
    if not content.strip():
        raise ValidationError({"file": ["the file is empty"]})
    if len(content) > maximum:
        raise ValidationError(
            {"file": [f"the file is larger than {maximum} bytes; use import_leads"]}
        )
    try:
        content.decode(ENCODING)
    except UnicodeDecodeError as error:
        raise ValidationError(
            {"file": [f"not UTF-8 text (byte {error.start}); save it as UTF-8 CSV"]}
        ) from error
    upload = LeadImport.objects.create(
        organization=organization,
        created_by=created_by,
        filename=filename[:255],
        content=content,
        size=len(content),
    )
    transaction.on_commit(lambda: import_leads.delay(upload.pk))
    return upload


def lead_import_run(*, import_id: int) -> LeadImport | None:
    """Import a stored upload; safe to run again (rows upsert), done ones are left."""
    with transaction.atomic():
        upload = (
            LeadImport.objects.select_for_update()
            .select_related("organization")
            .filter(pk=import_id)
            .first()
        )
        if upload is None or upload.status in (
            LeadImport.Status.DONE,
            LeadImport.Status.FAILED,
        ):
            return upload
        upload.status = LeadImport.Status.RUNNING
        upload.started_at = timezone.now()
        upload.save(update_fields=["status", "started_at"])
    stream = io.StringIO(bytes(upload.content).decode(ENCODING), newline="")
    try:
        report = lead_import_csv(organization=upload.organization, stream=stream)
        status, error = LeadImport.Status.DONE, ""
    except ImportFileError as failure:
        report, status, error = failure.report, LeadImport.Status.FAILED, str(failure)
    _finish(upload, report, status=status, error=error)
    return upload


def _finish(upload: LeadImport, report: ImportReport, *, status: str, error: str):
    upload.status = status
    upload.error = error
    upload.rows_read = report.rows_read
    upload.created = report.created
    upload.updated = report.updated
    upload.rejected = [
        {"line": line, "reason": reason} for line, reason in report.rejected
    ]
    upload.content = b""
    upload.finished_at = timezone.now()
    upload.save()
