"""Leads: CRUD, filter, search, and CSV upload imported in the background."""

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api.filters import LeadFilter, SafeSearchFilter
from api.models import LeadImport
from api.serializers import (
    LeadImportSerializer,
    LeadImportUploadSerializer,
    LeadSerializer,
)
from api.services.lead_imports import lead_import_start
from api.uploads import LeadImportParser
from api.views.base import OrganizationScoped
from crm.models import Lead
from crm.services.leads import lead_create, lead_update


class LeadViewSet(OrganizationScoped, viewsets.ModelViewSet):
    serializer_class = LeadSerializer
    filter_backends = [DjangoFilterBackend, SafeSearchFilter]
    filterset_class = LeadFilter
    search_fields = ["name", "email", "phone", "external_id"]

    def get_queryset(self):
        return self.scoped(Lead.objects.all())

    def perform_create(self, serializer):
        serializer.instance = lead_create(
            organization=self.organization, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = lead_update(
            lead=serializer.instance, **serializer.validated_data
        )

    @extend_schema(
        request={"multipart/form-data": LeadImportUploadSerializer},
        responses={202: LeadImportSerializer},
        summary="Upload a CSV of leads; it is imported in the background",
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[LeadImportParser],
        filter_backends=[],
        pagination_class=None,
    )
    def import_csv(self, request):
        upload = LeadImportUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        file = upload.validated_data["file"]
        started = lead_import_start(
            organization=self.organization,
            filename=file.name or "",
            file=file,
            created_by=request.user,
        )
        return Response(
            LeadImportSerializer(started).data, status=status.HTTP_202_ACCEPTED
        )


class LeadImportViewSet(
    OrganizationScoped,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Uploaded CSVs: status, counts, and the rejected rows by line."""

    serializer_class = LeadImportSerializer

    def get_queryset(self):
        return self.scoped(LeadImport.objects.all())
