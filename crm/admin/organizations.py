"""Organizations and their members in the admin: tenants are an operator's to create."""

from django.contrib import admin
from django.db.models import Count

from crm.admin_scoping import OrganizationScopedAdmin
from crm.models import Membership, Organization


@admin.register(Organization)
class OrganizationAdmin(OrganizationScopedAdmin):
    organization_path = "pk"
    list_display = ["name", "slug", "members", "created_at"]
    search_fields = ["name", "slug"]
    readonly_fields = ["created_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("memberships"))

    @admin.display(ordering="member_count")
    def members(self, organization):
        return organization.member_count

    def has_add_permission(self, request):
        # Creating tenants is an operator's job, not a member's.
        return request.user.is_superuser

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
