"""The suppression list in the admin: who the organization must not message, and why.

Rows change only through crm.services.suppressions, so the page is read-only here.
"""

from django.contrib import admin

from crm.admin_scoping import OrganizationScopedAdmin
from crm.models import Suppression


@admin.register(Suppression)
class SuppressionAdmin(OrganizationScopedAdmin):
    list_display = ["address", "channel", "reason", "source", "created_at"]
    list_filter = ["channel", "reason"]
    search_fields = ["address"]
    ordering = ["-created_at"]
    readonly_fields = [
        "organization",
        "channel",
        "address",
        "reason",
        "source",
        "created_at",
    ]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
