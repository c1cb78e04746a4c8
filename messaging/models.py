"""Every outbound message, the dispatches owning them, and the vendors' receipts."""

from decimal import Decimal

from django.db import models
from django.db.models import Q

from crm.models import Channel, Lead, Organization


class MessageCounts(models.Model):
    """Messages counted by what became of them, and what they cost."""

    audience = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0)
    delivered = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    # Of the failed, those the vendor had accepted (an undelivered receipt): with
    # it the counters say when no sent log awaits its receipt any more.
    undelivered = models.PositiveIntegerField(default=0)
    # Of the sent, those whose receipt did not come within the receipt timeout.
    no_receipt = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal("0"))

    class Meta:
        abstract = True


class Dispatch(MessageCounts):
    """One stream of messages with its own counters: a campaign's run, or an automation.

    Whatever creates messages (a broadcast campaign, a nurture sequence, reminders,
    dunning) owns a dispatch; the pipeline only knows dispatches, so every message goes
    through the same claim, send, retry and receipt code. Counters are kept in step
    with the logs in the same transactions that move the logs, and always equal a
    count over them (`reconcile_stats` checks).
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        CANCELLED = "cancelled", "Cancelled"
        COMPLETED = "completed", "Completed"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="dispatches"
    )
    label = models.CharField(max_length=200)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    status = models.CharField(max_length=12, choices=Status, default=Status.ACTIVE)
    # A Celery task name called with the dispatch id once nothing is left non-final;
    # lets the owner (say, a campaign) learn of it without messaging importing it.
    on_finish_task = models.CharField(max_length=200, blank=True, default="")
    # A Celery task called with the dispatch id when the dispatch pauses itself,
    # too many of its recent attempts refused; "" (automations) never pauses.
    on_pause_task = models.CharField(max_length=200, blank=True, default="")
    # Why it paused itself ("" when it did not, or a user paused it); cleared by
    # a resume.
    paused_reason = models.CharField(max_length=255, blank=True, default="")
    # The outcomes of its last MESSAGING_AUTO_PAUSE_WINDOW attempts, oldest first:
    # "0" accepted, "1" refused. Kept only for a dispatch with an on_pause_task,
    # appended to in the statement that moves its counters (dispatch_attempts_add).
    recent_attempts = models.TextField(blank=True, default="", editable=False)
    # How many logs the owner will create, once it knows (a campaign, when its
    # audience is fully chunked). Until then, and always for an automation's
    # open-ended dispatch, the dispatch cannot complete.
    expected_audience = models.PositiveIntegerField(null=True, blank=True)
    pending = models.PositiveIntegerField(default=0)
    # Messages a person is owed (reminders, dunning, HELP replies, test sends) rather
    # than marketing: exempt from quiet hours, frequency caps and unsubscribe links.
    transactional = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "dispatches"

    def __str__(self) -> str:
        return self.label

    @property
    def all_sent(self) -> bool:
        """Every log the owner will create is made and none is left to send
        (retries included): only receipts may still be awaited."""
        return (
            self.expected_audience is not None
            and self.audience >= self.expected_audience
            and self.pending == 0
        )

    @property
    def finished(self) -> int:
        """Logs in a final state: delivered, failed, skipped, cancelled, no receipt."""
        return (
            self.delivered
            + self.failed
            + self.skipped
            + self.cancelled
            + self.no_receipt
        )

    @property
    def awaiting_receipts(self) -> int:
        """Sent logs whose receipt has neither come nor timed out."""
        return self.sent - self.delivered - self.undelivered - self.no_receipt


class RetiredCounts(MessageCounts):
    """What a dispatch's deleted messages counted. Retention deletes old final
    messages; the dispatch keeps its counters, and they still reconcile with the
    messages left plus these."""

    dispatch = models.OneToOneField(
        Dispatch, on_delete=models.CASCADE, primary_key=True, related_name="retired"
    )

    class Meta:
        verbose_name_plural = "retired counts"

    def __str__(self) -> str:
        return f"{self.dispatch_id}: {self.audience} deleted"


class LogStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"
    # Accepted by the vendor, but no receipt came within the receipt timeout.
    NO_RECEIPT = "no_receipt", "No receipt"


# Pending logs as the due index (log_due) holds them: a log has a due time exactly
# while it is pending, so asking for both lets Postgres read that index alone.
PENDING_DUE = Q(status=LogStatus.PENDING, next_attempt_at__isnull=False)

FINAL_STATUSES = (
    LogStatus.DELIVERED,
    LogStatus.FAILED,
    LogStatus.SKIPPED,
    LogStatus.CANCELLED,
    LogStatus.NO_RECEIPT,
)


class CommunicationLog(models.Model):
    """One outbound message, from its creation to its final state.

    `dedupe_key` makes creation idempotent within a dispatch (a broadcast keys on the
    lead); `send_id` is the idempotency key the vendor sees, made once and kept across
    retries, so a message re-sent after a crash is still one message.
    """

    # No single-column indexes on the foreign keys: the composite indexes below lead
    # with them. An update that changes an indexed column (or one an index's
    # condition reads) writes a new entry in every index; one that changes none
    # stays on its page (HOT) and writes none. So no index reads `status`: a
    # delivery receipt changes only the status and its time, and costs no index
    # entry. No database-level foreign key to the dispatch either: checks run row
    # by row, and with the receipts' (below) and the lead's they are a tenth of
    # the database's work in the benchmark. Logs are written only by the pipeline
    # for a dispatch it holds, and deleted with it by Django's cascade. Nor to the
    # lead: logs_create locks a batch's leads in one statement instead, and a
    # trigger on lead deletion clears the logs' lead (migration 0005).
    dispatch = models.ForeignKey(
        Dispatch,
        on_delete=models.CASCADE,
        related_name="logs",
        db_index=False,
        db_constraint=False,
    )
    lead = models.ForeignKey(
        Lead,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="logs",
        db_index=False,
        db_constraint=False,
    )
    dedupe_key = models.CharField(max_length=120)
    # Unique by a constraint, not unique=True, which on Postgres adds a second,
    # pattern-matching index nothing queries.
    send_id = models.CharField(max_length=120)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    recipient = models.CharField(max_length=254, blank=True, default="")
    subject = models.CharField(max_length=255, blank=True, default="")
    body = models.TextField()
    status = models.CharField(
        max_length=12, choices=LogStatus, default=LogStatus.PENDING
    )
    skip_reason = models.CharField(max_length=64, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    # Set only while the log is pending: when it is due.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    # Set only while a worker holds the log (processing): when it claimed it.
    claimed_at = models.DateTimeField(null=True, blank=True)
    vendor = models.CharField(max_length=32, blank=True, default="")
    vendor_ref = models.CharField(max_length=120, blank=True, default="")
    error_code = models.CharField(max_length=64, blank=True, default="")
    error_message = models.CharField(max_length=255, blank=True, default="")
    cost = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal("0"))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dispatch", "dedupe_key"], name="log_unique_key_per_dispatch"
            ),
            models.UniqueConstraint(fields=["send_id"], name="log_unique_send_id"),
            models.UniqueConstraint(
                fields=["vendor", "vendor_ref"],
                condition=~Q(vendor_ref=""),
                name="log_unique_vendor_ref",
            ),
        ]
        indexes = [
            # A dispatch's due pending logs, and claims a dead worker left: each a
            # column set only in that state, so no index reads the status. The
            # dispatch leads so that a claim finds its due logs by both columns
            # whatever the statistics (by the dispatch alone it read all its logs).
            models.Index(
                fields=["dispatch", "next_attempt_at"],
                condition=Q(next_attempt_at__isnull=False),
                name="log_due",
            ),
            models.Index(
                fields=["claimed_at"],
                condition=Q(claimed_at__isnull=False),
                name="log_claimed",
            ),
            models.Index(fields=["lead", "created_at"], name="log_lead_created"),
        ]

    def __str__(self) -> str:
        return f"{self.send_id} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class DeliveryReceipt(models.Model):
    """A vendor's word on a message, stored as it came before it is applied to the log.

    Unique on (vendor, vendor_ref, status): the same receipt twice is stored once, so
    it can never be counted twice.
    """

    class Status(models.TextChoices):
        DELIVERED = "DELIVERED", "Delivered"
        UNDELIVERED = "UNDELIVERED", "Undelivered"

    vendor = models.CharField(max_length=32)
    vendor_ref = models.CharField(max_length=120)
    status = models.CharField(max_length=12, choices=Status)
    error_code = models.CharField(max_length=64, blank=True, default="")
    raw = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    # No database-level foreign key, as for CommunicationLog.dispatch: the log id
    # comes from the log row read in the same transaction.
    log = models.ForeignKey(
        CommunicationLog,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="receipts",
        db_constraint=False,
    )
    processed_at = models.DateTimeField(null=True, blank=True)
    # Why the receipt changed nothing: a duplicate of a final state, unmatched, ...
    outcome = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["vendor", "vendor_ref", "status"], name="receipt_unique"
            ),
        ]
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=Q(processed_at__isnull=True),
                name="receipt_unprocessed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.vendor_ref} {self.status}"


class InboundReply(models.Model):
    """A reply a person sent us, kept as the record of each opt-out and opt-in.

    A reply belongs to the organization whose sender identity it was sent to (or,
    sent to the shared default sender, whose message it answers): its STOP, START
    or HELP acts in that organization alone, and only its members read it (see
    messaging.services.inbound). A reply to no organization changes nothing and is
    for operators only.
    """

    class Action(models.TextChoices):
        OPT_OUT = "opt_out", "Opted out"
        OPT_IN = "opt_in", "Opted in"
        IGNORED = "ignored", "No keyword"
        UNUSABLE_SENDER = "unusable_sender", "Sender not a valid contact"
        NO_ORGANIZATION = "no_organization", "Answers no message we sent"
        STALE = "stale", "Older than the sender's last keyword"
        HELP = "help", "Answered with the help text"
        UNKNOWN_RECIPIENT = "unknown_recipient", "Sent to no organization's sender"

    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="inbound_replies",
    )
    vendor = models.CharField(max_length=32, blank=True, default="")
    # The vendor's id of the message, "" if it gives none: a replay is not applied
    # twice.
    vendor_message_id = models.CharField(max_length=120, blank=True, default="")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    sender = models.CharField(max_length=254)
    # The sender identity it was sent to (our number or address), "" if unknown.
    recipient = models.CharField(max_length=254, blank=True, default="")
    body = models.TextField(blank=True, default="")
    keyword = models.CharField(max_length=16, blank=True, default="")
    action = models.CharField(max_length=32, choices=Action)
    leads_changed = models.PositiveIntegerField(default=0)
    messages_suppressed = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["vendor", "vendor_message_id"],
                condition=~Q(vendor_message_id=""),
                name="inbound_unique_vendor_message",
            ),
        ]
        indexes = [
            models.Index(fields=["sender"], name="inbound_sender"),
            models.Index(fields=["-created_at"], name="inbound_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.keyword or self.body[:20]!r} from {self.sender}"


class OwnDispatch(models.Model):
    """A dispatch messaging itself sends through, one per organization, kind and
    channel: the HELP replies' transactional stream. Made once, on first need."""

    class Kind(models.TextChoices):
        HELP_REPLY = "help_reply", "HELP replies"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="own_dispatches"
    )
    kind = models.CharField(max_length=16, choices=Kind)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    dispatch = models.OneToOneField(
        Dispatch, on_delete=models.CASCADE, related_name="own"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "kind", "channel"],
                name="own_dispatch_unique_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.channel})"
