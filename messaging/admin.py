"""Messages, dispatches and receipts in the admin: looked at, filtered and retried.

Everything here is written by the pipeline, so nothing is edited by hand; the one
write is the retry action, which calls the recovery service. The lead page, with
its message history, is registered here too (LeadWithMessagesAdmin says why).
"""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Count
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from crm.admin import LeadAdmin
from crm.admin_scoping import (
    CappedCountPaginator,
    ReadOnlyAdmin,
    request_organization,
)
from crm.models import Lead
from messaging import reporting
from messaging.models import (
    CommunicationLog,
    DeliveryReceipt,
    Dispatch,
    InboundReply,
    LogStatus,
    OwnDispatch,
    RetiredCounts,
)
from messaging.services.dispatches import COUNTERS
from messaging.services.outbound import sends_due_soon
from messaging.services.recovery import logs_retry_failed

# Messages shown on a lead's page, newest first; the rest are a link away.
LEAD_HISTORY_SHOWN = 20
# Error codes offered as filter choices; a long tail is reached by search instead.
ERROR_CODE_CHOICES = 30


class ErrorCodeFilter(admin.SimpleListFilter):
    """The error codes present among the rows the user may see (one grouped query)."""

    title = "error code"
    parameter_name = "error_code"
    field = "error_code"

    def lookups(self, request, model_admin):
        rows = model_admin.get_queryset(request)
        dispatch = request.GET.get(DispatchFilter.parameter_name, "")
        if dispatch.isdigit() and model_admin.model is CommunicationLog:
            # Within one campaign the (dispatch, status) index finds the failures.
            rows = rows.filter(dispatch_id=dispatch, status=LogStatus.FAILED)
        codes = (
            rows.exclude(**{self.field: ""})
            .values_list(self.field)
            .annotate(n=Count("id"))
            .order_by("-n")[:ERROR_CODE_CHOICES]
        )
        return [(code, f"{code} ({n})") for code, n in codes]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{self.field: self.value()})
        return queryset


class DispatchFilter(admin.SimpleListFilter):
    """By campaign (or automation): every campaign owns one dispatch, named after it."""

    title = "campaign / automation"
    parameter_name = "dispatch"
    path = "dispatch"

    def lookups(self, request, model_admin):
        dispatches = Dispatch.objects.order_by("-created_at")
        if not request.user.is_superuser:
            dispatches = dispatches.filter(organization=request_organization(request))
        return [(d.pk, d.label) for d in dispatches.only("pk", "label")[:50]]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{f"{self.path}_id": self.value()})
        return queryset


