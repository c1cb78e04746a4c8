"""Serializers: validate input by field and shape output; writes go to services."""

import json
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.models import LeadImport
from campaigns.models import Campaign
from campaigns.selectors import campaign_chunking
from crm.models import Channel, Lead, Segment
from crm.rules import MAX_TEXT_LENGTH
from messaging.models import CommunicationLog, DeliveryReceipt

MAX_INT = 2_147_483_647
ATTRIBUTE_KEY_MAX_LENGTH = 64
ATTRIBUTES_MAX = 100
# An attribute's value as JSON text: as long as the longest text a rule compares.
ATTRIBUTE_VALUE_MAX_LENGTH = MAX_TEXT_LENGTH
# Free text in TextFields, which have no length of their own.
DESCRIPTION_MAX_LENGTH = 5000
TEMPLATE_MAX_LENGTH = 10_000


def _without_nul(value: Any, path: str) -> None:
    """Postgres cannot store NUL in text or JSON: refuse it before the query does."""
    if isinstance(value, str):
        if "\x00" in value:
            raise serializers.ValidationError(f"{path} contains a NUL character")
    elif isinstance(value, dict):
        for key, item in value.items():
            _without_nul(key, f"{path} key")
            _without_nul(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _without_nul(item, f"{path}[{index}]")


class SafeJSONField(serializers.JSONField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        _without_nul(value, self.field_name or "value")
        return value


# --- Leads -------------------------------------------------------------------------


class LeadSerializer(serializers.ModelSerializer):
    phones = serializers.ListField(
        child=serializers.CharField(max_length=64), max_length=20, required=False
    )
    emails = serializers.ListField(
        child=serializers.CharField(max_length=254), max_length=20, required=False
    )
    tags = serializers.ListField(
        child=serializers.CharField(max_length=64), max_length=100, required=False
    )
    attributes = SafeJSONField(required=False)
    total_spend = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=0, required=False
    )
    visits = serializers.IntegerField(min_value=0, max_value=MAX_INT, required=False)
    # Empty when the lead has none, so not declared as format "email".
    email = serializers.CharField(read_only=True)

    class Meta:
        model = Lead
        fields = [
            "id",
            "external_id",
            "name",
            "phones",
            "emails",
            "phone",
            "email",
            "total_spend",
            "visits",
            "timezone",
            "attributes",
            "tags",
            "sms_opt_out",
            "email_opt_out",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["phone", "email", "created_at", "updated_at"]

    def validate_attributes(self, value: Any) -> dict:
        if not isinstance(value, dict):
            raise serializers.ValidationError("must be an object")
        if len(value) > ATTRIBUTES_MAX:
            raise serializers.ValidationError(
                f"at most {ATTRIBUTES_MAX} attributes, got {len(value)}"
            )
        for key, item in value.items():
            if not key or len(key) > ATTRIBUTE_KEY_MAX_LENGTH:
                raise serializers.ValidationError(
                    f"keys are 1 to {ATTRIBUTE_KEY_MAX_LENGTH} characters"
                )
            if len(json.dumps(item, ensure_ascii=False)) > ATTRIBUTE_VALUE_MAX_LENGTH:
                raise serializers.ValidationError(
                    f"{key}: a value is at most {ATTRIBUTE_VALUE_MAX_LENGTH} "
                    "characters as JSON"
                )
        return value


class LeadImportSerializer(serializers.ModelSerializer):
    rejected = serializers.ListField(child=serializers.DictField(), read_only=True)

    class Meta:
        model = LeadImport
        fields = [
            "id",
            "filename",
            "size",
            "status",
            "rows_read",
            "created",
            "updated",
            "rejected",
            "rejected_count",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class LeadImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="A CSV with a header line; rows upsert by external id, phone, email."
    )


# --- Segments ----------------------------------------------------------------------


class SegmentSerializer(serializers.ModelSerializer):
    rules = SafeJSONField(
        help_text='A rule tree, e.g. {"field": "visits", "op": "gte", "value": 3}, '
        'or {"all": [...]} / {"any": [...]} / {"not": {...}}.'
    )

    class Meta:
        model = Segment
        fields = [
            "id",
            "name",
            "description",
            "rules",
            "audience_size",
            "audience_counted_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "audience_size",
            "audience_counted_at",
            "created_at",
            "updated_at",
        ]
        extra_kwargs = {"description": {"max_length": DESCRIPTION_MAX_LENGTH}}


class SegmentPreviewInputSerializer(serializers.Serializer):
    rules = SafeJSONField()
    sample_size = serializers.IntegerField(min_value=0, max_value=100, required=False)


class SegmentPreviewSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    sample = LeadSerializer(many=True)


# --- Campaigns ---------------------------------------------------------------------


class ChunkingSerializer(serializers.Serializer):
    total_leads = serializers.IntegerField()
    total_chunks = serializers.IntegerField()
    chunk_size = serializers.IntegerField()


class CampaignCountsSerializer(serializers.Serializer):
    audience = serializers.IntegerField()
    sent = serializers.IntegerField()
    failed = serializers.IntegerField()
    delivered = serializers.IntegerField()
    no_receipt = serializers.IntegerField()


class ScopedSegmentField(serializers.PrimaryKeyRelatedField):
    """Only the caller's organization's segments exist, as far as input goes."""

    def get_queryset(self):
        organization = self.context.get("organization")
        if organization is None:
            return Segment.objects.none()
        return Segment.objects.filter(organization=organization)


class CampaignSerializer(serializers.ModelSerializer):
    segment = ScopedSegmentField()
    channel = serializers.ChoiceField(choices=Channel.choices)
    chunk_size = serializers.IntegerField(
        min_value=1,
        max_value=MAX_INT,
        required=False,
        allow_null=True,
        help_text="Leads per chunk; by audience size when not given.",
    )
    chunking = serializers.SerializerMethodField()
    stats = serializers.SerializerMethodField()
    paused_reason = serializers.SerializerMethodField(
        help_text="Why the campaign paused itself (too many of its recent messages "
        'failed); "" when it did not. Cleared by a resume.'
    )

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "channel",
            "subject",
            "template",
            "segment",
            "audience_rules",
            "chunk_size",
            "scheduled_at",
            "status",
            "paused_reason",
            "chunking",
            "stats",
            "created_at",
            "launched_at",
            "completed_at",
        ]
        read_only_fields = [
            "audience_rules",
            "status",
            "created_at",
            "launched_at",
            "completed_at",
        ]
        extra_kwargs = {
            "template": {"max_length": TEMPLATE_MAX_LENGTH},
            "audience_rules": {
                "help_text": "The segment's rules when the campaign was launched: its "
                "audience, whatever the segment says since."
            },
        }

    @extend_schema_field(ChunkingSerializer)
    def get_chunking(self, campaign: Campaign) -> dict:
        return campaign_chunking(campaign=campaign)

    def get_paused_reason(self, campaign: Campaign) -> str:
        return campaign.dispatch.paused_reason if campaign.dispatch else ""

    @extend_schema_field(CampaignCountsSerializer)
    def get_stats(self, campaign: Campaign) -> dict:
        dispatch = campaign.dispatch
        return {
            "audience": dispatch.audience if dispatch else 0,
            "sent": dispatch.sent if dispatch else 0,
            "failed": dispatch.failed if dispatch else 0,
            "delivered": dispatch.delivered if dispatch else 0,
            "no_receipt": dispatch.no_receipt if dispatch else 0,
        }

    def validate_chunk_size(self, value: int | None) -> int | None:
        maximum = settings.CAMPAIGN_CHUNK_SIZE_MAX
        if value is not None and value > maximum:
            raise serializers.ValidationError(f"must be between 1 and {maximum}")
        return value


class CampaignStatsSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Campaign.Status.choices)
    audience = serializers.IntegerField()
    expected_audience = serializers.IntegerField()
    skipped = serializers.IntegerField()
    pending = serializers.IntegerField()
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    no_receipt = serializers.IntegerField(
        help_text="Sent, but no receipt came within the receipt timeout."
    )
    retried = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=14, decimal_places=4)
    dead_chunks = serializers.IntegerField()
    progress = serializers.FloatField(help_text="Share of the audience final, 0 to 1.")


