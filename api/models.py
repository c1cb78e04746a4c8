"""What the API keeps of its own: lead CSV uploads waiting for, or done by, a worker."""

from django.conf import settings
from django.db import models

from crm.models import Organization


class LeadImport(models.Model):
    """A CSV of leads uploaded through the API and imported by a worker.

    The file is held in the row until its import finishes (then cleared), so web and
    worker need no shared disk and a lost broker message loses no upload.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="lead_imports"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="lead_imports",
    )
    filename = models.CharField(max_length=255, blank=True, default="")
    content = models.BinaryField(default=b"")
    size = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=12, choices=Status, default=Status.QUEUED)
    rows_read = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    # [{"line": n, "reason": "..."}], the header being line 1.
    rejected = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.filename or 'import'} ({self.status})"
