"""The CRM core: organizations (tenants), their members, leads and segments."""

import datetime
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q


class Organization(models.Model):
    """A tenant, with the sending rules that apply to everything it sends."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Leads without a time zone of their own are in this one; schedules are shown in it.
    time_zone = models.CharField(max_length=64, default="UTC")
    # Marketing messages wait for the recipient's local window [start, end).
    quiet_hours_enabled = models.BooleanField(default=True)
    quiet_hours_start = models.TimeField(default=datetime.time(8, 0))
    quiet_hours_end = models.TimeField(default=datetime.time(21, 0))
    # Transactional messages (reminders, dunning) are exempt from quiet hours but
    # never sent inside this night window [start, end) of the recipient's day.
    transactional_night_start = models.TimeField(default=datetime.time(22, 0))
    transactional_night_end = models.TimeField(default=datetime.time(7, 0))
    # At most `count` marketing messages per lead and channel in `days` days; off
    # when count is null.
    frequency_cap_count = models.PositiveSmallIntegerField(null=True, blank=True)
    frequency_cap_days = models.PositiveSmallIntegerField(default=7)
    # Sent back, with the name and "Reply STOP to opt out", to a HELP or INFO.
    help_text = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's place in one organization; the role decides what they may change."""

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MARKETER = "marketer", "Marketer"
        VIEWER = "viewer", "Viewer"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MARKETER)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user} ({self.role} of {self.organization})"


class Channel(models.TextChoices):
    SMS = "sms", "SMS"
    EMAIL = "email", "Email"


class OptOutSource(models.TextChoices):
    KEYWORD = "keyword", "Replied STOP"
    MANUAL = "manual", "Set by a user or an import"


class Lead(models.Model):
    """A person a campaign can reach.

    `phones` and `emails` keep every known contact, the first being the primary one;
    `phone` and `email` mirror that primary contact in indexed columns, so lookups and
    segment rules do not scan JSON. Phones are stored in E.164.
    """

    # Indexed first in lead_org_id (below), which serves what this index would.
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="leads", db_index=False
    )
    external_id = models.CharField(max_length=128, blank=True, default="")
    name = models.CharField(max_length=200, blank=True, default="")
    phones = models.JSONField(default=list, blank=True)
    emails = models.JSONField(default=list, blank=True)
    phone = models.CharField(max_length=20, blank=True, default="")
    email = models.EmailField(max_length=254, blank=True, default="")
    total_spend = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("0")
    )
    visits = models.PositiveIntegerField(default=0)
    timezone = models.CharField(max_length=64, blank=True, default="")
    attributes = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=list, blank=True)
    sms_opt_out = models.BooleanField(default=False)
    email_opt_out = models.BooleanField(default=False)
    # Consent bookkeeping, written only by crm.services.consent: who opted the lead
    # out of each channel (a START lifts only a keyword opt-out), and the vendor's
    # time of the last STOP/START applied, so an older keyword arriving late loses.
    sms_opt_out_source = models.CharField(
        max_length=16,
        choices=OptOutSource.choices,
        blank=True,
        default="",
        db_default="",
    )
    email_opt_out_source = models.CharField(
        max_length=16,
        choices=OptOutSource.choices,
        blank=True,
        default="",
        db_default="",
    )
    sms_keyword_at = models.DateTimeField(null=True, blank=True)
    email_keyword_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "external_id"],
                condition=~Q(external_id=""),
                name="lead_unique_external_id_per_org",
            ),
        ]
        indexes = [
            # The organization's leads in id order: the keyset pages that chunk a
            # segment's audience. Without it the page after an organization's last
            # lead reads every later lead of the others (0.5-0.7 s past 1,000,000).
            models.Index(fields=["organization", "id"], name="lead_org_id"),
            models.Index(fields=["organization", "phone"], name="lead_org_phone"),
            models.Index(fields=["organization", "email"], name="lead_org_email"),
            models.Index(fields=["organization", "total_spend"], name="lead_org_spend"),
            models.Index(fields=["organization", "visits"], name="lead_org_visits"),
            models.Index(
                fields=["organization", "created_at"], name="lead_org_created"
            ),
            models.Index(fields=["organization", "timezone"], name="lead_org_timezone"),
        ]

    def __str__(self) -> str:
        return self.name or self.phone or self.email or f"Lead {self.pk}"

    def set_contacts(self, *, phones: list[str], emails: list[str]) -> None:
        """Replace the contact lists and keep the primary columns in step with them."""
        self.phones = phones
        self.emails = emails
        self.phone = phones[0] if phones else ""
        self.email = emails[0] if emails else ""

    def is_opted_out(self, channel: str) -> bool:
        return self.sms_opt_out if channel == Channel.SMS else self.email_opt_out


