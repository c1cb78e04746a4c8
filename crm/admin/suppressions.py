"""The suppression list in the admin: who the organization must not message, and why.

Rows change only through crm.services.suppressions: "Add" and the CSV import call
it, and an owner's "Lift" action asks for a reason it keeps in the history. There
is no edit and no delete.
"""

import io

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from crm.admin_scoping import (
    CappedCountPaginator,
    OrganizationScopedAdmin,
    request_membership,
    request_organization,
    take_over,
)
from crm.contacts import ContactError
from crm.models import Membership, Organization, Suppression, SuppressionLift
from crm.services.suppression_csv import (
    SuppressionFileError,
    suppressions_export_csv_lines,
    suppressions_import_csv,
)
from crm.services.suppressions import (
    LIFT_REASON_MAX_LENGTH,
    address_normalize,
    address_unsuppress,
    suppression_get_or_create,
)

# Rejected rows shown on the import page; the rest are counted, not listed.
IMPORT_REJECTS_SHOWN = 200


def may_lift(request) -> bool:
    """Lifting a suppression is an owner's decision (or an operator's)."""
    if request.user.is_superuser:
        return True
    membership = request_membership(request)
    return (
        request.user.is_staff
        and membership is not None
        and membership.role == Membership.Role.OWNER
    )


class SuppressionAddForm(forms.ModelForm):
    """An address added by hand: normalized as stored, reason manual."""

    class Meta:
        model = Suppression
        fields = ["organization", "channel", "address"]
        help_texts = {
            "address": "A phone (stored in E.164) or an email (stored lower-cased)."
        }

    def clean(self):
        cleaned = super().clean()
        channel, address = cleaned.get("channel"), cleaned.get("address")
        if channel and address:
            try:
                cleaned["address"] = address_normalize(channel=channel, address=address)
            except ContactError as error:
                raise ValidationError({"address": str(error)}) from None
        return cleaned

    def _get_validation_exclusions(self):
        # An address suppressed already is answered with its row (save_model),
        # not as a broken unique constraint; the form field checks its length.
        return {*super()._get_validation_exclusions(), "address"}


class LiftForm(forms.Form):
    reason = forms.CharField(
        max_length=LIFT_REASON_MAX_LENGTH,
        help_text="Why these addresses may be messaged again, e.g. how they asked.",
    )


class SuppressionImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text=(
            "A header line, then one address per line. Columns: channel (sms or "
            "email), address, and optionally reason (import when blank)."
        ),
    )
    organization = forms.ModelChoiceField(queryset=Organization.objects.all())

    def __init__(self, *args, organization=None, **kwargs):
        super().__init__(*args, **kwargs)
        if organization is not None:
            del self.fields["organization"]  # a member's own


