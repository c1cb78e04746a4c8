"""Automations in the admin: appointments, invoices, nurture sequences, snapshots.

Also sets the admin's front page, which shows today's KPIs and the snapshots' last
30 days (automations/dashboard.py), and registers the campaign page with the hourly
table behind its chart: this app is the one that reads every other.
"""

from django import forms
from django.contrib import admin
from django.db.models import Count, Q
from django.template.loader import render_to_string
from django.utils import timezone

from automations.dashboard import campaign_hourly
from automations.models import (
    Appointment,
    AutomationDispatch,
    CampaignHourlyStat,
    DailySnapshot,
    Enrollment,
    Invoice,
    NurtureSequence,
    NurtureStep,
)
from automations.services.dunning import (
    EDITABLE_FIELDS,
    invoice_create,
    invoice_mark_paid,
    invoice_update,
    invoice_void,
)
from automations.services.reminders import (
    appointment_cancel,
    appointment_complete,
    appointment_create,
    appointment_update,
)
from automations.services.sequences import sequence_save
from automations.timeline import TIMELINE_LIMIT, lead_timeline
from campaigns.admin.campaign import CampaignAdmin
from campaigns.models import Campaign
from crm.admin_scoping import OrganizationScopedAdmin, ReadOnlyAdmin
from crm.admin_scoping import take_over as _take_over
from crm.models import Lead
from messaging.admin import LeadWithMessagesAdmin

admin.site.index_template = "admin/automations/index.html"
admin.site.site_header = "Campaign CRM"
admin.site.site_title = "Campaign CRM"
admin.site.index_title = "Dashboard"


class CampaignWithHourlyTableAdmin(CampaignAdmin):
    """The campaign admin whose hourly chart reads the hourly table, and the logs
    only since its last final hour.

    Registered here, in place of campaigns' own registration, because campaigns may
    not import automations: the app that may read both composes them.
    """

    hourly_series = staticmethod(campaign_hourly)


