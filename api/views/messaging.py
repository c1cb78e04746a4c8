"""Messages and receipts, read only: what was sent to whom, and what vendors said."""

from django.db.models import F
from rest_framework import viewsets

from api.filters import CommunicationLogFilter, DeliveryReceiptFilter
from api.serializers import CommunicationLogSerializer, DeliveryReceiptSerializer
from api.views.base import OrganizationScoped
from messaging.models import CommunicationLog, DeliveryReceipt


class CommunicationLogViewSet(OrganizationScoped, viewsets.ReadOnlyModelViewSet):
    serializer_class = CommunicationLogSerializer
    filterset_class = CommunicationLogFilter
    organization_field = "dispatch__organization"

    def get_queryset(self):
        return self.scoped(
            CommunicationLog.objects.annotate(campaign_id=F("dispatch__campaign__id"))
        )


class DeliveryReceiptViewSet(OrganizationScoped, viewsets.ReadOnlyModelViewSet):
    """Receipts matched to the organization's messages (unmatched ones are no one's)."""

    serializer_class = DeliveryReceiptSerializer
    filterset_class = DeliveryReceiptFilter
    organization_field = "log__dispatch__organization"

    def get_queryset(self):
        return self.scoped(DeliveryReceipt.objects.all())
