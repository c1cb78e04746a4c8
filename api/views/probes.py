"""/health/live and /health/ready: the probes of orchestrators and load balancers."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from api import probes

# A plain string: an enum here would share /health's choice set under a second name.
_STATE = serializers.CharField(help_text='"ok" or "error"')


class _Probe(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []


class LiveView(_Probe):
    """The process answers requests; nothing else is asked (no database)."""

    @extend_schema(
        responses={200: inline_serializer("Live", {"status": _STATE})}, auth=[]
    )
    def get(self, request):
        return Response({"status": "ok"})


_Ready = inline_serializer(
    "Ready",
    {
        "status": _STATE,
        "checks": inline_serializer(
            "ReadyChecks", {"database": _STATE, "broker": _STATE}
        ),
    },
)


class ReadyView(_Probe):
    """The database and the broker are reachable: 200, else 503 naming which is not."""

    @extend_schema(responses={200: _Ready, 503: _Ready}, auth=[])
    def get(self, request):
        checks = probes.readiness()
        ready = all(checks.values())
        return Response(
            {
                "status": "ok" if ready else "error",
                "checks": {
                    part: "ok" if up else "error" for part, up in checks.items()
                },
            },
            status=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE,
        )
