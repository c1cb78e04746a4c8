"""/metrics for Prometheus, behind a bearer token (METRICS_TOKEN); off when unset."""

import hmac

from django.conf import settings
from django.http import Http404, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from api.metrics import exposition


@require_GET
def metrics_view(request):
    """401 without a bearer token, 403 with a wrong one, 404 when no token is set."""
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("metrics are off: METRICS_TOKEN is not set")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        response = HttpResponse("a bearer token is required\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return HttpResponse("wrong token\n", status=403)
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
