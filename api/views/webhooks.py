"""Vendor callbacks: signed delivery receipts and inbound replies.

No user signs these in: the vendor's signature over the raw body (with a timestamp,
against replays, or over the full URL too, as Twilio signs) is the authentication,
so a bad one is a 403 before anything is read or stored.
"""

import structlog
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from api.throttles import WebhookRateThrottle
from messaging.services.inbound import inbound_handle
from messaging.services.outbound import receipts_store_and_apply_soon
from vendors.base import InvalidPayload, VendorAdapter
from vendors.registry import ADAPTERS, adapter_for_callback

logger = structlog.get_logger(__name__)


class _RawBody(BaseParser):
    """Any content type: the body is verified as bytes, never parsed by DRF."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return {}


def _verified_adapter(request, vendor: str) -> VendorAdapter:
    # Only registered names: the registry would import any dotted path it is given.
    if vendor not in ADAPTERS:
        _rejected(request, vendor, reason="unknown_vendor")
        raise exceptions.NotFound(f"unknown vendor {vendor!r}")
    # The adapter of the account the callback names (Twilio's AccountSid), whose
    # secret signed it; an account nobody configured is refused like a forgery.
    adapter = adapter_for_callback(vendor, body=request.body)
    if adapter is None:
        _rejected(request, vendor, reason="unknown_account")
        raise exceptions.PermissionDenied("missing, invalid or expired signature")
    if not adapter.verify_request(
        path=request.get_full_path(), body=request.body, headers=request.headers
    ):
        _rejected(request, vendor, reason="bad_signature")
        raise exceptions.PermissionDenied("missing, invalid or expired signature")
    return adapter


def _rejected(request, vendor: str, *, reason: str, detail: str = "") -> None:
    """One line per callback refused: which vendor, which endpoint, and why."""
    logger.warning(
        "webhook_rejected",
        vendor=vendor[:40],
        path=request.path[:200],
        reason=reason,
        detail=detail[:200],
        size=len(request.body),
    )


class _Webhook(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [WebhookRateThrottle]
    parser_classes = [_RawBody]

    def throttled(self, request, wait):
        _rejected(request, self.kwargs.get("vendor", ""), reason="throttled")
        super().throttled(request, wait)


_RESPONSES = {
    400: OpenApiResponse(description="The body is not what the vendor sends."),
    403: OpenApiResponse(description="Missing, invalid or expired signature."),
    404: OpenApiResponse(description="Unknown vendor."),
}


class ReceiptsWebhook(_Webhook):
    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={
            202: inline_serializer(
                "ReceiptsAccepted",
                {
                    "received": serializers.IntegerField(),
                    "new": serializers.IntegerField(),
                },
            ),
            **_RESPONSES,
        },
        auth=[],
        summary="Delivery receipts from a vendor (signed)",
    )
    def post(self, request, vendor: str):
        adapter = _verified_adapter(request, vendor)
        try:
            receipts = adapter.parse_receipts(
                body=request.body, headers=request.headers
            )
        except InvalidPayload as error:
            _rejected(request, vendor, reason="invalid_payload", detail=str(error))
            raise exceptions.ValidationError({"body": [str(error)]}) from error
        new = receipts_store_and_apply_soon(vendor=adapter.name, received=receipts)
        return Response(
            {"received": len(receipts), "new": new}, status=status.HTTP_202_ACCEPTED
        )


class InboundWebhook(_Webhook):
    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={
            200: inline_serializer(
                "InboundHandled",
                {
                    "received": serializers.IntegerField(),
                    "opted_out": serializers.IntegerField(),
                    "opted_in": serializers.IntegerField(),
                    "suppressed": serializers.IntegerField(),
                    "ignored": serializers.IntegerField(),
                    "duplicates": serializers.IntegerField(),
                    "helped": serializers.IntegerField(),
                },
            ),
            **_RESPONSES,
        },
        auth=[],
        summary="People's replies forwarded by a vendor (signed): STOP, START, HELP",
    )
    def post(self, request, vendor: str):
        adapter = _verified_adapter(request, vendor)
        try:
            messages = adapter.parse_inbound(body=request.body, headers=request.headers)
        except InvalidPayload as error:
            _rejected(request, vendor, reason="invalid_payload", detail=str(error))
            raise exceptions.ValidationError({"body": [str(error)]}) from error
        outcome = inbound_handle(messages=messages, vendor=adapter.name)
        return Response(
            {
                "received": outcome.received,
                "opted_out": len(outcome.opted_out),
                "opted_in": len(outcome.opted_in),
                "suppressed": outcome.suppressed,
                "ignored": outcome.ignored,
                "duplicates": outcome.duplicates,
                "helped": outcome.helped,
            }
        )
