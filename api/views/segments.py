"""Segments: CRUD and a preview (count and a sample) of the leads rules select."""

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api.serializers import (
    SegmentPreviewInputSerializer,
    SegmentPreviewSerializer,
    SegmentSerializer,
)
from api.views.base import OrganizationScoped
from crm.models import Segment
from crm.selectors import segment_preview
from crm.services.segments import segment_create, segment_update


class SegmentViewSet(OrganizationScoped, viewsets.ModelViewSet):
    serializer_class = SegmentSerializer
    filterset_fields = ["name"]

    def get_queryset(self):
        return self.scoped(Segment.objects.all())

    def perform_create(self, serializer):
        serializer.instance = segment_create(
            organization=self.organization, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = segment_update(
            segment=serializer.instance, **serializer.validated_data
        )

    @extend_schema(responses=SegmentPreviewSerializer, summary="Preview a segment")
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def preview(self, request, pk=None):
        segment = self.get_object()
        preview = segment_preview(organization=self.organization, rules=segment.rules)
        return Response(SegmentPreviewSerializer(preview).data)

    @extend_schema(
        request=SegmentPreviewInputSerializer,
        responses=SegmentPreviewSerializer,
        summary="Preview a rule tree before saving it as a segment",
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="preview",
        url_name="preview-rules",
        filter_backends=[],
        pagination_class=None,
    )
    def preview_rules(self, request):
        given = SegmentPreviewInputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        preview = segment_preview(
            organization=self.organization, **given.validated_data
        )
        return Response(SegmentPreviewSerializer(preview).data)