class LeadWithTimelineAdmin(LeadWithMessagesAdmin):
    """The lead page with its story: every event of the lead, newest first.

    Registered here, in place of messaging's, because only this app may read
    messages, consent and automations together.
    """

    readonly_fields = [*LeadWithMessagesAdmin.readonly_fields, "timeline"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is None:
            return fieldsets
        return [*fieldsets, ("Timeline", {"fields": ["timeline"]})]

    @admin.display(description=f"Latest {TIMELINE_LIMIT} events")
    def timeline(self, lead):
        return render_to_string(
            "admin/automations/lead_timeline.html",
            {"entries": lead_timeline(lead=lead)},
        )


admin.site.unregister(Lead)
admin.site.register(Lead, LeadWithTimelineAdmin)


admin.site.unregister(Campaign)
admin.site.register(Campaign, CampaignWithHourlyTableAdmin)


class AppointmentForm(forms.ModelForm):
    """Only a scheduled appointment moves or changes status, as in the services."""

    def clean(self):
        cleaned = super().clean()
        before = self.instance.status if self.instance.pk else None
        changing = {"starts_at", "status"} & set(self.changed_data)
        if before and before != Appointment.Status.SCHEDULED and changing:
            raise forms.ValidationError(
                f"This appointment is {before}: it can no longer be moved or changed."
            )
        if not before and cleaned.get("status") != Appointment.Status.SCHEDULED:
            self.add_error("status", "A new appointment starts as scheduled.")
        organization = cleaned.get("organization") or (
            self.instance.organization if self.instance.pk else None
        )
        lead = cleaned.get("lead")
        if organization and lead and lead.organization_id != organization.pk:
            self.add_error("lead", "The lead belongs to another organization.")
        return cleaned


@admin.register(Appointment)
class AppointmentAdmin(OrganizationScopedAdmin):
    form = AppointmentForm
    list_display = ["title", "lead", "starts_at", "status", "location", "organization"]
    list_filter = ["status", "organization", "starts_at"]
    list_select_related = ["lead", "organization"]
    search_fields = ["title", "lead__name", "=lead__phone", "lead__email"]
    raw_id_fields = ["lead"]
    date_hierarchy = "starts_at"
    readonly_fields = ["created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        """Saved by the reminder services: a move or a status change cancels the
        reminders still waiting for the old time, or for a closed appointment."""
        if not change:
            saved = appointment_create(
                organization=obj.organization,
                lead=obj.lead,
                starts_at=obj.starts_at,
                title=obj.title,
                location=obj.location,
            )
        else:
            stored = Appointment.objects.get(pk=obj.pk)
            changed = {
                name: getattr(obj, name)
                for name in form.changed_data
                if name not in ("organization", "status")
            }
            saved = appointment_update(appointment=stored, **changed)
            if obj.status != stored.status:
                close = {
                    Appointment.Status.CANCELLED: appointment_cancel,
                    Appointment.Status.COMPLETED: appointment_complete,
                }[obj.status]
                saved = close(appointment=saved)
        _take_over(obj, saved)


class InvoiceForm(forms.ModelForm):
    """An invoice is opened, then paid or voided once, as in the services."""

    payment_link = forms.URLField(max_length=500, required=False, assume_scheme="https")

    def clean_status(self):
        status = self.cleaned_data["status"]
        before = self.instance.status if self.instance.pk else None
        if before is None and status != Invoice.Status.OPEN:
            raise forms.ValidationError("A new invoice starts as open.")
        if before not in (None, Invoice.Status.OPEN) and status != before:
            raise forms.ValidationError(f"This invoice is already {before}.")
        return status

    def clean(self):
        cleaned = super().clean()
        before = self.instance.status if self.instance.pk else None
        edited = EDITABLE_FIELDS & set(self.changed_data)
        if before not in (None, Invoice.Status.OPEN) and edited:
            raise forms.ValidationError(
                f"This invoice is {before}: only an open invoice changes."
            )
        return cleaned


@admin.register(Invoice)
class InvoiceAdmin(OrganizationScopedAdmin):
    form = InvoiceForm
    list_display = [
        "__str__",
        "lead",
        "amount",
        "currency",
        "due_date",
        "days_overdue",
        "status",
        "paid_at",
        "organization",
    ]
    list_filter = ["status", "organization", "due_date"]
    list_select_related = ["lead", "organization"]
    search_fields = ["number", "lead__name", "lead__email"]
    raw_id_fields = ["lead"]
    date_hierarchy = "due_date"
    readonly_fields = ["paid_at", "created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        """Saved by the dunning services: paying sets `paid_at` for the revenue
        figures, and paying or voiding cancels a notice still waiting."""
        if not change:
            saved = invoice_create(
                organization=obj.organization,
                **{name: getattr(obj, name) for name in EDITABLE_FIELDS},
            )
        else:
            changed = {
                name: getattr(obj, name)
                for name in form.changed_data
                if name in EDITABLE_FIELDS
            }
            saved = (
                invoice_update(invoice_id=obj.pk, **changed)
                if changed
                else Invoice.objects.get(pk=obj.pk)
            )
            if obj.status != saved.status:
                close = (
                    invoice_mark_paid
                    if obj.status == Invoice.Status.PAID
                    else invoice_void
                )
                saved = close(invoice=saved)
        _take_over(obj, saved)

    @admin.display(description="Days overdue")
    def days_overdue(self, invoice):
        if invoice.status != Invoice.Status.OPEN:
            return "-"
        days = (timezone.localdate() - invoice.due_date).days
        return days if days > 0 else "-"


class NurtureStepInline(admin.TabularInline):
    model = NurtureStep
    extra = 1
    fields = ["position", "delay_minutes", "channel", "subject", "template"]


@admin.register(NurtureSequence)
class NurtureSequenceAdmin(OrganizationScopedAdmin):
    list_display = [
        "name",
        "organization",
        "is_active",
        "step_count",
        "active_enrollments",
        "updated_at",
    ]
    list_filter = ["is_active", "organization"]
    list_select_related = ["organization"]
    search_fields = ["name", "description"]
    readonly_fields = ["dispatch", "created_at", "updated_at"]
    inlines = [NurtureStepInline]

    def save_model(self, request, obj, form, change):
        """Saved by the sequence service; the inline saves the steps after it."""
        fields = {
            name: getattr(obj, name)
            for name in form.changed_data
            if name in ("name", "description", "is_active")
        }
        saved = sequence_save(
            organization=obj.organization,
            sequence=NurtureSequence.objects.get(pk=obj.pk) if change else None,
            **fields,
        )
        _take_over(obj, saved)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                steps_n=Count("steps", distinct=True),
                active_n=Count(
                    "enrollments",
                    filter=Q(enrollments__status=Enrollment.Status.ACTIVE),
                    distinct=True,
                ),
            )
        )

    @admin.display(description="Steps", ordering="steps_n")
    def step_count(self, sequence):
        return sequence.steps_n

    @admin.display(description="Active enrollments", ordering="active_n")
    def active_enrollments(self, sequence):
        return sequence.active_n


@admin.register(NurtureStep)
class NurtureStepAdmin(OrganizationScopedAdmin):
    """Steps are edited inline on their sequence; this list finds them across."""

    organization_path = "sequence__organization"
    list_display = ["sequence", "position", "delay_minutes", "channel", "short"]
    list_filter = ["channel", "sequence"]
    list_select_related = ["sequence"]
    search_fields = ["template", "subject", "sequence__name"]

    @admin.display(description="Template")
    def short(self, step):
        return step.template[:80]


@admin.register(Enrollment)
class EnrollmentAdmin(OrganizationScopedAdmin):
    list_display = [
        "lead",
        "sequence",
        "status",
        "current_step",
        "next_run_at",
        "exit_reason",
        "enrolled_at",
    ]
    list_filter = ["status", "exit_reason", "sequence", "organization"]
    list_select_related = ["lead", "sequence"]
    search_fields = ["lead__name", "=lead__phone", "lead__email", "sequence__name"]
    raw_id_fields = ["lead"]
    readonly_fields = ["enrolled_at", "finished_at", "updated_at"]


@admin.register(AutomationDispatch)
class AutomationDispatchAdmin(ReadOnlyAdmin):
    list_display = ["organization", "kind", "dispatch"]
    list_filter = ["kind", "organization"]
    list_select_related = ["organization", "dispatch"]


@admin.register(DailySnapshot)
class DailySnapshotAdmin(ReadOnlyAdmin):
    list_display = ["date", "organization", *DailySnapshot.KPI_FIELDS]
    list_filter = ["organization", "date"]
    list_select_related = ["organization"]
    date_hierarchy = "date"


@admin.register(CampaignHourlyStat)
class CampaignHourlyStatAdmin(ReadOnlyAdmin):
    organization_path = "campaign__organization"
    list_display = ["campaign", "hour", "sent", "delivered", "failed", "updated_at"]
    list_filter = ["campaign"]
    list_select_related = ["campaign"]
    date_hierarchy = "hour"
