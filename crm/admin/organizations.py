"""Organizations and their members in the admin: tenants are an operator's to create.

An organization's page holds its sending rules (owners change them) and shows its
sender identities, which the vendor accounts' page manages.
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.utils.html import format_html, format_html_join

from crm.admin_scoping import OrganizationScopedAdmin, request_membership
from crm.models import Membership, Organization
from crm.services.organizations import SETTINGS_FIELDS, organization_settings_errors


class OrganizationForm(forms.ModelForm):
    """The sending rules validated as the API validates them."""

    class Meta:
        model = Organization
        fields = ["name", "slug", *sorted(SETTINGS_FIELDS - {"name"})]

    def clean(self):
        cleaned = super().clean()
        values = {
            name: cleaned.get(name, getattr(self.instance, name))
            for name in SETTINGS_FIELDS
        }
        errors = organization_settings_errors(values)
        for name in list(errors):
            if name in self._errors:  # the field's own error says it already
                del errors[name]
        if errors:
            raise ValidationError(errors)
        return cleaned


@admin.register(Organization)
class OrganizationAdmin(OrganizationScopedAdmin):
    organization_path = "pk"
    form = OrganizationForm
    list_display = ["name", "slug", "time_zone", "members", "created_at"]
    search_fields = ["name", "slug"]
    readonly_fields = ["created_at", "sender_identities"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "created_at"]}),
        (
            "Sending rules",
            {
                "fields": [
                    "time_zone",
                    "quiet_hours_enabled",
                    ("quiet_hours_start", "quiet_hours_end"),
                    ("transactional_night_start", "transactional_night_end"),
                    ("frequency_cap_count", "frequency_cap_days"),
                    "help_text",
                ],
                "description": (
                    "Quiet hours hold marketing messages until the recipient's "
                    "window opens (their time zone, else this one); transactional "
                    "messages are never sent in the night window; the frequency "
                    "cap (blank: none) skips marketing messages over N per lead "
                    "and channel in the days given. See docs/consent.md."
                ),
            },
        ),
        ("Sender identities", {"fields": ["sender_identities"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("memberships"))

    @admin.display(ordering="member_count")
    def members(self, organization):
        return organization.member_count

    @admin.display(description="Sender identities")
    def sender_identities(self, organization):
        """The active vendor accounts: what recipients see and reply to; never
        their credentials."""
        accounts = organization.vendor_accounts.filter(is_active=True).order_by(
            "channel"
        )
        if not accounts:
            return "None: messages go from the shared default sender."
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{} via {}: <strong>{}</strong></li>",
                (
                    (
                        account.get_channel_display(),
                        account.get_vendor_display(),
                        account.sender,
                    )
                    for account in accounts
                ),
            ),
        )

    def has_add_permission(self, request):
        # Creating tenants is an operator's job, not a member's.
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        # The sending rules are the owners' to set (as in the API).
        if request.user.is_superuser:
            return True
        membership = request_membership(request)
        return (
            request.user.is_staff
            and membership is not None
            and membership.role == Membership.Role.OWNER
        )

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Membership)
class MembershipAdmin(OrganizationScopedAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization"]
    list_select_related = ["user", "organization"]
    search_fields = ["user__username", "user__email", "organization__name"]
    readonly_fields = ["created_at"]

    # Who belongs to which organization is an operator's decision: a form listing
    # every user would show members the other tenants' users.
    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser
