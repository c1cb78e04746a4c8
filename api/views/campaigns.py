"""Campaigns: create (with chunking and stats), launch, pause, resume, cancel, stats,
and a test send of the message."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api.serializers import (
    CampaignCancelSerializer,
    CampaignSerializer,
    CampaignStatsSerializer,
    TestSendInputSerializer,
    TestSendSerializer,
)
from api.views.base import OrganizationScoped
from campaigns.models import Campaign
from campaigns.selectors import campaign_stats
from campaigns.services import lifecycle
from campaigns.services.test_send import campaign_test_send


class CampaignViewSet(
    OrganizationScoped,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = CampaignSerializer
    filterset_fields = ["status", "channel", "segment"]

    def get_queryset(self):
        return self.scoped(Campaign.objects.select_related("dispatch", "segment"))

    def perform_create(self, serializer):
        serializer.instance = lifecycle.campaign_create(
            organization=self.organization,
            created_by=self.request.user,
            **serializer.validated_data,
        )

    def _answer(
        self,
        campaign_id: int,
        *,
        code: int = status.HTTP_200_OK,
        serializer_class=CampaignSerializer,
        **context,
    ) -> Response:
        """The campaign as it is after the action, re-read with its dispatch."""
        campaign = self.get_queryset().get(pk=campaign_id)
        context = {**self.get_serializer_context(), **context}
        return Response(serializer_class(campaign, context=context).data, status=code)

    @extend_schema(request=None, responses={202: CampaignSerializer})
    @action(detail=True, methods=["post"], filter_backends=[])
    def launch(self, request, pk=None):
        campaign = self.get_object()
        lifecycle.campaign_launch(campaign_id=campaign.pk)
        return self._answer(campaign.pk, code=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=CampaignSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def pause(self, request, pk=None):
        campaign = self.get_object()
        lifecycle.campaign_pause(campaign_id=campaign.pk)
        return self._answer(campaign.pk)

    @extend_schema(request=None, responses=CampaignSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def resume(self, request, pk=None):
        campaign = self.get_object()
        lifecycle.campaign_resume(campaign_id=campaign.pk)
        return self._answer(campaign.pk)

    @extend_schema(request=None, responses=CampaignCancelSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def cancel(self, request, pk=None):
        campaign = self.get_object()
        cancelled = lifecycle.campaign_cancel(campaign_id=campaign.pk)
        return self._answer(
            campaign.pk,
            serializer_class=CampaignCancelSerializer,
            messages_cancelled=cancelled,
        )

    @extend_schema(request=TestSendInputSerializer, responses={202: TestSendSerializer})
    @action(detail=True, methods=["post"], filter_backends=[], url_path="test-send")
    def test_send(self, request, pk=None):
        """Send the message as the lead would get it to your own phone or email,
        outside the campaign's counters; 202, as it goes through the pipeline."""
        campaign = self.get_object()
        given = TestSendInputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        sent = campaign_test_send(
            campaign_id=campaign.pk,
            lead_id=given.validated_data["lead"],
            to=given.validated_data["to"],
        )
        return Response(TestSendSerializer(sent).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=CampaignStatsSerializer)
    @action(detail=True, methods=["get"], filter_backends=[])
    def stats(self, request, pk=None):
        stats = campaign_stats(campaign=self.get_object())
        return Response(CampaignStatsSerializer(stats).data)
