"""Campaigns and the chunks their audience is cut into at launch."""

from django.conf import settings
from django.db import models

from crm.models import Channel, Organization, Segment
from messaging.models import Dispatch


class Campaign(models.Model):
    """A message template sent once to every lead of a segment.

    Its counters live on its dispatch (messaging), which the pipeline keeps exact;
    the campaign holds what a marketer decides and the lifecycle around it.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="campaigns"
    )
    name = models.CharField(max_length=200)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    subject = models.CharField(max_length=255, blank=True, default="")
    template = models.TextField()
    segment = models.ForeignKey(
        Segment, on_delete=models.PROTECT, related_name="campaigns"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="campaigns",
    )
    chunk_size = models.PositiveIntegerField(null=True, blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status, default=Status.DRAFT)
    dispatch = models.OneToOneField(
        Dispatch,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="campaign",
    )
    # Where the campaign's test sends go: open-ended and transactional, so they are
    # never counted in the campaign's counters nor held back by its sending rules.
    test_dispatch = models.OneToOneField(
        Dispatch,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="test_campaign",
    )
    # Set by launch: the segment's rules as they were, which chunking selects from
    # (within_last_days counted back from launched_at), so a segment edited while
    # the campaign runs changes only campaigns launched after the edit.
    audience_rules = models.JSONField(null=True, blank=True, editable=False)
    # Set by launch: how the audience was cut.
    total_leads = models.PositiveIntegerField(null=True, blank=True)
    total_chunks = models.PositiveIntegerField(null=True, blank=True)
    effective_chunk_size = models.PositiveIntegerField(null=True, blank=True)
    chunking_done = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    launched_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "scheduled_at"], name="campaign_due"),
        ]

    def __str__(self) -> str:
        return self.name


class CampaignChunk(models.Model):
    """A slice of a campaign's audience: stored before its task is enqueued, so a lost
    broker message delays the chunk but never loses it (the sweeper re-enqueues)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        EXPANDED = "expanded", "Expanded"
        DEAD = "dead", "Dead"
        CANCELLED = "cancelled", "Cancelled"

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="chunks"
    )
    index = models.PositiveIntegerField()
    job_id = models.CharField(max_length=80, unique=True)
    lead_ids = models.JSONField()
    status = models.CharField(max_length=12, choices=Status, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField()
    enqueued_at = models.DateTimeField(null=True, blank=True)
    expanded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "index"], name="chunk_unique_index"
            ),
        ]
        indexes = [
            models.Index(
                fields=["status", "enqueued_at"], name="chunk_status_enqueued"
            ),
        ]

    def __str__(self) -> str:
        return self.job_id

    def as_message(self) -> dict:
        """The chunk as the broker carries it: JSON primitives only."""
        return {
            "job_id": self.job_id,
            "campaign_id": self.campaign_id,
            "lead_ids": self.lead_ids,
            "created_at": self.created_at.isoformat(),
        }