class RetriesFilter(admin.SimpleListFilter):
    """The dead letters of sending: failed after every attempt was used."""

    title = "retries"
    parameter_name = "retries"

    def lookups(self, request, model_admin):
        return [
            ("exhausted", "Exhausted (dead letter)"),
            ("retried", "Needed more than one attempt"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "exhausted":
            return queryset.filter(
                status=LogStatus.FAILED,
                attempts__gte=settings.MESSAGING_MAX_ATTEMPTS,
            )
        if self.value() == "retried":
            return queryset.filter(attempts__gt=1)
        return queryset


@admin.register(Dispatch)
class DispatchAdmin(ReadOnlyAdmin):
    list_display = [
        "label",
        "organization",
        "channel",
        "status",
        # Undelivered is a part of failed, shown on the campaign's page.
        *(name for name in COUNTERS if name != "undelivered"),
        "cost",
        "created_at",
    ]
    list_filter = ["status", "channel", "organization"]
    list_select_related = ["organization"]
    search_fields = ["label"]


@admin.register(RetiredCounts)
class RetiredCountsAdmin(ReadOnlyAdmin):
    """What each dispatch's messages deleted by retention counted."""

    organization_path = "dispatch__organization"
    list_display = [
        "dispatch",
        "audience",
        "skipped",
        "sent",
        "delivered",
        "failed",
        "no_receipt",
        "unknown",
        "cancelled",
        "cost",
    ]
    list_select_related = ["dispatch"]
    search_fields = ["dispatch__label"]


@admin.register(OwnDispatch)
class OwnDispatchAdmin(ReadOnlyAdmin):
    """The dispatches messaging sends its own messages through (HELP replies)."""

    list_display = ["organization", "kind", "channel", "dispatch"]
    list_filter = ["kind", "channel"]
    list_select_related = ["organization", "dispatch"]


@admin.register(CommunicationLog)
class CommunicationLogAdmin(ReadOnlyAdmin):
    organization_path = "dispatch__organization"
    list_display = [
        "to",
        "lead",
        "status",
        "dispatch",
        "error_code",
        "attempts",
        "channel",
        "cost",
        "created_at",
        "sent_at",
        "delivered_at",
        "send_id",
    ]
    list_display_links = ["to"]
    list_filter = [
        "status",
        "channel",
        DispatchFilter,
        ErrorCodeFilter,
        RetriesFilter,
        "skip_reason",
    ]
    list_select_related = ["dispatch", "lead"]
    search_fields = ["=send_id", "=recipient", "=vendor_ref", "lead__name"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    actions = ["retry_selected"]

    @admin.display(description="To", ordering="recipient")
    def to(self, log):
        # Skipped messages may have no recipient; the row still needs a link.
        return log.recipient or f"(none: {log.skip_reason or log.status})"

    @admin.action(description="Retry selected failed messages")
    def retry_selected(self, request, queryset):
        ids = list(
            queryset.filter(status=LogStatus.FAILED).values_list("pk", flat=True)
        )
        retried = logs_retry_failed(log_ids=ids) if ids else 0
        if retried:
            sends_due_soon()
        left = queryset.count() - retried
        note = (
            f"; {left} not failed (or in a cancelled run), left alone" if left else ""
        )
        self.message_user(
            request,
            f"{retried} failed message(s) queued again{note}",
            messages.SUCCESS if retried else messages.WARNING,
        )


@admin.register(DeliveryReceipt)
class DeliveryReceiptAdmin(ReadOnlyAdmin):
    organization_path = "log__dispatch__organization"
    list_display = [
        "vendor_ref",
        "vendor",
        "status",
        "error_code",
        "log",
        "outcome",
        "occurred_at",
        "received_at",
        "processed_at",
    ]
    list_filter = ["status", "vendor", "outcome", ErrorCodeFilter]
    list_select_related = ["log"]
    search_fields = ["=vendor_ref"]
    show_full_result_count = False
    paginator = CappedCountPaginator


@admin.register(InboundReply)
class InboundReplyAdmin(ReadOnlyAdmin):
    """Replies and the opt-outs/opt-ins they made: the record compliance asks for."""

    list_display = [
        "sender",
        "recipient",
        "channel",
        "keyword",
        "action",
        "leads_changed",
        "messages_suppressed",
        "body",
        "organization",
        "received_at",
    ]
    list_filter = ["action", "channel", "vendor", "organization"]
    list_select_related = ["organization"]
    search_fields = ["=sender", "=recipient", "body"]
    date_hierarchy = "received_at"


class LeadMessageFormSet(forms.BaseInlineFormSet):
    def get_queryset(self):
        # A lead may have thousands of messages; the page shows the latest few. The
        # same (sliced, then cached) queryset is returned every time, so the
        # formset's lookups read it once.
        if not hasattr(self, "_latest"):
            self._latest = (
                super().get_queryset().order_by("-created_at")[:LEAD_HISTORY_SHOWN]
            )
        return self._latest


class LeadMessageInline(admin.TabularInline):
    """The lead's message history, newest first, read-only."""

    model = CommunicationLog
    formset = LeadMessageFormSet
    verbose_name = "message"
    verbose_name_plural = f"Message history (latest {LEAD_HISTORY_SHOWN})"
    fields = [
        "created_at",
        "dispatch",
        "channel",
        "status",
        "body",
        "error_code",
        "sent_at",
        "delivered_at",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("dispatch")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return True  # the lead's own page decides who sees it


class LeadWithMessagesAdmin(LeadAdmin):
    """crm's lead page with the lead's message history below it.

    crm may not import messaging, so crm registers the lead page without the
    history and messaging, which may read crm, registers this one in its place.
    """

    inlines = [*LeadAdmin.inlines, LeadMessageInline]
    readonly_fields = [*LeadAdmin.readonly_fields, "held_back"]
    fieldsets = [
        (
            name,
            {**options, "fields": [*options["fields"], "held_back"]}
            if "opt_out_state" in options["fields"]
            else options,
        )
        for name, options in LeadAdmin.fieldsets
    ]

    @admin.display(description="Why not messaged lately")
    def held_back(self, lead):
        """Its latest messages the sending rules skipped or deferred
        (reporting.lead_held_back: one query)."""
        if lead.pk is None:
            return "-"
        found = reporting.lead_held_back(
            lead=lead, now=timezone.now(), latest=LEAD_HISTORY_SHOWN
        )
        lines = [
            format_html(
                "{} message of {} ({}) not sent: {}",
                log.get_channel_display(),
                date_format(timezone.localtime(log.created_at), "DATETIME_FORMAT"),
                log.dispatch,
                reporting.HELD_BACK_REASONS[log.skip_reason],
            )
            for log in found["skipped"]
        ]
        lines += [
            format_html(
                "{} message ({}) deferred until {}",
                log.get_channel_display(),
                log.dispatch,
                date_format(timezone.localtime(log.next_attempt_at), "DATETIME_FORMAT"),
            )
            for log in found["deferred"]
        ]
        if not lines:
            return (
                "Nothing held back: none of its latest messages was capped,"
                " suppressed, opted out or deferred."
            )
        return format_html_join(mark_safe("<br>"), "{}", ((line,) for line in lines))


admin.site.unregister(Lead)
admin.site.register(Lead, LeadWithMessagesAdmin)
