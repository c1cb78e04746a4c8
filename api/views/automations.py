"""Appointments, invoices, nurture sequences and enrollments, daily snapshots.

State changes go through the automations app's services, which also cancel the
reminders or dunning notices still waiting for an appointment or invoice that no
longer needs them.
"""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api.serializers_automations import (
    AppointmentSerializer,
    DailySnapshotSerializer,
    EnrollmentSerializer,
    InvoiceSerializer,
    NurtureSequenceSerializer,
    SegmentEnrollSerializer,
)
from api.views.base import OrganizationScoped
from automations.models import (
    Appointment,
    DailySnapshot,
    Enrollment,
    Invoice,
    NurtureSequence,
)
from automations.services import dunning, nurture, reminders, sequences


class _Editable(
    OrganizationScoped,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Created and edited field by field; state changes are actions."""


class AppointmentViewSet(_Editable):
    serializer_class = AppointmentSerializer
    filterset_fields = ["lead", "status"]

    def get_queryset(self):
        return self.scoped(Appointment.objects.all())

    def perform_create(self, serializer):
        serializer.instance = reminders.appointment_create(
            organization=self.organization, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = reminders.appointment_update(
            appointment=serializer.instance, **serializer.validated_data
        )

    @extend_schema(request=None, responses=AppointmentSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def cancel(self, request, pk=None):
        appointment = reminders.appointment_cancel(appointment=self.get_object())
        return Response(self.get_serializer(appointment).data)

    @extend_schema(request=None, responses=AppointmentSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def complete(self, request, pk=None):
        appointment = reminders.appointment_complete(appointment=self.get_object())
        return Response(self.get_serializer(appointment).data)


class InvoiceViewSet(_Editable):
    serializer_class = InvoiceSerializer
    filterset_fields = ["lead", "status"]

    def get_queryset(self):
        return self.scoped(Invoice.objects.all())

    def perform_create(self, serializer):
        serializer.instance = dunning.invoice_create(
            organization=self.organization, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = dunning.invoice_update(
            invoice_id=serializer.instance.pk, **serializer.validated_data
        )

    @extend_schema(request=None, responses=InvoiceSerializer)
    @action(detail=True, methods=["post"], url_path="mark-paid", filter_backends=[])
    def mark_paid(self, request, pk=None):
        invoice = dunning.invoice_mark_paid(invoice=self.get_object())
        return Response(self.get_serializer(invoice).data)

    @extend_schema(request=None, responses=InvoiceSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def void(self, request, pk=None):
        invoice = dunning.invoice_void(invoice=self.get_object())
        return Response(self.get_serializer(invoice).data)


class NurtureSequenceViewSet(OrganizationScoped, viewsets.ModelViewSet):
    serializer_class = NurtureSequenceSerializer
    filterset_fields = ["is_active"]

    def get_queryset(self):
        return self.scoped(NurtureSequence.objects.prefetch_related("steps"))

    def perform_create(self, serializer):
        serializer.instance = sequences.sequence_save(
            organization=self.organization, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = sequences.sequence_save(
            organization=self.organization,
            sequence=serializer.instance,
            **serializer.validated_data,
        )

    @extend_schema(
        request=SegmentEnrollSerializer,
        responses={
            202: inline_serializer(
                "SegmentEnrolled", {"enrolled": serializers.IntegerField()}
            )
        },
        summary="Enroll every lead of a segment not already in the sequence",
    )
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def enroll(self, request, pk=None):
        sequence = self.get_object()
        given = SegmentEnrollSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        given.is_valid(raise_exception=True)
        enrolled = nurture.enrollments_create_for_segment(
            sequence=sequence, segment=given.validated_data["segment"]
        )
        return Response({"enrolled": enrolled}, status=status.HTTP_202_ACCEPTED)


class EnrollmentViewSet(
    OrganizationScoped,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = EnrollmentSerializer
    filterset_fields = ["lead", "sequence", "status"]

    def get_queryset(self):
        return self.scoped(Enrollment.objects.all())

    def perform_create(self, serializer):
        serializer.instance = nurture.enrollment_create(**serializer.validated_data)

    @extend_schema(request=None, responses=EnrollmentSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def exit(self, request, pk=None):
        enrollment = nurture.enrollment_exit(
            enrollment=self.get_object(), reason=Enrollment.ExitReason.MANUAL
        )
        return Response(self.get_serializer(enrollment).data)


class DailySnapshotViewSet(OrganizationScoped, viewsets.ReadOnlyModelViewSet):
    serializer_class = DailySnapshotSerializer
    filterset_fields = {"date": ["exact", "gte", "lte"]}

    def get_queryset(self):
        return self.scoped(DailySnapshot.objects.all())
