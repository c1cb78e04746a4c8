"""For operators: /health for load balancers and monitors, /api/stats for dashboards."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAdminUser, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from api import monitoring

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
    """Queue depths, tasks processed and failed per task type, uptime.

    For operators (staff) only: the numbers span every organization.
    """

    permission_classes = [IsAuthenticated, IsAdminUser]

    @extend_schema(
        responses=inline_serializer(
            "Stats",
            {
                "queues": serializers.DictField(child=serializers.IntegerField()),
                "tasks": serializers.DictField(
                    child=serializers.DictField(child=serializers.IntegerField())
                ),
                "workers": serializers.DictField(
                    child=serializers.DictField(child=serializers.FloatField())
                ),
                "uptime_seconds": serializers.FloatField(),
            },
        )
    )
    def get(self, request):
        return Response(
            {
                "queues": monitoring.queue_depths(),
                "tasks": monitoring.task_counts(),
                "workers": monitoring.worker_heartbeats(),
                "uptime_seconds": monitoring.uptime_seconds(),
            }
        )
