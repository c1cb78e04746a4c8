"""For operators: /health for load balancers and monitors, /api/stats for dashboards."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import AllowAny, IsAdminUser, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from api import monitoring
from api.permissions import membership_of

_Check = inline_serializer(
    "HealthCheck",
    {"status": serializers.ChoiceField(choices=["ok", "error"])},
)
_Health = inline_serializer(
    "Health",
    {
        "status": serializers.ChoiceField(choices=["healthy", "unhealthy"]),
        "checks": inline_serializer(
            "HealthChecks",
            {"database": _Check, "broker": _Check, "worker": _Check, "beat": _Check},
        ),
    },
)


class HealthView(APIView):
    """Database, broker, a live worker and a recent beat run: 200 only if all are.

    Anyone sees each part's status; staff signed in see the details too (ages,
    worker hosts, the error each failed probe raised).
    """

    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(responses={200: _Health, 503: _Health}, auth=[])
    def get(self, request):
        report = monitoring.health_report()
        if not request.user.is_staff:
            report = monitoring.health_statuses(report)
        code = (
            status.HTTP_200_OK
            if report["status"] == "healthy"
            else status.HTTP_503_SERVICE_UNAVAILABLE
        )
        return Response(report, status=code)


class StatsView(APIView):
    """For staff. An operator (superuser) sees the whole system: queue depths, tasks
    processed and failed per task type, worker heartbeats, uptime. A staff member
    of an organization sees that organization's work waiting, counted from its own
    rows: the queues and task counts span every organization."""

    permission_classes = [IsAuthenticated, IsAdminUser]

    @extend_schema(
        responses=inline_serializer(
            "Stats",
            {
                "scope": serializers.ChoiceField(choices=["global", "organization"]),
                "queues": serializers.DictField(child=serializers.IntegerField()),
                "dead_chunks": serializers.IntegerField(
                    required=False, help_text="organization scope only"
                ),
                "tasks": serializers.DictField(
                    child=serializers.DictField(child=serializers.IntegerField()),
                    required=False,
                    help_text="global scope only",
                ),
                "workers": serializers.DictField(
                    child=serializers.DictField(child=serializers.FloatField()),
                    required=False,
                    help_text="global scope only",
                ),
                "uptime_seconds": serializers.FloatField(
                    required=False, help_text="global scope only"
                ),
            },
        )
    )
    def get(self, request):
        if not request.user.is_superuser:
            membership = membership_of(request)
            if membership is None:
                raise PermissionDenied("You are not a member of any organization.")
            return Response(
                {
                    "scope": "organization",
                    **monitoring.organization_backlog(
                        organization_id=membership.organization_id
                    ),
                }
            )
        return Response(
            {
                "scope": "global",
                "queues": monitoring.queue_depths(),
                "tasks": monitoring.task_counts(),
                "workers": monitoring.worker_heartbeats(),
                "uptime_seconds": monitoring.uptime_seconds(),
            }
        )