# The opt-out flags, per channel.
OPT_OUT_FIELDS = {Channel.SMS: "sms_opt_out", Channel.EMAIL: "email_opt_out"}

# Where each channel's opt-out came from and when its last keyword was applied:
# crm.services.consent's alone to write.
CONSENT_BOOKKEEPING_FIELDS = frozenset(
    {"sms_opt_out_source", "email_opt_out_source", "sms_keyword_at", "email_keyword_at"}
)

# A lead's own data, in the model's order: every field but its id, organization,
# timestamps and consent bookkeeping. Imports write them, exports and single-lead
# updates take from them.
LEAD_DATA_FIELDS = tuple(
    field.attname
    for field in Lead._meta.concrete_fields
    if field.attname not in {"id", "organization_id", "created_at", "updated_at"}
    and field.attname not in CONSENT_BOOKKEEPING_FIELDS
)


class Segment(models.Model):
    """A named audience: an organization's leads matching a rule tree (crm.rules)."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="segments"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    rules = models.JSONField(default=dict)
    audience_size = models.PositiveIntegerField(null=True, blank=True)
    audience_counted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"], name="segment_unique_name_per_org"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Suppression(models.Model):
    """An address the organization must not message on a channel, whoever holds it.

    Kept by normalized address (E.164 phone, lower-cased email), not by lead, so a
    lead imported later with the same number is suppressed too. Written only by
    crm.services.suppressions.
    """

    class Reason(models.TextChoices):
        STOP_KEYWORD = "stop_keyword", "Replied STOP"
        UNSUBSCRIBE_LINK = "unsubscribe_link", "Unsubscribe link"
        HARD_BOUNCE = "hard_bounce", "Hard bounce"
        COMPLAINT = "complaint", "Spam complaint"
        MANUAL = "manual", "Added by a user"
        IMPORT = "import", "Import"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="suppressions"
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    address = models.CharField(max_length=254)
    reason = models.CharField(max_length=32, choices=Reason.choices)
    # Who or what made it: a user's name, a vendor's message id, an import's file.
    source = models.CharField(max_length=200, blank=True, default="")
    # When the person's STOP was sent, by the vendor's clock (stop_keyword only): a
    # START lifts the suppression only if sent later.
    keyword_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "channel", "address"],
                name="suppression_unique_address",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} suppression ({self.get_reason_display()})"


class SuppressionLift(models.Model):
    """A suppression someone lifted, and why: the list's history.

    The suppression row itself is deleted (the address may be messaged again);
    this keeps what it was and who lifted it, for as long as the organization
    exists. Written only by crm.services.suppressions.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="suppression_lifts"
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    address = models.CharField(max_length=254)
    # The lifted suppression's own reason, source and time.
    suppression_reason = models.CharField(
        max_length=32, choices=Suppression.Reason.choices
    )
    suppression_source = models.CharField(max_length=200, blank=True, default="")
    suppressed_at = models.DateTimeField()
    # Who lifted it (a user's name) and why.
    lifted_by = models.CharField(max_length=200, blank=True, default="")
    reason = models.CharField(max_length=500)
    lifted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["organization", "channel", "address"],
                name="suppression_lift_address",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} suppression lifted"
