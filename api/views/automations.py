"""Appointments, invoices, nurture sequences and enrollments, daily snapshots."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api.serializers_automations import (
    AppointmentSerializer,
    DailySnapshotSerializer,
    EnrollmentSerializer,
    InvoiceSerializer,
    NurtureSequenceSerializer,
)
from api.services.automations import enrollment_create, enrollment_exit, sequence_save
from api.views.base import OrganizationScoped
from automations.models import (
    Appointment,
    DailySnapshot,
    Enrollment,
    Invoice,
    NurtureSequence,
)


class _ModelSaved:
    """Plain rows: saved with the organization set and model validation run."""

    def perform_create(self, serializer):
        self._save(serializer, organization=self.organization)

    def perform_update(self, serializer):
        self._save(serializer)

    def _save(self, serializer, **extra):
        instance = serializer.instance or serializer.Meta.model(**extra)
        for name, value in serializer.validated_data.items():
            setattr(instance, name, value)
        instance.full_clean(validate_constraints=False)
        try:
            with transaction.atomic():
                instance.save()
        except IntegrityError as error:
            raise ValidationError({"non_field_errors": [str(error)]}) from error
        serializer.instance = instance


class AppointmentViewSet(OrganizationScoped, _ModelSaved, viewsets.ModelViewSet):
    serializer_class = AppointmentSerializer
    filterset_fields = ["lead", "status"]

    def get_queryset(self):
        return self.scoped(Appointment.objects.all())


class InvoiceViewSet(OrganizationScoped, _ModelSaved, viewsets.ModelViewSet):
    serializer_class = InvoiceSerializer
    filterset_fields = ["lead", "status"]

    def get_queryset(self):
        return self.scoped(Invoice.objects.all())


class NurtureSequenceViewSet(OrganizationScoped, viewsets.ModelViewSet):
    serializer_class = NurtureSequenceSerializer
    filterset_fields = ["is_active"]

    def get_queryset(self):
        return self.scoped(NurtureSequence.objects.prefetch_related("steps"))

    def perform_create(self, serializer):
        serializer.instance = sequence_save(
            organization=self.organization, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = sequence_save(
            organization=self.organization,
            sequence=serializer.instance,
            **serializer.validated_data,
        )


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
        serializer.instance = enrollment_create(
            organization=self.organization, **serializer.validated_data
        )

    @extend_schema(request=None, responses=EnrollmentSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def exit(self, request, pk=None):
        enrollment = enrollment_exit(enrollment=self.get_object())
        return Response(self.get_serializer(enrollment).data)


class DailySnapshotViewSet(OrganizationScoped, viewsets.ReadOnlyModelViewSet):
    serializer_class = DailySnapshotSerializer
    filterset_fields = {"date": ["exact", "gte", "lte"]}

    def get_queryset(self):
        return self.scoped(DailySnapshot.objects.all())
