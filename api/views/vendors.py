"""Vendor accounts: who the organization sends as, through which vendor."""

from rest_framework import exceptions, viewsets

from api.permissions import IsOrganizationMember, IsOwnerToChange
from api.serializers_vendors import VendorAccountSerializer
from api.views.base import OrganizationScoped
from vendors.models import VendorAccount
from vendors.services import (
    VendorAccountInvalid,
    vendor_account_create,
    vendor_account_delete,
    vendor_account_update,
)


class VendorAccountViewSet(OrganizationScoped, viewsets.ModelViewSet):
    serializer_class = VendorAccountSerializer
    permission_classes = [IsOrganizationMember, IsOwnerToChange]
    filterset_fields = ["channel", "vendor", "is_active"]

    def get_queryset(self):
        return self.scoped(VendorAccount.objects.all())

    def perform_create(self, serializer):
        fields = dict(serializer.validated_data)
        secrets = fields.pop("credentials", None)
        try:
            serializer.instance = vendor_account_create(
                organization=self.organization, secrets=secrets, **fields
            )
        except VendorAccountInvalid as error:
            raise _bad_request(error) from error

    def perform_update(self, serializer):
        fields = dict(serializer.validated_data)
        secrets = fields.pop("credentials", None)
        try:
            serializer.instance = vendor_account_update(
                account=serializer.instance, secrets=secrets, **fields
            )
        except VendorAccountInvalid as error:
            raise _bad_request(error) from error

    def perform_destroy(self, instance):
        vendor_account_delete(account=instance)


def _bad_request(error: VendorAccountInvalid) -> exceptions.ValidationError:
    """The problems by field, a secret's under `credentials`."""
    detail: dict = {}
    for field, message in error.problems.items():
        if field.startswith("credentials."):
            detail.setdefault("credentials", {})[field.split(".", 1)[1]] = [message]
        else:
            detail[field] = [message]
    return exceptions.ValidationError(detail)
