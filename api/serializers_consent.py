"""Serializers for the suppression list and the organization's sending rules."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from crm.contacts import ContactError
from crm.models import Channel, Organization, Suppression, SuppressionLift
from crm.services.organizations import (
    FREQUENCY_CAP_MAX_COUNT,
    FREQUENCY_CAP_MAX_DAYS,
)
from crm.services.suppressions import LIFT_REASON_MAX_LENGTH, address_normalize


class SuppressionSerializer(serializers.ModelSerializer):
    """An address the organization does not message; `address` as stored."""

    channel = serializers.ChoiceField(choices=Channel.choices)
    address = serializers.CharField(max_length=254)
    reason = serializers.ChoiceField(
        choices=Suppression.Reason.choices, default=Suppression.Reason.MANUAL
    )

    class Meta:
        model = Suppression
        fields = ["id", "channel", "address", "reason", "source", "created_at"]
        read_only_fields = ["source", "created_at"]

    def validate(self, attrs):
        try:
            attrs["address"] = address_normalize(
                channel=attrs["channel"], address=attrs["address"]
            )
        except ContactError as error:
            raise serializers.ValidationError({"address": [str(error)]}) from None
        return attrs


class SuppressionLiftInputSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=LIFT_REASON_MAX_LENGTH,
        help_text="Why the address may be messaged again, e.g. how they asked.",
    )


class SuppressionLiftSerializer(serializers.ModelSerializer):
    """A lifted suppression: what it was, who lifted it and why."""

    class Meta:
        model = SuppressionLift
        fields = [
            "id",
            "channel",
            "address",
            "suppression_reason",
            "suppression_source",
            "suppressed_at",
            "lifted_by",
            "reason",
            "lifted_at",
        ]
        read_only_fields = fields


class SenderIdentitySerializer(serializers.Serializer):
    channel = serializers.CharField()
    vendor = serializers.CharField()
    sender = serializers.CharField()


@extend_schema_field(
    {"type": "string", "pattern": r"^\d\d:\d\d(:\d\d)?$", "example": "08:00"}
)
class LocalTimeField(serializers.TimeField):
    """A time of the recipient's day, HH:MM: no offset, unlike an RFC 3339 time."""

    def __init__(self, **kwargs):
        super().__init__(format="%H:%M", **kwargs)


class OrganizationSerializer(serializers.ModelSerializer):
    """The caller's organization: its name, sending rules and sender identities."""

    name = serializers.CharField(max_length=200)
    time_zone = serializers.CharField(
        max_length=64, help_text="An IANA time zone, e.g. America/New_York."
    )
    frequency_cap_count = serializers.IntegerField(
        min_value=1,
        max_value=FREQUENCY_CAP_MAX_COUNT,
        allow_null=True,
        required=False,
        help_text="At most this many marketing messages per lead and channel in "
        "frequency_cap_days; null for no cap.",
    )
    frequency_cap_days = serializers.IntegerField(
        min_value=1, max_value=FREQUENCY_CAP_MAX_DAYS, required=False
    )
    help_text = serializers.CharField(max_length=300, allow_blank=True, required=False)
    quiet_hours_start = LocalTimeField(required=False)
    quiet_hours_end = LocalTimeField(required=False)
    transactional_night_start = LocalTimeField(required=False)
    transactional_night_end = LocalTimeField(required=False)
    sender_identities = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = [
            "id",
            "name",
            "slug",
            "time_zone",
            "quiet_hours_enabled",
            "quiet_hours_start",
            "quiet_hours_end",
            "transactional_night_start",
            "transactional_night_end",
            "frequency_cap_count",
            "frequency_cap_days",
            "help_text",
            "sender_identities",
        ]
        read_only_fields = ["id", "slug"]

    @extend_schema_field(SenderIdentitySerializer(many=True))
    def get_sender_identities(self, organization) -> list[dict]:
        # Through the relation, never the credentials: only these three columns.
        return list(
            organization.vendor_accounts.filter(is_active=True)
            .order_by("channel")
            .values("channel", "vendor", "sender")
        )
