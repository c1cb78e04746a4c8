"""Admin pages scoped to the staff user's organization, with rights from their role.

Marketers work in the admin; each belongs to one organization (crm Membership) and
must see only its rows. A superuser sees everything. A member's role decides what
they may do, so an organization needs no Django permission set per marketer: viewers
look, marketers and owners create and change, only owners delete. Django's own
permissions still grant what they grant, for staff set up the usual way.
"""

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils.functional import cached_property

from crm.models import Membership, Organization

_ROLE_RIGHTS = {
    Membership.Role.VIEWER: {"view"},
    Membership.Role.MARKETER: {"view", "add", "change"},
    Membership.Role.OWNER: {"view", "add", "change", "delete"},
}


def request_membership(request) -> Membership | None:
    """The user's membership, read once per request."""
    if not hasattr(request, "_crm_membership"):
        request._crm_membership = (
            Membership.objects.select_related("organization")
            .filter(user_id=request.user.pk)
            .first()
            if request.user.is_authenticated
            else None
        )
    return request._crm_membership


def request_organization(request) -> Organization | None:
    membership = request_membership(request)
    return membership.organization if membership else None


def role_allows(request, right: str) -> bool:
    membership = request_membership(request)
    if membership is None or not request.user.is_staff:
        return False
    return right in _ROLE_RIGHTS.get(membership.role, set())


class CappedCountPaginator(Paginator):
    """Counts at most CAP rows: `SELECT COUNT(*) FROM (... LIMIT CAP)`.

    The admin counts a changelist's rows for its pages; on tables of millions
    (messages, receipts, leads) an exact count reads them all on every page view.
    Past CAP rows a filter or search is the way on, not page 500.
    """

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list[: self.CAP].count()


class OrganizationScopedAdmin(admin.ModelAdmin):
    """A ModelAdmin showing a member only their organization's rows.

    `organization_path` is the lookup from the model to its Organization
    ("organization", "dispatch__organization", ...). The `organization` field of
    the model's form, if any, is fixed to the member's organization.
    """

    organization_path = "organization"

    def scope(self, request, queryset: QuerySet) -> QuerySet:
        if request.user.is_superuser:
            return queryset
        organization = request_organization(request)
        if organization is None:
            return queryset.none()
        return queryset.filter(**{self.organization_path: organization.pk})

    def get_queryset(self, request):
        return self.scope(request, super().get_queryset(request))

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if not request.user.is_superuser:
            # One organization to choose from is no choice.
            filters = [f for f in filters if f != self.organization_path]
        return filters

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        if not request.user.is_superuser and "organization" in columns:
            columns.remove("organization")
        return columns

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        if not request.user.is_superuser:
            organization = request_organization(request)
            if related is Organization:
                kwargs["queryset"] = Organization.objects.filter(
                    pk=getattr(organization, "pk", None)
                )
            elif any(f.name == "organization" for f in related._meta.fields):
                kwargs["queryset"] = related._default_manager.filter(
                    organization=organization
                )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        field = form.base_fields.get("organization")
        organization = request_organization(request)
        if field is not None and not request.user.is_superuser and organization:
            field.initial = organization.pk
            field.disabled = True
        return form

    # Rights: a member's role, or Django's permissions.

    def has_module_permission(self, request):
        return role_allows(request, "view") or super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return role_allows(request, "view") or super().has_view_permission(request, obj)

    def has_add_permission(self, request):
        return role_allows(request, "add") or super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return role_allows(request, "change") or super().has_change_permission(
            request, obj
        )

    def has_delete_permission(self, request, obj=None):
        return role_allows(request, "delete") or super().has_delete_permission(
            request, obj
        )


class ReadOnlyAdmin(OrganizationScopedAdmin):
    """Rows the pipeline writes: looked at and acted on, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
