"""Segments in the admin: rules built in rows or typed as JSON, checked as they
change, the audience counted and sampled unsaved."""

import json

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseNotAllowed, JsonResponse
from django.urls import path, reverse

from crm.admin_scoping import OrganizationScopedAdmin, chosen_organization, take_over
from crm.models import Segment
from crm.rules import RuleError, rule_catalog, validate_rules
from crm.selectors import segment_preview
from crm.services.segments import segment_create, segment_update


class PrettyJSONField(forms.JSONField):
    def prepare_value(self, value):
        if isinstance(value, str):
            return value  # as typed, when the form is shown again with an error
        return json.dumps(value, indent=2, ensure_ascii=False)


class SegmentAdminForm(forms.ModelForm):
    """Rules checked by crm.rules; the "Preview" button shows the audience unsaved."""

    rules = PrettyJSONField(
        widget=forms.Textarea(
            attrs={"rows": 12, "cols": 80, "class": "vLargeTextField"}
        ),
        help_text=(
            'A rule tree, e.g. {"and": [{"field": "total_spend", "op": "gt", '
            '"value": 100}, {"field": "sms_opt_out", "op": "eq", "value": false}]}'
        ),
    )

    class Meta:
        model = Segment
        fields = ["organization", "name", "description", "rules"]

    previewing = False
    preview = None
    preview_error = None

    def clean_rules(self):
        rules = self.cleaned_data["rules"]
        try:
            validate_rules(rules)
        except RuleError as error:
            raise ValidationError(
                f"{error.reason} (at {error.path})", code="invalid_rules"
            ) from None
        return rules

    def is_valid(self):
        """On "Preview", a valid form computes the preview and is not saved.

        Reporting itself invalid (with no errors) makes the admin show the form
        again, as typed, instead of saving it.
        """
        valid = super().is_valid()
        if not (valid and self.previewing):
            return valid
        self.preview = segment_preview(
            organization=self.cleaned_data["organization"],
            rules=self.cleaned_data["rules"],
        )
        return False


@admin.register(Segment)
class SegmentAdmin(OrganizationScopedAdmin):
    form = SegmentAdminForm
    list_display = [
        "name",
        "organization",
        "audience_size",
        "audience_counted_at",
        "updated_at",
    ]
    list_filter = ["organization", "updated_at"]
    list_select_related = ["organization"]
    search_fields = ["name", "description"]
    readonly_fields = ["audience_size", "audience_counted_at", "created_at"]
    change_form_template = "admin/crm/segment/change_form.html"
    fieldsets = [
        (None, {"fields": ["organization", "name", "description", "rules"]}),
        ("Audience", {"fields": ["audience_size", "audience_counted_at"]}),
    ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.previewing = request.method == "POST" and "_preview" in request.POST
        return form

    class Media:
        css = {"all": ["crm/admin/segment_builder.css"]}
        js = ["crm/admin/segment_builder.js"]

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "rule_catalog": rule_catalog(),
            "audience_url": reverse("admin:crm_segment_audience"),
        }
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        return [
            path(
                "audience/",
                self.admin_site.admin_view(self.audience_view),
                name="crm_segment_audience",
            ),
            *super().get_urls(),
        ]

    def audience_view(self, request):
        """The builder's live check: POST {"organization": id, "rules": tree}.

        Answers the audience's count and a sample, or the path of the node the
        rules fail at and why ("error"), which the builder marks on that row. Rules
        refused are an answer (200): the builder asks at every pause in typing, and
        a half-typed rule is no bad request. A malformed request is a 400.
        """
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            body = json.loads(request.body)
        except ValueError:
            return _refused("", "the request is not JSON")
        if not isinstance(body, dict) or "rules" not in body:
            return _refused("", 'the request needs "rules"')
        organization = chosen_organization(request, body.get("organization"))
        if organization is None:
            return _refused("organization", "choose an organization first")
        try:
            preview = segment_preview(organization=organization, rules=body["rules"])
        except RuleError as error:
            # The rules as drafted, refused: an answer, not a bad request.
            return _refused(error.path, error.reason, status=200)
        return JsonResponse(
            {
                "count": preview.count,
                "sample": [
                    {
                        "name": str(lead),
                        "phone": lead.phone,
                        "email": lead.email,
                        "url": reverse("admin:crm_lead_change", args=[lead.pk]),
                    }
                    for lead in preview.sample
                ],
            }
        )

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            segment_update(
                segment=obj,
                name=data["name"],
                description=data["description"],
                rules=data["rules"],
            )
            return
        segment = segment_create(
            organization=data["organization"],
            name=data["name"],
            description=data["description"],
            rules=data["rules"],
        )
        take_over(obj, segment)


def _refused(path: str, reason: str, *, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": {"path": path, "reason": reason}}, status=status)
