"""Campaigns in the admin: write and check a template, launch and steer, watch it run.

The admin is thin: checks and state changes are the lifecycle services' (the same
ones the commands and the API call); this module only shows their results.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import F, Func, IntegerField
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from campaigns.models import Campaign, CampaignChunk
from campaigns.personalization import PLACEHOLDERS, TemplateError, compile_template
from campaigns.personalization import render as render_template
from campaigns.selectors import campaign_stats
from campaigns.services import lifecycle
from crm.admin_scoping import (
    OrganizationScopedAdmin,
    ReadOnlyAdmin,
    request_organization,
)
from crm.admin_scoping import take_over as _take_over
from crm.models import Channel
from crm.selectors import segment_leads
from messaging import reporting
from messaging.charts import bar_chart, funnel
from vendors.sms import GSM7_BASIC, GSM7_EXTENSION, is_gsm7, sms_segments

# Statuses of an open run: messages going out, or waiting to on a resume.
SENDING = (Campaign.Status.RUNNING, Campaign.Status.PAUSED)
# Rows of each kind on the dead-letter page; the changelists hold the rest.
DEAD_LETTER_SHOWN = 100

PLACEHOLDER_HELP = "Placeholders: " + "; ".join(
    f"{{{{{name}}}}} = {meaning}" for name, meaning in PLACEHOLDERS.items()
)


def message_size(text: str) -> dict:
    """Characters and SMS segments of a text (vendors.sms counts the segments)."""
    return {
        "characters": len(text),
        "segments": sms_segments(text),
        "encoding": "GSM-7" if is_gsm7(text) else "Unicode (UCS-2)",
    }


class CampaignAdminForm(forms.ModelForm):
    """Checked by lifecycle.campaign_validate, each error shown at its field."""

    class Meta:
        model = Campaign
        fields = [
            "organization",
            "name",
            "channel",
            "segment",
            "subject",
            "template",
            "chunk_size",
            "scheduled_at",
        ]
        widgets = {
            "template": forms.Textarea(
                attrs={"rows": 5, "cols": 80, "class": "vLargeTextField"}
            )
        }
        help_texts = {"template": PLACEHOLDER_HELP}

    def clean(self):
        cleaned = super().clean()
        segment = cleaned.get("segment")
        # A saved campaign's organization is shown, not edited.
        organization = cleaned.get("organization") or (
            self.instance.organization if self.instance.pk else None
        )
        if organization is None or segment is None or not cleaned.get("channel"):
            return cleaned  # their own errors are already shown
        try:
            lifecycle.campaign_validate(
                organization=organization,
                channel=cleaned["channel"],
                segment=segment,
                template=cleaned.get("template") or "",
                subject=cleaned.get("subject") or "",
                chunk_size=cleaned.get("chunk_size"),
            )
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                self.add_error(field if field in self.fields else None, problems)
        return cleaned


# --- Actions: one function per lifecycle service, each saying what it did ---------


def _launch(campaign_id: int) -> str:
    result = lifecycle.campaign_launch(campaign_id=campaign_id)
    return (
        f"launched: {result.total_leads} leads in {result.total_chunks} chunk(s) "
        f"of up to {result.chunk_size}"
    )


def _pause(campaign_id: int) -> str:
    lifecycle.campaign_pause(campaign_id=campaign_id)
    return "paused: no new messages are claimed; those already sending finish"


def _resume(campaign_id: int) -> str:
    lifecycle.campaign_resume(campaign_id=campaign_id)
    return "resumed: sending goes on"


def _cancel(campaign_id: int) -> str:
    cancelled = lifecycle.campaign_cancel(campaign_id=campaign_id)
    return f"cancelled: {cancelled} message(s) not yet sent will not be"


def _retry_failed(campaign_id: int) -> str:
    result = lifecycle.campaign_rerun(
        campaign_id=campaign_id, failed=True, dead_chunks=False
    )
    return f"{result.logs_retried} failed message(s) queued again"


def _rerun_dead(campaign_id: int) -> str:
    result = lifecycle.campaign_rerun(
        campaign_id=campaign_id, failed=False, dead_chunks=True
    )
    return f"{result.chunks_requeued} dead chunk(s) queued again"


CAMPAIGN_ACTIONS = {
    "launch": ("Launch", _launch, lifecycle.LAUNCHABLE),
    "pause": ("Pause", _pause, (Campaign.Status.RUNNING,)),
    "resume": ("Resume", _resume, (Campaign.Status.PAUSED,)),
    "cancel": ("Cancel", _cancel, lifecycle.CANCELLABLE),
    "retry_failed": (
        "Retry failed messages",
        _retry_failed,
        (Campaign.Status.RUNNING, Campaign.Status.PAUSED, Campaign.Status.COMPLETED),
    ),
    "rerun_dead": (
        "Rerun dead chunks",
        _rerun_dead,
        (Campaign.Status.RUNNING, Campaign.Status.PAUSED, Campaign.Status.COMPLETED),
    ),
}


def _run_action(modeladmin, request, name: str, campaigns) -> None:
    _, act, _ = CAMPAIGN_ACTIONS[name]
    for campaign in campaigns:
        try:
            outcome = act(campaign.pk)
        except lifecycle.CampaignStateError as error:
            modeladmin.message_user(request, f"“{campaign}”: {error}", messages.ERROR)
        else:
            modeladmin.message_user(
                request, f"“{campaign}” {outcome}.", messages.SUCCESS
            )


def _changelist_action(name: str):
    label = CAMPAIGN_ACTIONS[name][0]

    def action(modeladmin, request, queryset):
        _run_action(modeladmin, request, name, queryset.order_by("pk"))

    action.__name__ = f"action_{name}"
    return admin.action(
        description=f"{label} selected campaigns", permissions=["change"]
    )(action)


# --- The campaign page's dashboard -------------------------------------------------


def campaign_hourly_from_logs(campaign: Campaign) -> list[dict]:
    return reporting.dispatch_hourly(dispatch_id=campaign.dispatch_id)


def campaign_dashboard(campaign: Campaign, hourly_series=None) -> dict | None:
    """Progress, counters, funnel, hourly chart and top failure codes, once launched."""
    if campaign.dispatch_id is None:
        return None
    stats = campaign_stats(campaign=campaign)
    hourly = (hourly_series or campaign_hourly_from_logs)(campaign)
    expected = stats["expected_audience"]
    return {
        "stats": stats,
        "percent": round(100 * stats["progress"], 1),
        "expected": expected,
        "funnel": funnel(
            steps=[
                ("audience", stats["audience"]),
                ("skipped", stats["skipped"]),
                ("sent", stats["sent"]),
                ("delivered", stats["delivered"]),
                ("failed", stats["failed"]),
            ]
        ),
        "hourly_chart": bar_chart(
            labels=[row["bucket"].strftime("%m-%d %H:00") for row in hourly],
            series={s: [row[s] for row in hourly] for s in reporting.STAGES},
            title="Messages per hour",
        ),
        "failure_codes": reporting.failure_codes(dispatch_id=campaign.dispatch_id),
        "logs_url": reverse("admin:messaging_communicationlog_changelist")
        + f"?dispatch={campaign.dispatch_id}",
        "chunks_url": reverse("admin:campaigns_campaignchunk_changelist")
        + f"?campaign__id__exact={campaign.pk}",
    }


def sample_render(campaign: Campaign) -> dict | None:
    """The template as the segment's first lead would receive it, with its size."""
    try:
        compiled = compile_template(campaign.template)
    except TemplateError:
        return None
    lead = segment_leads(segment=campaign.segment).order_by("pk").first()
    if lead is None:
        return None
    text = render_template(compiled, lead)
    return {"lead": lead, "text": text, **message_size(text)}


