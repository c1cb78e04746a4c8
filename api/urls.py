"""The API's URLs, under /api/."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from api.views import (
    automations,
    campaigns,
    consent,
    leads,
    messaging,
    segments,
    vendors,
)
from api.views.auth import TokenView
from api.views.operations import StatsView
from api.views.webhooks import InboundWebhook, ReceiptsWebhook

router = SimpleRouter(trailing_slash=False)
router.register("leads", leads.LeadViewSet, basename="lead")
router.register("lead-imports", leads.LeadImportViewSet, basename="lead-import")
router.register("segments", segments.SegmentViewSet, basename="segment")
router.register("campaigns", campaigns.CampaignViewSet, basename="campaign")
router.register("logs", messaging.CommunicationLogViewSet, basename="log")
router.register("receipts", messaging.DeliveryReceiptViewSet, basename="receipt")
router.register("appointments", automations.AppointmentViewSet, basename="appointment")
router.register("invoices", automations.InvoiceViewSet, basename="invoice")
router.register(
    "nurture-sequences", automations.NurtureSequenceViewSet, basename="sequence"
)
router.register("enrollments", automations.EnrollmentViewSet, basename="enrollment")
router.register("suppressions", consent.SuppressionViewSet, basename="suppression")
router.register("snapshots", automations.DailySnapshotViewSet, basename="snapshot")
router.register(
    "vendor-accounts", vendors.VendorAccountViewSet, basename="vendor-account"
)

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("auth/token", TokenView.as_view(), name="token"),
    path("stats", StatsView.as_view(), name="stats"),
    path("organization", consent.OrganizationView.as_view(), name="organization"),
    # SendGrid's Event Webhook: its delivery events are receipts like any vendor's.
    path(
        "webhooks/sendgrid/events",
        ReceiptsWebhook.as_view(),
        {"vendor": "sendgrid"},
        name="webhook-sendgrid-events",
    ),
    # Twilio's status callbacks, by the name its documentation gives them.
    path(
        "webhooks/twilio/status",
        ReceiptsWebhook.as_view(),
        {"vendor": "twilio"},
        name="webhook-twilio-status",
    ),
    path(
        "webhooks/<str:vendor>/receipts",
        ReceiptsWebhook.as_view(),
        name="webhook-receipts",
    ),
    path(
        "webhooks/<str:vendor>/inbound",
        InboundWebhook.as_view(),
        name="webhook-inbound",
    ),
    *router.urls,
]
