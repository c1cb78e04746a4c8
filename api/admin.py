"""Lead imports in the admin: upload, map the columns, follow the worker, fix rejects.

The pages live here, not in crm's lead admin, because the background import
(LeadImport and its task) is the api app's and apps depend one way (api -> crm).
"""

import csv
import io

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from api.models import LeadImport
from api.selectors import lead_import_last_column_map
from api.services.lead_imports import (
    lead_import_map,
    lead_import_preview,
    lead_import_start,
)
from crm.admin_scoping import OrganizationScopedAdmin, request_organization, role_allows
from crm.models import Organization
from crm.services.lead_import import (
    ATTRIBUTE_PREFIX,
    COLUMN_ALIASES,
    IGNORE,
    column_target,
)
from crm.spreadsheet import formula_escaped

# Rejected rows listed on the result page; all kept ones are in the CSV download.
REJECTS_SHOWN = 200
PREVIEW_ROWS = 5
# The column the rejected rows' CSV adds; ignored when that file comes back.
REASON_COLUMN = "rejected_reason"
FIELD_LABELS = {
    "external_id": "External id",
    "name": "Name",
    "first_name": "First name",
    "last_name": "Last name",
    "phones": "Phone(s)",
    "emails": "Email(s)",
    "total_spend": "Total spend",
    "visits": "Visits",
    "timezone": "Timezone",
    "tags": "Tags",
    "sms_opt_out": "SMS opt-out",
    "email_opt_out": "Email opt-out",
    "opt_out": "Opt-out (all channels)",
}


class UploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="A header line, then one lead per line; you map the columns next.",
    )
    organization = forms.ModelChoiceField(queryset=Organization.objects.all())

    def __init__(self, *args, organization=None, **kwargs):
        super().__init__(*args, **kwargs)
        if organization is not None:
            del self.fields["organization"]  # a member imports into their own


def _target_choices(chosen: list[str]) -> list[tuple[str, object]]:
    """Ignore, the lead fields, and as attributes the columns' own names and any
    attribute chosen (the remembered map may name one the headers do not)."""
    fields = [(name, FIELD_LABELS.get(name, name)) for name in COLUMN_ALIASES]
    attributes = sorted({t for t in chosen if t.startswith(ATTRIBUTE_PREFIX)})
    choices: list[tuple[str, object]] = [
        (IGNORE, "Ignore this column"),
        ("Lead field", fields),
    ]
    if attributes:
        choices.append(("Attribute", [(a, a) for a in attributes]))
    return choices


