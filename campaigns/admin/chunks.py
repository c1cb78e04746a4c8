"""Chunks in the admin, and the dead-letter page: work that exhausted its retries."""

from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from campaigns.admin.actions import run_action
from campaigns.dashboard import chunks_with_lead_total, dead_letters
from campaigns.models import Campaign, CampaignChunk
from crm.admin_scoping import ReadOnlyAdmin, request_organization

# Rows of each kind on the dead-letter page; the changelists hold the rest.
DEAD_LETTER_SHOWN = 100


@admin.register(CampaignChunk)
class CampaignChunkAdmin(ReadOnlyAdmin):
    organization_path = "campaign__organization"
    list_display = [
        "job_id",
        "campaign",
        "index",
        "status",
        "lead_count",
        "attempts",
        "short_error",
        "created_at",
        "enqueued_at",
        "expanded_at",
    ]
    list_filter = ["status", "campaign"]
    list_select_related = ["campaign"]
    search_fields = ["=job_id", "campaign__name"]
    actions = ["rerun_dead"]
    change_list_template = "admin/campaigns/campaignchunk/change_list.html"

    def get_queryset(self, request):
        queryset = chunks_with_lead_total(super().get_queryset(request))
        if request.resolver_match and request.resolver_match.url_name.endswith(
            "changelist"
        ):
            queryset = queryset.defer("lead_ids")
        return queryset

    @admin.display(description="Leads", ordering="lead_total")
    def lead_count(self, chunk):
        return chunk.lead_total

    @admin.display(description="Last error")
    def short_error(self, chunk):
        return chunk.last_error[:80]

    @admin.action(description="Rerun dead chunks of the selected chunks' campaigns")
    def rerun_dead(self, request, queryset):
        campaign_ids = queryset.filter(status=CampaignChunk.Status.DEAD).values_list(
            "campaign_id", flat=True
        )
        campaigns = Campaign.objects.filter(pk__in=campaign_ids).order_by("pk")
        if not campaigns:
            self.message_user(request, "No dead chunk selected.", messages.WARNING)
        run_action(self, request, "rerun_dead", campaigns)

    def get_urls(self):
        return [
            path(
                "dead-letter/",
                self.admin_site.admin_view(self.dead_letter_view),
                name="campaigns_dead_letter",
            ),
            *super().get_urls(),
        ]

    def dead_letter_view(self, request):
        """What exhausted its retries: dead chunks and failed-for-good messages."""
        if not self.has_view_permission(request):
            return redirect("admin:index")
        everyone = request.user.is_superuser
        dead = dead_letters(
            chunks=self.get_queryset(request),
            organization=None if everyone else request_organization(request),
            every_organization=everyone,
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Dead letters: work that exhausted its retries",
            "chunks": dead.chunks[:DEAD_LETTER_SHOWN],
            "chunk_total": dead.chunks.count(),
            "dead_campaigns": [
                {
                    "campaign": campaign,
                    "url": reverse(
                        "admin:campaigns_campaign_act", args=[campaign.pk, "rerun_dead"]
                    ),
                }
                for campaign in dead.campaigns[:DEAD_LETTER_SHOWN]
            ],
            "logs": dead.logs[:DEAD_LETTER_SHOWN],
            "log_total": dead.logs.count(),
            "logs_url": reverse("admin:messaging_communicationlog_changelist")
            + "?retries=exhausted",
        }
        return TemplateResponse(request, "admin/campaigns/dead_letter.html", context)
