"""What beat's automations work on: appointments, invoices, nurture sequences, KPIs.

Every message an automation sends is a `messaging.CommunicationLog` in a dispatch the
automation owns, so it goes through the one pipeline (claim, send, retry, receipts).
"""

from datetime import timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from campaigns.bounds import content_errors
from campaigns.models import Campaign
from campaigns.personalization import TemplateError, compile_template
from crm.models import Channel, Lead, Organization
from messaging.models import Dispatch


class Appointment(models.Model):
    """A lead's booked appointment; reminders go 24 h and 3 h before `starts_at`."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        CANCELLED = "cancelled", "Cancelled"
        COMPLETED = "completed", "Completed"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="appointments"
    )
    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, related_name="appointments"
    )
    title = models.CharField(max_length=200)
    location = models.CharField(max_length=255, blank=True, default="")
    starts_at = models.DateTimeField()
    status = models.CharField(max_length=12, choices=Status, default=Status.SCHEDULED)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "starts_at"], name="appointment_due"),
            models.Index(
                fields=["organization", "starts_at"], name="appointment_org_starts"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} at {self.starts_at:%Y-%m-%d %H:%M}"


class Invoice(models.Model):
    """Money a lead owes; open invoices past their due date get dunning notices."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        PAID = "paid", "Paid"
        VOID = "void", "Void"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invoices"
    )
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="invoices")
    number = models.CharField(max_length=64, blank=True, default="")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    due_date = models.DateField()
    status = models.CharField(max_length=8, choices=Status, default=Status.OPEN)
    payment_link = models.URLField(max_length=500, blank=True, default="")
    paid_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "due_date"], name="invoice_overdue"),
            models.Index(fields=["organization", "paid_at"], name="invoice_org_paid"),
        ]

    def __str__(self) -> str:
        return self.number or f"Invoice {self.pk}"


class NurtureSequence(models.Model):
    """An ordered series of templated messages a lead receives once enrolled.

    Its messages go into its own dispatch (created with the first message), so the
    sequence has counters like a campaign.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="nurture_sequences"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    is_active = models.BooleanField(default=True)
    dispatch = models.OneToOneField(
        Dispatch,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="nurture_sequence",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"], name="sequence_unique_name_per_org"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class NurtureStep(models.Model):
    """One message of a sequence, sent `delay_minutes` after the previous one (or
    after enrollment, for the first step)."""

    sequence = models.ForeignKey(
        NurtureSequence, on_delete=models.CASCADE, related_name="steps"
    )
    position = models.PositiveSmallIntegerField()
    delay_minutes = models.PositiveIntegerField(default=0)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    subject = models.CharField(max_length=255, blank=True, default="")
    template = models.TextField()

    class Meta:
        ordering = ["sequence", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["sequence", "position"], name="step_unique_position"
            ),
            models.CheckConstraint(
                condition=Q(position__gte=1), name="step_position_from_one"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sequence} #{self.position}"

    @property
    def delay(self) -> timedelta:
        return timedelta(minutes=self.delay_minutes)

    def clean(self) -> None:
        errors = {}
        for field in ("template", "subject"):
            try:
                compile_template(getattr(self, field))
            except TemplateError as error:
                errors[field] = str(error)
        if self.channel == Channel.EMAIL and not self.subject.strip():
            errors.setdefault("subject", "an email step needs a subject")
        for field, problem in content_errors(
            channel=self.channel, template=self.template, subject=self.subject
        ).items():
            errors.setdefault(field, problem)
        if errors:
            raise ValidationError(errors)


class Enrollment(models.Model):
    """A lead's way through a sequence.

    `current_step` is the position of the last step sent (0 before the first);
    `next_run_at` is when the next one is due, empty once the enrollment has ended.
    A lead is in a sequence at most once at a time; it may enroll again after leaving.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        COMPLETED = "completed", "Completed"
        EXITED = "exited", "Exited"

    class ExitReason(models.TextChoices):
        OPTED_OUT = "opted_out", "Opted out"
        MANUAL = "manual", "Removed by hand"
        CONVERTED = "converted", "Converted"
        SEQUENCE_INACTIVE = "sequence_inactive", "Sequence deactivated"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="enrollments"
    )
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="enrollments")
    sequence = models.ForeignKey(
        NurtureSequence, on_delete=models.CASCADE, related_name="enrollments"
    )
    status = models.CharField(max_length=12, choices=Status, default=Status.ACTIVE)
    current_step = models.PositiveSmallIntegerField(default=0)
    next_run_at = models.DateTimeField(null=True, blank=True)
    exit_reason = models.CharField(
        max_length=24, choices=ExitReason, blank=True, default=""
    )
    enrolled_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["lead", "sequence"],
                condition=Q(status="active"),
                name="enrollment_one_active_per_lead",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_run_at"],
                condition=Q(status="active"),
                name="enrollment_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.lead} in {self.sequence} ({self.status})"


class AutomationDispatch(models.Model):
    """The open-ended dispatch holding one organization's reminders, or its dunning.

    The log's unique (dispatch, dedupe key) is what makes each reminder and each
    dunning notice exactly once: the key names the appointment or invoice and its
    kind, so a doubled or overlapping run inserts nothing the second time.
    """

    class Kind(models.TextChoices):
        REMINDERS = "reminders", "Appointment reminders"
        DUNNING = "dunning", "Dunning"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="automation_dispatches"
    )
    kind = models.CharField(max_length=16, choices=Kind)
    dispatch = models.OneToOneField(
        Dispatch, on_delete=models.PROTECT, related_name="automation"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "kind"], name="automation_dispatch_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization}: {self.get_kind_display()}"


class DailySnapshot(models.Model):
    """One organization's KPIs for one day (in settings.TIME_ZONE); recomputing a
    day replaces its row."""

    KPI_FIELDS = (
        "leads",
        "new_leads",
        "messages_sent",
        "messages_delivered",
        "messages_failed",
        "delivery_rate",
        "appointments",
        "revenue_collected",
        "overdue_amount",
    )

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="snapshots"
    )
    date = models.DateField()
    leads = models.PositiveIntegerField(default=0)
    new_leads = models.PositiveIntegerField(default=0)
    messages_sent = models.PositiveIntegerField(default=0)
    messages_delivered = models.PositiveIntegerField(default=0)
    messages_failed = models.PositiveIntegerField(default=0)
    # delivered / (delivered + failed) that day; empty when neither happened.
    delivery_rate = models.DecimalField(
        max_digits=5, decimal_places=4, null=True, blank=True
    )
    appointments = models.PositiveIntegerField(default=0)
    revenue_collected = models.DecimalField(
        max_digits=14, decimal_places=2, default=Decimal("0")
    )
    overdue_amount = models.DecimalField(
        max_digits=14, decimal_places=2, default=Decimal("0")
    )
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["organization", "-date"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "date"], name="snapshot_unique_day"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization} {self.date}"


class CampaignHourlyStat(models.Model):
    """A campaign's messages sent, delivered and failed in one hour, for charts.

    Counted by when each event happened (sent_at, delivered_at, failed_at).
    """

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="hourly_stats"
    )
    hour = models.DateTimeField()
    sent = models.PositiveIntegerField(default=0)
    delivered = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["campaign", "hour"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "hour"], name="campaign_hour_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign} {self.hour:%Y-%m-%d %H}:00"
