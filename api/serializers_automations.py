"""Serializers for what beat's automations work on (the automations app's models)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.serializers import DESCRIPTION_MAX_LENGTH, TEMPLATE_MAX_LENGTH
from automations.models import (
    Appointment,
    DailySnapshot,
    Enrollment,
    Invoice,
    NurtureSequence,
    NurtureStep,
)
from crm.models import Lead, Segment


@extend_schema_field(OpenApiTypes.INT)
class _Scoped(serializers.PrimaryKeyRelatedField):
    """Only the caller's organization's objects exist, as far as input goes."""

    model = None

    def get_queryset(self):
        organization = self.context.get("organization")
        if organization is None:
            return self.model.objects.none()
        return self.model.objects.filter(organization=organization)


class ScopedLeadField(_Scoped):
    model = Lead


class ScopedSequenceField(_Scoped):
    model = NurtureSequence


class ScopedSegmentField(_Scoped):
    model = Segment


class SegmentEnrollSerializer(serializers.Serializer):
    segment = ScopedSegmentField()


class AppointmentSerializer(serializers.ModelSerializer):
    lead = ScopedLeadField()

    class Meta:
        model = Appointment
        fields = [
            "id",
            "lead",
            "title",
            "location",
            "starts_at",
            "status",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["status", "created_at", "updated_at"]


class InvoiceSerializer(serializers.ModelSerializer):
    lead = ScopedLeadField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)

    class Meta:
        model = Invoice
        fields = [
            "id",
            "lead",
            "number",
            "amount",
            "currency",
            "due_date",
            "status",
            "payment_link",
            "paid_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["status", "paid_at", "created_at", "updated_at"]


class NurtureStepSerializer(serializers.ModelSerializer):
    position = serializers.IntegerField(min_value=1, max_value=32767)
    delay_minutes = serializers.IntegerField(min_value=0, max_value=525_600)

    class Meta:
        model = NurtureStep
        fields = ["position", "delay_minutes", "channel", "subject", "template"]
        extra_kwargs = {"template": {"max_length": TEMPLATE_MAX_LENGTH}}

    def validate(self, attrs):
        NurtureStep(**attrs).clean()  # template and subject compile; email has one
        return attrs


class NurtureSequenceSerializer(serializers.ModelSerializer):
    steps = NurtureStepSerializer(many=True, required=False)

    class Meta:
        model = NurtureSequence
        fields = [
            "id",
            "name",
            "description",
            "is_active",
            "steps",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {"description": {"max_length": DESCRIPTION_MAX_LENGTH}}

    def validate_steps(self, steps):
        positions = [step["position"] for step in steps]
        if len(set(positions)) != len(positions):
            raise serializers.ValidationError("positions must be unique")
        return steps


class EnrollmentSerializer(serializers.ModelSerializer):
    lead = ScopedLeadField()
    sequence = ScopedSequenceField()

    class Meta:
        model = Enrollment
        read_only_fields = [
            "status",
            "current_step",
            "next_run_at",
            "exit_reason",
            "enrolled_at",
            "finished_at",
        ]
        fields = ["id", "lead", "sequence", *read_only_fields]


class DailySnapshotSerializer(serializers.ModelSerializer):
    class Meta:
        model = DailySnapshot
        fields = ["id", "date", *DailySnapshot.KPI_FIELDS, "computed_at"]
        read_only_fields = fields