class CampaignCancelSerializer(CampaignSerializer):
    messages_cancelled = serializers.SerializerMethodField()

    class Meta(CampaignSerializer.Meta):
        fields = [*CampaignSerializer.Meta.fields, "messages_cancelled"]

    def get_messages_cancelled(self, campaign: Campaign) -> int:
        return self.context.get("messages_cancelled", 0)


# --- Messages and receipts ---------------------------------------------------------


# The ids and times the pipeline keeps for itself: how it dedupes, claims and
# identifies a message to the vendor.
_LOG_BOOKKEEPING = {
    "id",
    "dispatch",
    "lead",
    "dedupe_key",
    "send_id",
    "last_attempt_at",
    "claimed_at",
    "updated_at",
}


class TestSendInputSerializer(serializers.Serializer):
    lead = serializers.IntegerField(
        min_value=1,
        max_value=MAX_INT,
        help_text="The lead whose data personalizes the message.",
    )
    to = serializers.CharField(
        max_length=254,
        help_text="Your own phone number (SMS campaign) or email address (email "
        "campaign): where the test goes instead of the lead.",
    )


class TestSendSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The message's id (GET /api/messages).")
    send_id = serializers.CharField()
    status = serializers.CharField()
    to = serializers.CharField(help_text="The address, normalized.")
    lead = serializers.IntegerField()


class CommunicationLogSerializer(serializers.ModelSerializer):
    campaign = serializers.IntegerField(
        source="campaign_id", read_only=True, allow_null=True
    )
    lead = serializers.IntegerField(source="lead_id", read_only=True, allow_null=True)
    dispatch = serializers.IntegerField(source="dispatch_id", read_only=True)

    class Meta:
        model = CommunicationLog
        # Every column of the message but the pipeline's own bookkeeping.
        fields = [
            "id",
            "campaign",
            "dispatch",
            "lead",
            *(
                field.name
                for field in CommunicationLog._meta.concrete_fields
                if field.name not in _LOG_BOOKKEEPING
            ),
        ]
        read_only_fields = fields


class DeliveryReceiptSerializer(serializers.ModelSerializer):
    log = serializers.IntegerField(source="log_id", read_only=True, allow_null=True)

    class Meta:
        model = DeliveryReceipt
        fields = [
            "id",
            "vendor",
            "vendor_ref",
            "status",
            "error_code",
            "occurred_at",
            "received_at",
            "log",
            "processed_at",
            "outcome",
        ]
        read_only_fields = fields
