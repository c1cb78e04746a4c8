"""The campaign admin: the form, its columns, the page's dashboard and buttons."""

import json
import zoneinfo

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from campaigns.admin.actions import CAMPAIGN_ACTIONS, changelist_action, run_action
from campaigns.admin.dashboard import dashboard_context
from campaigns.admin.forms import CampaignAdminForm
from campaigns.admin.test_send import test_send_view
from campaigns.dashboard import (
    campaign_estimate,
    campaign_hourly_from_logs,
    campaign_sample,
    message_preview,
    message_size,
)
from campaigns.models import Campaign
from campaigns.personalization import PLACEHOLDERS, TemplateError
from campaigns.selectors import campaign_progress
from campaigns.services import lifecycle
from crm.admin_scoping import (
    OrganizationScopedAdmin,
    chosen_organization,
    request_organization,
)
from crm.admin_scoping import take_over as _take_over
from crm.models import Channel, Lead, Segment
from crm.selectors import leads_search, segment_leads
from vendors.sms import GSM7_BASIC, GSM7_EXTENSION

# Statuses of an open run: messages going out, or waiting to on a resume.
SENDING = (Campaign.Status.RUNNING, Campaign.Status.PAUSED)


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
    # Where the hourly chart's numbers come from: the logs. automations.admin
    # registers a subclass that reads its hourly table (campaigns may not import
    # automations, which depends on it).
    hourly_series = staticmethod(campaign_hourly_from_logs)
    actions = [changelist_action(name) for name in CAMPAIGN_ACTIONS]
    run_fields = [
        "created_by",
        "created_at",
        "launched_at",
        "completed_at",
        "total_leads",
        "total_chunks",
        "effective_chunk_size",
    ]
    readonly_fields = [
        "status",
        "paused_reason",
        "template_size",
        "rendered_example",
        *run_fields,
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "organization",
                    "name",
                    "channel",
                    "segment",
                    "status",
                    "paused_reason",
                ]
            },
        ),
        (
            "Message",
            {"fields": ["subject", "template", "template_size", "rendered_example"]},
        ),
        ("Sending", {"fields": ["scheduled_at", "chunk_size"]}),
        (
            "Run",
            {"fields": run_fields, "classes": ["collapse"]},
        ),
    ]

    class Media:
        css = {"all": ["campaigns/admin/campaign.css"]}
        js = [
            "campaigns/admin/message_counter.js",
            "campaigns/admin/auto_refresh.js",
            "campaigns/admin/composer.js",
        ]

    # Columns, from the campaign and its dispatch (joined): no query per row.

    @admin.display(description="Status", ordering="status")
    def status_badge(self, campaign):
        return format_html(
            '<span class="campaign-status status-{}">{}</span>',
            campaign.status,
            campaign.get_status_display(),
        )

    @admin.display(description="Why paused")
    def paused_reason(self, campaign):
        reason = campaign.dispatch.paused_reason if campaign.dispatch_id else ""
        return reason or "-"

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
        if campaign.dispatch is None or not campaign.total_leads:
            return "-"
        percent = min(100, round(100 * campaign_progress(campaign=campaign)))
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
        sample = campaign_sample(campaign=campaign)
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
        organization = self._page_organization(request, object_id)
        zone = _zone(organization.time_zone if organization else None)
        try:
            # The schedule is shown and entered in the organization's time zone.
            with timezone.override(zone):
                response = super().changeform_view(
                    request, object_id, form_url, extra_context
                )
                # A TemplateResponse renders late, after the override: render now.
                if hasattr(response, "render"):
                    response.render()
                return response
        except lifecycle.CampaignStateError as error:
            self.message_user(request, str(error), messages.ERROR)
            return redirect("admin:campaigns_campaign_change", object_id)

    def _page_organization(self, request, object_id):
        """The organization whose time zone the page is in: the campaign's, else
        the member's, else the one a superuser's new campaign is saved for; None
        while a superuser has chosen none (the default zone)."""
        if object_id is not None:
            campaign = (
                self.get_queryset(request)
                .select_related("organization")
                .filter(pk=object_id)
                .first()
            )
            if campaign is not None:
                return campaign.organization
        if request.user.is_superuser:
            return chosen_organization(request, request.POST.get("organization"))
        return request_organization(request)

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
                    dashboard_context(obj, self.hourly_series) if obj else None
                ),
                "campaign_actions": self._available_actions(request, obj),
                "composer": {
                    "search_url": reverse("admin:campaigns_campaign_lead_search"),
                    "compose_url": reverse("admin:campaigns_campaign_compose"),
                    "organization": obj.organization_id if obj else "",
                },
                "duplicate_url": (
                    reverse("admin:campaigns_campaign_duplicate", args=[obj.pk])
                    if obj and self.has_add_permission(request)
                    else None
                ),
                "test_send_url": (
                    reverse("admin:campaigns_campaign_test_send", args=[obj.pk])
                    if obj is not None and self.has_change_permission(request, obj)
                    else None
                ),
            }
        )
        if "scheduled_at" in form.fields:
            form.fields["scheduled_at"].help_text = (
                f"In the organization's time zone, "
                f"{timezone.get_current_timezone_name()}."
                if obj or not request.user.is_superuser
                else "In the time zone of the organization chosen above."
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
            path(
                "<int:object_id>/duplicate/",
                self.admin_site.admin_view(self.duplicate_view),
                name="campaigns_campaign_duplicate",
            ),
            path(
                "lead-search/",
                self.admin_site.admin_view(self.lead_search_view),
                name="campaigns_campaign_lead_search",
            ),
            path(
                "compose/",
                self.admin_site.admin_view(self.compose_view),
                name="campaigns_campaign_compose",
            ),
            path(
                "<int:object_id>/test-send/",
                self.admin_site.admin_view(self.test_send_view),
                name="campaigns_campaign_test_send",
            ),
            *super().get_urls(),
        ]

    def duplicate_view(self, request, object_id: int):
        """The "Duplicate" button: a new draft from this campaign, opened."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        campaign = self.get_object(request, str(object_id))
        if campaign is None or not self.has_add_permission(request):
            return redirect("admin:campaigns_campaign_changelist")
        copy = lifecycle.campaign_duplicate(
            campaign_id=campaign.pk, created_by=request.user
        )
        self.log_addition(request, copy, f"Duplicated from campaign {campaign.pk}")
        self.message_user(
            request,
            f"“{copy}” is a new draft made from “{campaign}”: check it, then launch.",
            messages.SUCCESS,
        )
        return redirect("admin:campaigns_campaign_change", copy.pk)

    def lead_search_view(self, request):
        """The composer's lead search: ?q=name, phone or email (&organization=id
        for a superuser); answers up to ten leads to preview the message for."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        organization = chosen_organization(request, request.GET.get("organization"))
        if organization is None:
            return _refused("choose an organization first")
        leads = leads_search(
            organization_id=organization.pk, query=request.GET.get("q", "")[:100]
        )
        return JsonResponse(
            {"leads": [{"id": lead.pk, "label": _lead_label(lead)} for lead in leads]}
        )

    def compose_view(self, request):
        """The composer's live preview and estimate.

        POST {"organization", "segment", "channel", "template", "lead"}: answers
        the message as the chosen lead (else the segment's first) gets it, and
        the whole audience's messages, SMS segments and cost. A template that
        cannot be rendered answers the reason ("error") with a 200, as the
        composer asks at every pause in typing; a malformed request is a 400.
        """
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            body = json.loads(request.body)
        except ValueError:
            return _refused("the request is not JSON")
        if not isinstance(body, dict):
            return _refused("the request is not a JSON object")
        organization = chosen_organization(request, body.get("organization"))
        if organization is None:
            return _refused("choose an organization first")
        segment = _one_of(Segment, organization, body.get("segment"))
        if segment is None:
            return _refused("choose a segment")
        channel = body.get("channel")
        if channel not in Channel.values:
            return _refused("choose a channel")
        template = body.get("template")
        if not isinstance(template, str) or not template:
            return _refused("write the message")
        lead = _one_of(Lead, organization, body.get("lead"))
        try:
            estimate = campaign_estimate(
                segment=segment, channel=channel, template=template
            )
            if lead is None:
                lead = segment_leads(segment=segment).order_by("pk").first()
            preview = message_preview(template=template, lead=lead) if lead else None
        except TemplateError as error:
            # The message as drafted, refused: an answer, not a bad request.
            return _refused(str(error), status=200)
        return JsonResponse(
            {
                "preview": preview,
                "estimate": {
                    **estimate,
                    "cost": str(estimate["cost"]),
                    "price": str(estimate["price"]),
                },
                "channel": channel,
            }
        )

    def test_send_view(self, request, object_id: int):
        """The "Test send" button's page (campaigns.admin.test_send)."""
        return test_send_view(self, request, object_id)

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
        run_action(self, request, name, [campaign])
        return redirect("admin:campaigns_campaign_change", campaign.pk)


def _refused(reason: str, *, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": reason}, status=status)


def _lead_label(lead: Lead) -> str:
    contact = " · ".join(part for part in (lead.phone, lead.email) if part)
    return f"{lead} ({contact})" if contact else str(lead)


def _one_of(model, organization, pk):
    """The organization's row of that id, None if the id is not one of them."""
    if isinstance(pk, str) and pk.isdigit():
        pk = int(pk)
    if not isinstance(pk, int) or isinstance(pk, bool):
        return None
    return model.objects.filter(organization=organization, pk=pk).first()


def _zone(name: str | None):
    try:
        return zoneinfo.ZoneInfo(name) if name else timezone.get_default_timezone()
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return timezone.get_default_timezone()
