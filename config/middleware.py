"""A request id on every web line, echoed to the caller, and one line per request."""

import re
import time
import uuid
from urllib.parse import unquote_plus

import structlog
from django.core.signals import request_finished

logger = structlog.get_logger("crm.request")

HEADER = "X-Request-ID"
# A caller's id is kept only if it is a plain token: never a line of its own text.
_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_of(request) -> str:
    """The caller's X-Request-ID if it is a plain token, else a new one."""
    given = request.headers.get(HEADER, "")
    return given if _VALID_ID.fullmatch(given) else uuid.uuid4().hex


class RequestLogMiddleware:
    """Binds the request id to every line logged while answering, sends it back in
    the response's X-Request-ID, and logs the request's outcome and duration.

    The query string is logged decoded, so the redaction of personal data sees
    `+1...` and `@` rather than `%2B1...` and `%40`. A view whose path carries
    personal data in a form redaction cannot see (an unsubscribe link's token holds
    the address) sets `request.log_path` to what to log instead.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request_id_of(request)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        response = self.get_response(request)
        response[HEADER] = request_id
        user = getattr(request, "user", None)
        logger.info(
            "request",
            method=request.method,
            path=getattr(request, "log_path", request.path),
            query=unquote_plus(request.META.get("QUERY_STRING", "")),
            status=response.status_code,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            user_id=user.pk if user is not None else None,
        )
        return response


def _forget_request(**kwargs) -> None:
    structlog.contextvars.clear_contextvars()


# Django logs a 4xx or 5xx response (django.request) after the middleware has
# answered: the id stays bound until the response is finished.
request_finished.connect(_forget_request, dispatch_uid="crm-request-log-forget")
