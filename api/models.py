"""What the API keeps of its own: lead CSV uploads waiting for, or done by, a worker."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from crm.models import Organization


class LeadImport(models.Model):
    """A CSV of leads uploaded (through the API or the admin), imported by a worker.

    The file is held in the database (LeadImportChunk) until its import finishes,
    so web and worker need no shared disk and a lost broker message loses no
    upload. MAPPING (an admin upload waiting for its column map), QUEUED and RUNNING
    are not final: the import touches `heartbeat_at` as it goes, and a sweeper
    moves on one whose heartbeat stopped (lead_import_sweep).
    """

    class Status(models.TextChoices):
        MAPPING = "mapping", "Awaiting column mapping"
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
    size = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=12, choices=Status, default=Status.QUEUED)
    rows_read = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    # [{"line": n, "reason": "...", "cells": [...]}], the header being line 1 and
    # cells the row as uploaded (to fix and upload again): the first
    # crm.services.lead_import.REJECTED_KEPT rejected rows; rejected_count has all.
    rejected = models.JSONField(default=list, blank=True)
    rejected_count = models.PositiveIntegerField(default=0)
    # The file's header, kept with rejected rows to hand them back as a CSV.
    header = models.JSONField(default=list, blank=True)
    # The file's header -> what it holds (see crm.services.lead_import's
    # column_target); empty: the importer reads the headers by their names.
    column_map = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)  # runs started
    # Last sign of life: when it was queued (or queued again), or made progress.
    heartbeat_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(
                fields=["heartbeat_at"],
                name="lead_import_unfinished",
                condition=models.Q(status__in=["queued", "running"]),
            )
        ]

    def __str__(self) -> str:
        return f"{self.filename or 'import'} ({self.status})"


class LeadImportChunk(models.Model):
    """One piece of an uploaded file, in order: the file is never one value."""

    lead_import = models.ForeignKey(
        LeadImport, on_delete=models.CASCADE, related_name="chunks"
    )
    index = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["lead_import", "index"], name="lead_import_chunk_order"
            )
        ]

    def __str__(self) -> str:
        return f"chunk {self.index} of import {self.lead_import_id}"