@admin.register(LeadImport)
class LeadImportAdmin(OrganizationScopedAdmin):
    list_display = [
        "import_link",
        "status",
        "rows_read",
        "created",
        "updated",
        "rejected_count",
        "created_by",
        "organization",
        "created_at",
    ]
    list_display_links = None
    list_filter = ["status", "organization"]
    list_select_related = ["organization", "created_by"]
    ordering = ["-pk"]

    @admin.display(description="File", ordering="filename")
    def import_link(self, upload):
        page = "mapping" if upload.status == LeadImport.Status.MAPPING else "result"
        return format_html(
            '<a href="{}">{}</a>',
            reverse(f"admin:api_leadimport_{page}", args=[upload.pk]),
            upload.filename or f"import {upload.pk}",
        )

    # Rights: importing leads is adding leads.

    def has_add_permission(self, request):
        return role_allows(request, "add") or request.user.has_perm("crm.add_lead")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/mapping/",
                view(self.mapping_view),
                name="api_leadimport_mapping",
            ),
            path(
                "<int:pk>/result/", view(self.result_view), name="api_leadimport_result"
            ),
            path(
                "<int:pk>/progress/",
                view(self.progress_view),
                name="api_leadimport_progress",
            ),
            path(
                "<int:pk>/rejected.csv",
                view(self.rejected_view),
                name="api_leadimport_rejected",
            ),
            *super().get_urls(),
        ]

    def _member_organization(self, request):
        if request.user.is_superuser:
            return None
        organization = request_organization(request)
        if organization is None:
            raise PermissionDenied  # staff of no organization have none to import into
        return organization

    def _upload(self, request, pk: int) -> LeadImport:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return get_object_or_404(self.get_queryset(request), pk=pk)

    def add_view(self, request, form_url="", extra_context=None):
        """Upload a CSV: it is stored, then its columns are mapped."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        member_organization = self._member_organization(request)
        form = UploadForm(
            request.POST or None,
            request.FILES or None,
            organization=member_organization,
        )
        if request.method == "POST" and form.is_valid():
            file = form.cleaned_data["file"]
            try:
                upload = lead_import_start(
                    organization=member_organization
                    or form.cleaned_data["organization"],
                    filename=file.name or "",
                    file=file,
                    created_by=request.user,
                    map_first=True,
                )
            except ValidationError as error:
                for message in error.message_dict.get("file", error.messages):
                    form.add_error("file", message)
            else:
                return redirect("admin:api_leadimport_mapping", upload.pk)
        return TemplateResponse(
            request,
            "admin/api/leadimport/upload.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Import leads from CSV",
                "form": form,
            },
        )

    def mapping_view(self, request, pk: int):
        """The file's header and first rows, a target chosen per column."""
        upload = self._upload(request, pk)
        if upload.status != LeadImport.Status.MAPPING:
            return redirect("admin:api_leadimport_result", upload.pk)
        if not self.has_add_permission(request):
            raise PermissionDenied
        try:
            header, rows = lead_import_preview(lead_import=upload, rows=PREVIEW_ROWS)
        except ValidationError as error:
            header, rows, problem = [], [], " ".join(error.messages)
        else:
            problem = ""
        remembered = lead_import_last_column_map(organization=upload.organization)
        if request.method == "POST" and header:
            column_map = {
                title: request.POST.get(f"column_{index}", IGNORE)
                for index, title in enumerate(header)
            }
            try:
                lead_import_map(lead_import=upload, column_map=column_map)
            except ValidationError as error:
                problem = " ".join(error.messages)
            else:
                return redirect("admin:api_leadimport_result", upload.pk)
        columns = [
            {
                "index": index,
                "title": title,
                "chosen": IGNORE
                if title == REASON_COLUMN
                else remembered.get(title) or column_target(title),
                "samples": [row[index] if index < len(row) else "" for row in rows],
            }
            for index, title in enumerate(header)
        ]
        choices = _target_choices(
            [c["chosen"] for c in columns] + [column_target(title) for title in header]
        )
        return TemplateResponse(
            request,
            "admin/api/leadimport/mapping.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": f"Map the columns of {upload.filename or 'the file'}",
                "upload": upload,
                "columns": columns,
                "choices": choices,
                "problem": problem,
            },
        )

    def result_view(self, request, pk: int):
        """Progress while the worker imports; the counts and rejects once done."""
        upload = self._upload(request, pk)
        return TemplateResponse(
            request,
            "admin/api/leadimport/result.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": f"Import of {upload.filename or 'a file'}",
                "upload": upload,
                "final": upload.status
                in (LeadImport.Status.DONE, LeadImport.Status.FAILED),
                "rejected": upload.rejected[:REJECTS_SHOWN],
                "rejected_more": max(0, upload.rejected_count - REJECTS_SHOWN),
                "progress_url": reverse("admin:api_leadimport_progress", args=[pk]),
            },
        )

    def progress_view(self, request, pk: int):
        """The counts so far, for the result page's progress bar."""
        upload = self._upload(request, pk)
        return JsonResponse(
            {
                "status": upload.status,
                "size": upload.size,
                "rows_read": upload.rows_read,
                "created": upload.created,
                "updated": upload.updated,
                "rejected_count": upload.rejected_count,
                "final": upload.status
                in (LeadImport.Status.DONE, LeadImport.Status.FAILED),
            }
        )

    def rejected_view(self, request, pk: int):
        """The rejected rows as uploaded, a reason column added: fix, upload again."""
        upload = self._upload(request, pk)
        cells = [row.get("cells", []) for row in upload.rejected]
        width = max(len(upload.header), *map(len, cells), 0)
        header = [
            *upload.header,
            *(f"column_{i + 1}" for i in range(len(upload.header), width)),
        ]
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([*map(formula_escaped, header), REASON_COLUMN])
        for row, row_cells in zip(upload.rejected, cells, strict=True):
            writer.writerow(
                [
                    *map(formula_escaped, row_cells),
                    *[""] * (width - len(row_cells)),
                    formula_escaped(row["reason"]),
                ]
            )
        response = HttpResponse(out.getvalue(), content_type="text/csv")
        name = (upload.filename or "import").rsplit(".", 1)[0]
        response["Content-Disposition"] = f'attachment; filename="{name}-rejected.csv"'
        return response
