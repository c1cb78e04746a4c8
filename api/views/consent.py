"""The suppression list and the organization's sending rules."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from api.filters import (
    OrganizationFilterBackend,
    SuppressionFilter,
    SuppressionLiftFilter,
)
from api.permissions import IsOwner, organization_of
from api.serializers_consent import (
    OrganizationSerializer,
    SuppressionLiftInputSerializer,
    SuppressionLiftSerializer,
    SuppressionSerializer,
)
from api.views.base import OrganizationScoped
from crm.models import Organization, Suppression, SuppressionLift
from crm.services.organizations import organization_settings_update
from crm.services.suppressions import (
    SuppressionError,
    address_unsuppress,
    suppression_get_or_create,
)


class SuppressionViewSet(
    OrganizationScoped,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Addresses the organization does not message, by channel.

    Adding one that is there already answers 200 with it as it stands (its first
    reason and time kept); lifting one is for owners, with a reason kept in the
    history.
    """

    serializer_class = SuppressionSerializer
    filter_backends = [OrganizationFilterBackend]
    filterset_class = SuppressionFilter

    def get_queryset(self):
        if self.action == "history":
            return self.scoped(SuppressionLift.objects.all())
        return self.scoped(Suppression.objects.all())

    def filter_queryset(self, queryset):
        # A lift's ?reason= is why, not the list's filter by reason.
        if self.action == "destroy":
            return queryset
        return super().filter_queryset(queryset)

    def get_permissions(self):
        if self.action == "destroy":
            return [*super().get_permissions(), IsOwner()]
        return super().get_permissions()

    def create(self, request, *args, **kwargs):
        given = self.get_serializer(data=request.data)
        given.is_valid(raise_exception=True)
        suppression, created = suppression_get_or_create(
            organization_id=self.organization.pk,
            source=request.user.get_username(),
            **given.validated_data,
        )
        return Response(
            self.get_serializer(suppression).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        request=SuppressionLiftInputSerializer,
        parameters=[
            OpenApiParameter(
                "reason",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                description="Why it is lifted, if not in the JSON body.",
            )
        ],
        responses={200: SuppressionLiftSerializer},
        summary="Lift a suppression (owners), with a reason kept in the history",
    )
    def destroy(self, request, *args, **kwargs):
        suppression = self.get_object()
        body = request.data if isinstance(request.data, dict) else {}
        given = SuppressionLiftInputSerializer(
            data={"reason": body.get("reason") or request.query_params.get("reason")}
        )
        given.is_valid(raise_exception=True)
        try:
            lift = address_unsuppress(
                suppression_id=suppression.pk,
                organization_id=self.organization.pk,
                lifted_by=request.user.get_username(),
                reason=given.validated_data["reason"],
            )
        except SuppressionError as error:
            raise ValidationError({"reason": [str(error)]}) from None
        if lift is None:
            raise NotFound("the suppression was lifted meanwhile")
        return Response(SuppressionLiftSerializer(lift).data)

    @extend_schema(
        responses=SuppressionLiftSerializer(many=True),
        summary="Lifted suppressions: what each was, who lifted it and why",
    )
    @action(
        detail=False,
        methods=["get"],
        url_path="history",
        filterset_class=SuppressionLiftFilter,
        serializer_class=SuppressionLiftSerializer,
    )
    def history(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(
            SuppressionLiftSerializer(page, many=True).data
        )


class OrganizationView(generics.RetrieveUpdateAPIView):
    """The caller's organization: read by any member, changed by its owners."""

    serializer_class = OrganizationSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def get_permissions(self):
        if self.request.method == "PATCH":
            return [*super().get_permissions(), IsOwner()]
        return super().get_permissions()

    def get_object(self) -> Organization:
        return organization_of(self.request)

    def perform_update(self, serializer):
        serializer.instance = organization_settings_update(
            organization=serializer.instance, **serializer.validated_data
        )
