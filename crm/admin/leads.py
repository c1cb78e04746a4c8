"""Leads in the admin: contacts edited as text, CSV import and export."""

import io

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from crm.admin_scoping import (
    CappedCountPaginator,
    OrganizationScopedAdmin,
    request_organization,
)
from crm.contacts import ContactError, normalize_emails, normalize_phones
from crm.models import (
    CONSENT_BOOKKEEPING_FIELDS,
    OPT_OUT_FIELDS,
    Channel,
    Lead,
    Organization,
    Suppression,
)
from crm.services.consent import lead_opt_in
from crm.services.lead_export import lead_export_csv_lines
from crm.services.lead_import import ImportFileError, lead_import_csv

# Rejected rows shown on the import page; the rest are counted, not listed.
IMPORT_REJECTS_SHOWN = 200


def _opt_out_text(opted_out: bool, source: str) -> str:
    if not opted_out:
        return "yes"
    return f"opted out ({source})" if source else "opted out"


class LeadAdminForm(forms.ModelForm):
    """Contacts are edited as text and normalized like an import normalizes them."""

    phones_text = forms.CharField(
        label="Phones",
        required=False,
        help_text="Separated by ; or new lines, the primary first. Stored in E.164.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    emails_text = forms.CharField(
        label="Emails",
        required=False,
        help_text="Separated by ; or new lines, the primary first.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    class Meta:
        model = Lead
        fields = [
            "organization",
            "external_id",
            "name",
            "total_spend",
            "visits",
            "timezone",
            "tags",
            "attributes",
        ]
        widgets = {
            "tags": forms.Textarea(attrs={"rows": 2}),
            "attributes": forms.Textarea(attrs={"rows": 4}),
        }
        help_texts = {"tags": 'A JSON list, e.g. ["vip", "spring"]'}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["phones_text"].initial = "; ".join(self.instance.phones or [])
        self.fields["emails_text"].initial = "; ".join(self.instance.emails or [])

    def clean_phones_text(self):
        try:
            return normalize_phones([self.cleaned_data["phones_text"]])
        except ContactError as error:
            raise ValidationError(str(error)) from None

    def clean_emails_text(self):
        try:
            return normalize_emails([self.cleaned_data["emails_text"]])
        except ContactError as error:
            raise ValidationError(str(error)) from None

    def clean(self):
        cleaned = super().clean()
        phones, emails = cleaned.get("phones_text"), cleaned.get("emails_text")
        if phones is not None and emails is not None:
            if not (phones or emails or cleaned.get("external_id")):
                raise ValidationError(
                    "A lead needs an external id, a phone or an email."
                )
            self.instance.set_contacts(phones=phones, emails=emails)
        return cleaned


class LiftOptOutForm(forms.Form):
    channel = forms.ChoiceField(choices=Channel.choices)
    reason = forms.CharField(
        max_length=500,
        help_text="Why this person may be messaged again, e.g. how they asked.",
    )


# The columns the lead form writes: never the opt-outs, which change only through
# crm.services.consent, so a STOP that arrives while the form is open stands.
FORM_WRITTEN_FIELDS = [
    field.attname
    for field in Lead._meta.concrete_fields
    if not field.primary_key
    and field.attname not in {*OPT_OUT_FIELDS.values(), *CONSENT_BOOKKEEPING_FIELDS}
    and field.attname != "created_at"
]


class LeadImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text=(
            "A header line, then one lead per line. Columns: external_id, name, "
            "phone, email, total_spend, visits, timezone, tags, sms_opt_out, "
            "email_opt_out; any other column becomes an attribute."
        ),
    )
    organization = forms.ModelChoiceField(queryset=Organization.objects.all())

    def __init__(self, *args, organization=None, **kwargs):
        super().__init__(*args, **kwargs)
        if organization is not None:
            # A member imports into their own organization.
            del self.fields["organization"]
        self.organization = organization