@admin.register(Campaign)
class CampaignAdmin(OrganizationScopedAdmin):
    form = CampaignAdminForm
    list_display = [
        "name",
        "organization",
        "channel",
        "status_badge",
        "segment",
        "audience",
        "progress",
        "delivered",
        "failed",
        "launched_at",
    ]
    list_filter = ["status", "channel", "organization", "created_at"]
    list_select_related = ["organization", "segment", "dispatch"]
    search_fields = ["name", "template", "segment__name"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    change_form_template = "admin/campaigns/campaign/change_form.html"
    # Where the hourly chart's numbers come from; automations.admin points it at its
    # hourly table (campaigns must not import automations, which depends on it).
    hourly_series = staticmethod(campaign_hourly_from_logs)
    actions = [_changelist_action(name) for name in CAMPAIGN_ACTIONS]
    readonly_fields = [
        "status",
        "template_size",
        "rendered_example",
        "created_by",
        "created_at",
        "launched_at",
        "completed_at",
        "total_leads",
        "total_chunks",
        "effective_chunk_size",
    ]
    fieldsets = [
        (None, {"fields": ["organization", "name", "channel", "segment", "status"]}),
        (
            "Message",
            {"fields": ["subject", "template", "template_size", "rendered_example"]},
        ),
        ("Sending", {"fields": ["scheduled_at", "chunk_size"]}),
        (
            "Run",
            {
                "fields": [
                    "created_by",
                    "created_at",
                    "launched_at",
                    "completed_at",
                    "total_leads",
                    "total_chunks",
                    "effective_chunk_size",
                ],
                "classes": ["collapse"],
            },
        ),
    ]

    class Media:
        css = {"all": ["campaigns/admin/campaign.css"]}
        js = ["campaigns/admin/message_counter.js", "campaigns/admin/auto_refresh.js"]

    # Columns, from the campaign and its dispatch (joined): no query per row.

    @admin.display(description="Status", ordering="status")
    def status_badge(self, campaign):
        return format_html(
            '<span class="campaign-status status-{}">{}</span>',
            campaign.status,
            campaign.get_status_display(),
        )

    @admin.display(ordering="dispatch__audience")
    def audience(self, campaign):
        return campaign.dispatch.audience if campaign.dispatch else "-"

    @admin.display(ordering="dispatch__delivered")
    def delivered(self, campaign):
        return campaign.dispatch.delivered if campaign.dispatch else "-"

    @admin.display(ordering="dispatch__failed")
    def failed(self, campaign):
        return campaign.dispatch.failed if campaign.dispatch else "-"

    @admin.display(description="Progress")
    def progress(self, campaign):
        dispatch = campaign.dispatch
        expected = (dispatch and dispatch.expected_audience) or campaign.total_leads
        if dispatch is None or not expected:
            return "-"
        final = (
            dispatch.delivered
            + dispatch.failed
            + dispatch.skipped
            + dispatch.cancelled
            + dispatch.no_receipt
        )
        percent = min(100, round(100 * final / expected))
        return format_html(
            '<progress max="100" value="{}"></progress> {}%', percent, percent
        )

    @admin.display(description="Size before personalization")
    def template_size(self, campaign):
        size = message_size(campaign.template or "")
        if campaign.channel != Channel.SMS:
            return f"{size['characters']} characters"
        return (
            f"{size['characters']} characters, {size['segments']} SMS segment(s), "
            f"{size['encoding']}"
        )

    @admin.display(description="As the first lead would get it")
    def rendered_example(self, campaign):
        if not campaign.pk:
            return "-"
        sample = sample_render(campaign)
        if sample is None:
            return "-"
        return format_html(
            "<q>{}</q><br>{} characters, {} SMS segment(s), {} (to {})",
            sample["text"],
            sample["characters"],
            sample["segments"],
            sample["encoding"],
            sample["lead"],
        )

    # The form: editable while a draft or scheduled; then it is the campaign's record.

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status not in lifecycle.EDITABLE:
            return [*self.readonly_fields, *CampaignAdminForm._meta.fields]
        if obj is not None:
            return [*self.readonly_fields, "organization"]
        return self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        # Deleting a campaign whose run is open would leave its messages going out,
        # or waiting for ever, with no page to stop or resume them: Cancel first.
        # (The bulk delete action asks this of every selected campaign too.)
        if obj is not None and obj.status in SENDING:
            return False
        return super().has_delete_permission(request, obj)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """A save the state machine refuses (the campaign was launched since the
        form was opened, or the POST was crafted) changes nothing and says why."""
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except lifecycle.CampaignStateError as error:
            self.message_user(request, str(error), messages.ERROR)
            return redirect("admin:campaigns_campaign_change", object_id)

    def save_model(self, request, obj, form, change):
        if change:
            # The form has been applied to `obj`; fields shown read-only keep the
            # stored values. The service re-checks the status under a row lock.
            saved = lifecycle.campaign_update(
                campaign_id=obj.pk,
                name=obj.name,
                channel=obj.channel,
                segment=obj.segment,
                template=obj.template,
                subject=obj.subject,
                chunk_size=obj.chunk_size,
                scheduled_at=obj.scheduled_at,
            )
        else:
            data = form.cleaned_data
            saved = lifecycle.campaign_create(
                organization=data["organization"],
                name=data["name"],
                channel=data["channel"],
                segment=data["segment"],
                template=data["template"],
                subject=data.get("subject") or "",
                created_by=request.user,
                chunk_size=data.get("chunk_size"),
                scheduled_at=data.get("scheduled_at"),
            )
        _take_over(obj, saved)

    def render_change_form(self, request, context, *args, obj=None, **kwargs):
        form = context["adminform"].form
        if "template" in form.fields:
            template = form["template"].value() or ""
        else:
            template = obj.template if obj else ""
        context.update(
            {
                "template_size": message_size(template),
                # The live counter's alphabet is vendors.sms's, not a copy.
                "gsm7_alphabet": {
                    "basic": "".join(sorted(GSM7_BASIC)),
                    "extension": "".join(sorted(GSM7_EXTENSION)),
                },
                "placeholders": PLACEHOLDERS,
                "dashboard": (
                    campaign_dashboard(obj, self.hourly_series) if obj else None
                ),
                "campaign_actions": self._available_actions(request, obj),
            }
        )
        if obj is not None and obj.status not in lifecycle.EDITABLE:
            # Once launched the page is a record: the buttons are the actions above.
            context.update(
                show_save=False,
                show_save_and_continue=False,
                show_save_and_add_another=False,
            )
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)

    def _available_actions(self, request, campaign):
        if campaign is None or not self.has_change_permission(request, campaign):
            return []
        return [
            {
                "name": name,
                "label": label,
                "url": reverse(
                    "admin:campaigns_campaign_act", args=[campaign.pk, name]
                ),
            }
            for name, (label, _, allowed) in CAMPAIGN_ACTIONS.items()
            if campaign.status in allowed
        ]

    def get_urls(self):
        return [
            path(
                "<int:object_id>/act/<str:name>/",
                self.admin_site.admin_view(self.act_view),
                name="campaigns_campaign_act",
            ),
            *super().get_urls(),
        ]

    def act_view(self, request, object_id: int, name: str):
        """A button on the campaign page: run one lifecycle action, then come back."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        campaign = self.get_object(request, str(object_id))
        if (
            campaign is None
            or name not in CAMPAIGN_ACTIONS
            or not self.has_change_permission(request, campaign)
        ):
            return redirect("admin:campaigns_campaign_changelist")
        _run_action(self, request, name, [campaign])
        return redirect("admin:campaigns_campaign_change", campaign.pk)


# --- Chunks and the dead-letter page -----------------------------------------------


class JSONArrayLength(Func):
    function = "JSONB_ARRAY_LENGTH"
    output_field = IntegerField()


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
        # lead_ids can hold 200 ids per row: count them in SQL, do not load them.
        queryset = (
            super()
            .get_queryset(request)
            .annotate(lead_total=JSONArrayLength(F("lead_ids")))
        )
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
        _run_action(self, request, "rerun_dead", campaigns)

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
        chunks = (
            self.get_queryset(request)
            .filter(status=CampaignChunk.Status.DEAD)
            .defer("lead_ids")
            .order_by("-created_at")
        )
        logs = reporting.logs_exhausted().select_related("dispatch", "lead")
        if not request.user.is_superuser:
            logs = logs.filter(dispatch__organization=request_organization(request))
        dead_campaigns = Campaign.objects.filter(
            pk__in=chunks.values("campaign_id")
        ).order_by("pk")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Dead letters: work that exhausted its retries",
            "chunks": chunks[:DEAD_LETTER_SHOWN],
            "chunk_total": chunks.count(),
            "dead_campaigns": [
                {
                    "campaign": campaign,
                    "url": reverse(
                        "admin:campaigns_campaign_act", args=[campaign.pk, "rerun_dead"]
                    ),
                }
                for campaign in dead_campaigns[:DEAD_LETTER_SHOWN]
            ],
            "logs": logs.order_by("-failed_at")[:DEAD_LETTER_SHOWN],
            "log_total": logs.count(),
            "logs_url": reverse("admin:messaging_communicationlog_changelist")
            + "?retries=exhausted",
        }
        return TemplateResponse(request, "admin/campaigns/dead_letter.html", context)