@admin.register(Suppression)
class SuppressionAdmin(OrganizationScopedAdmin):
    form = SuppressionAddForm
    list_display = [
        "address",
        "channel",
        "reason",
        "source",
        "organization",
        "created_at",
    ]
    list_filter = ["channel", "reason", "organization"]
    list_select_related = ["organization"]
    search_fields = ["address"]
    ordering = ["-created_at"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    actions = ["lift", "export_selected"]
    change_list_template = "admin/crm/suppression/change_list.html"

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["organization", "channel", "address", "reason", "source", "created_at"]

    def get_search_results(self, request, queryset, search_term):
        """An address found however it is written: normalized first, if it is one."""
        term = search_term.strip()
        for channel in ("email", "sms") if "@" in term else ("sms",):
            try:
                address = address_normalize(channel=channel, address=term)
            except (ContactError, ValueError):
                continue
            return queryset.filter(address=address), False
        return super().get_search_results(request, queryset, search_term)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_lift_permission(self, request):
        return may_lift(request)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not may_lift(request):
            actions.pop("lift", None)
        return actions

    def save_model(self, request, obj, form, change):
        saved, created = suppression_get_or_create(
            organization_id=obj.organization_id,
            channel=obj.channel,
            address=obj.address,
            reason=Suppression.Reason.MANUAL,
            source=request.user.get_username(),
        )
        if not created:
            self.message_user(
                request,
                f"{saved.address} was suppressed already "
                f"({saved.get_reason_display()}, {saved.created_at:%Y-%m-%d}).",
                messages.INFO,
            )
        take_over(obj, saved)

    @admin.action(description="Lift selected suppressions (owners, with a reason)")
    def lift(self, request, queryset):
        """Lift the suppressions: the addresses may be messaged again; recorded."""
        if not may_lift(request):
            raise PermissionDenied
        form = LiftForm(request.POST if "reason" in request.POST else None)
        if form.is_valid():
            reason = form.cleaned_data["reason"]
            lifted = 0
            for suppression in queryset.order_by("pk"):
                if address_unsuppress(
                    suppression_id=suppression.pk,
                    organization_id=suppression.organization_id,
                    lifted_by=request.user.get_username(),
                    reason=reason,
                ):
                    lifted += 1
            self.message_user(
                request, f"Lifted {lifted} suppression{'s' if lifted != 1 else ''}."
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Lift suppressions",
            "form": form,
            "suppressions": queryset,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/crm/suppression/lift.html", context)

    def get_urls(self):
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="crm_suppression_import",
            ),
            path(
                "export/",
                self.admin_site.admin_view(self.export_view),
                name="crm_suppression_export",
            ),
            *super().get_urls(),
        ]

    def import_view(self, request):
        """Upload a CSV of addresses; bad rows are reported by line."""
        if not self.has_add_permission(request):
            return redirect("admin:crm_suppression_changelist")
        member_organization = (
            None if request.user.is_superuser else request_organization(request)
        )
        if member_organization is None and not request.user.is_superuser:
            raise PermissionDenied
        report, file_error = None, None
        if request.method == "POST":
            form = SuppressionImportForm(
                request.POST, request.FILES, organization=member_organization
            )
            if form.is_valid():
                organization = member_organization or form.cleaned_data["organization"]
                upload = form.cleaned_data["file"]
                stream = io.TextIOWrapper(upload.file, encoding="utf-8-sig", newline="")
                try:
                    report = suppressions_import_csv(
                        organization_id=organization.pk,
                        stream=stream,
                        source=f"import {upload.name}"[:200],
                    )
                except (SuppressionFileError, UnicodeDecodeError) as error:
                    file_error = str(error)
                if report:
                    self.message_user(
                        request, f"Imported into {organization}: {report.summary()}"
                    )
        else:
            form = SuppressionImportForm(organization=member_organization)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Import suppressions from CSV",
            "form": form,
            "report": report,
            "file_error": file_error,
            "rejected": report.rejected[:IMPORT_REJECTS_SHOWN] if report else [],
            "rejected_more": (
                max(0, len(report.rejected) - IMPORT_REJECTS_SHOWN) if report else 0
            ),
        }
        return TemplateResponse(request, "admin/crm/suppression/import.html", context)

    def export_view(self, request):
        """The changelist's current filter and search, as CSV."""
        if not self.has_view_permission(request):
            return redirect("admin:index")
        changelist = self.get_changelist_instance(request)
        return self._csv_response(changelist.get_queryset(request))

    @admin.action(description="Export selected suppressions as CSV")
    def export_selected(self, request, queryset):
        return self._csv_response(queryset)

    def _csv_response(self, suppressions):
        response = StreamingHttpResponse(
            suppressions_export_csv_lines(suppressions=suppressions),
            content_type="text/csv",
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = (
            f'attachment; filename="suppressions-{stamp}.csv"'
        )
        return response

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "import_url": reverse("admin:crm_suppression_import"),
            "export_url": reverse("admin:crm_suppression_export"),
        }
        return super().changelist_view(request, extra_context)


@admin.register(SuppressionLift)
class SuppressionLiftAdmin(OrganizationScopedAdmin):
    """The history of lifted suppressions: read only, kept for good."""

    list_display = [
        "address",
        "channel",
        "suppression_reason",
        "lifted_by",
        "reason",
        "organization",
        "lifted_at",
    ]
    list_filter = ["channel", "suppression_reason", "organization"]
    list_select_related = ["organization"]
    search_fields = ["address", "lifted_by", "reason"]
    ordering = ["-lifted_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