@admin.register(Lead)
class LeadAdmin(OrganizationScopedAdmin):
    form = LeadAdminForm
    list_display = [
        "display_name",
        "phone",
        "email",
        "total_spend",
        "visits",
        "sms_opt_out",
        "email_opt_out",
        "tag_list",
        "organization",
        "created_at",
    ]
    list_display_links = ["display_name"]
    list_filter = ["sms_opt_out", "email_opt_out", "organization", "created_at"]
    list_select_related = ["organization"]
    search_fields = ["name", "=phone", "email", "=external_id"]
    # Counting a big filtered table on every page is the slowest part of a changelist.
    show_full_result_count = False
    paginator = CappedCountPaginator
    readonly_fields = ["created_at", "updated_at", "opt_out_state", "suppressions"]
    actions = ["export_selected", "lift_opt_out"]
    change_list_template = "admin/crm/lead/change_list.html"
    fieldsets = [
        (None, {"fields": ["organization", "name", "external_id"]}),
        ("Contacts", {"fields": ["phones_text", "emails_text"]}),
        ("Value", {"fields": ["total_spend", "visits", "timezone", "tags"]}),
        (
            "Opt-out per channel",
            {"fields": ["opt_out_state", "suppressions"]},
        ),
        ("Attributes", {"fields": ["attributes"], "classes": ["collapse"]}),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]
    # messaging.admin adds the message history inline: crm must not import messaging.
    inlines: list = []

    @admin.display(description="Name", ordering="name")
    def display_name(self, lead):
        return str(lead)

    @admin.display(description="Tags")
    def tag_list(self, lead):
        return ", ".join(lead.tags or [])

    @admin.display(description="Can be reached by")
    def opt_out_state(self, lead):
        return format_html(
            "SMS: <strong>{}</strong> &middot; Email: <strong>{}</strong>",
            _opt_out_text(lead.sms_opt_out, lead.get_sms_opt_out_source_display()),
            _opt_out_text(lead.email_opt_out, lead.get_email_opt_out_source_display()),
        )

    @admin.display(description="Suppressed addresses")
    def suppressions(self, lead):
        """The lead's addresses on the organization's suppression list, and why:
        one that is there is not messaged, whatever the lead's own flags say."""
        if lead.pk is None:
            return "-"
        rows = Suppression.objects.filter(
            Q(channel=Channel.SMS, address__in=lead.phones or [])
            | Q(channel=Channel.EMAIL, address__in=lead.emails or []),
            organization_id=lead.organization_id,
        ).order_by("channel", "address")
        if not rows:
            return "None"
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{} ({}): <strong>{}</strong> since {}{}</li>",
                (
                    (
                        row.address,
                        row.get_channel_display(),
                        row.get_reason_display(),
                        row.created_at.strftime("%Y-%m-%d %H:%M"),
                        f", {row.source}" if row.source else "",
                    )
                    for row in rows
                ),
            ),
        )

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=FORM_WRITTEN_FIELDS)
        else:
            super().save_model(request, obj, form, change)

    @admin.action(description="Lift opt-out of selected leads (with a reason)")
    def lift_opt_out(self, request, queryset):
        """Opt the leads back into a channel: the one way back, with a reason."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        form = LiftOptOutForm(request.POST if "reason" in request.POST else None)
        if form.is_valid():
            channel, reason = form.cleaned_data["channel"], form.cleaned_data["reason"]
            lifted = 0
            # Every selected lead: one not flagged may still have a suppressed
            # address (another lead's STOP, a manual entry), lifted here too.
            for lead in queryset.order_by("pk"):
                if lead_opt_in(
                    lead_id=lead.pk,
                    channel=channel,
                    reason=reason,
                    lifted_by=request.user.get_username(),
                ):
                    lifted += 1
                    self.log_change(
                        request, lead, f"Lifted {channel} opt-out: {reason}"
                    )
            self.message_user(request, f"Lifted the {channel} opt-out of {lifted}.")
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Lift opt-out",
            "form": form,
            "leads": queryset,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/crm/lead/lift_opt_out.html", context)

    def get_urls(self):
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="crm_lead_import",
            ),
            path(
                "export/",
                self.admin_site.admin_view(self.export_view),
                name="crm_lead_export",
            ),
            *super().get_urls(),
        ]

    def import_view(self, request):
        """Upload a CSV; the same importer as `import_leads`, so the same rules."""
        if not self.has_add_permission(request):
            return redirect("admin:crm_lead_changelist")
        member_organization = (
            None if request.user.is_superuser else request_organization(request)
        )
        if member_organization is None and not request.user.is_superuser:
            # Staff of no organization have none to import into, nor to be shown.
            raise PermissionDenied
        report, file_error = None, None
        if request.method == "POST":
            form = LeadImportForm(
                request.POST, request.FILES, organization=member_organization
            )
            if form.is_valid():
                organization = member_organization or form.cleaned_data["organization"]
                stream = io.TextIOWrapper(
                    form.cleaned_data["file"].file, encoding="utf-8-sig", newline=""
                )
                try:
                    report = lead_import_csv(organization=organization, stream=stream)
                except ImportFileError as error:
                    report, file_error = error.report, str(error)
                level = messages.WARNING if file_error else messages.SUCCESS
                self.message_user(
                    request, f"Imported into {organization}: {report.summary()}", level
                )
        else:
            form = LeadImportForm(organization=member_organization)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Import leads from CSV",
            "form": form,
            "report": report,
            "file_error": file_error,
            "rejected": report.rejected[:IMPORT_REJECTS_SHOWN] if report else [],
            "rejected_more": (
                max(0, report.rejected_count - IMPORT_REJECTS_SHOWN) if report else 0
            ),
        }
        return TemplateResponse(request, "admin/crm/lead/import.html", context)

    def export_view(self, request):
        """The changelist's current filter and search, as CSV."""
        if not self.has_view_permission(request):
            return redirect("admin:index")
        changelist = self.get_changelist_instance(request)
        return self._csv_response(changelist.get_queryset(request))

    @admin.action(description="Export selected leads as CSV")
    def export_selected(self, request, queryset):
        return self._csv_response(queryset)

    def _csv_response(self, leads):
        response = StreamingHttpResponse(
            lead_export_csv_lines(leads=leads), content_type="text/csv"
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="leads-{stamp}.csv"'
        return response

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "import_url": reverse("admin:crm_lead_import"),
            "export_url": reverse("admin:crm_lead_export"),
        }
        return super().changelist_view(request, extra_context)
