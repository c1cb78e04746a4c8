"""Admin pages scoped to the staff user's organization, with rights from their role.

Marketers work in the admin; each belongs to one organization (crm Membership) and
must see only its rows. A superuser sees everything. A member's role decides what
they may do, so an organization needs no Django permission set per marketer: viewers
look, marketers and owners create and change, only owners delete. Django's own
permissions still grant what they grant, for staff set up the usual way.
"""

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.core.exceptions import FieldDoesNotExist
from django.core.paginator import Paginator
from django.db.models import Model, QuerySet
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


def chosen_organization(request, chosen: Any) -> Organization | None:
    """The organization a page's own JSON calls act in: a member's own; for a
    superuser, the one the form has chosen (an id), None if none is."""
    if not request.user.is_superuser:
        return request_organization(request)
    if isinstance(chosen, str) and chosen.isdigit():
        chosen = int(chosen)
    if not isinstance(chosen, int) or isinstance(chosen, bool):
        return None
    return Organization.objects.filter(pk=chosen).first()


def role_allows(request, right: str) -> bool:
    membership = request_membership(request)
    if membership is None or not request.user.is_staff:
        return False
    return right in _ROLE_RIGHTS.get(membership.role, set())


def organization_path_of(model, admin_site) -> str | None:
    """The lookup from the model to its Organization: its scoped admin's, else a
    direct `organization` field; None for a model that belongs to no organization."""
    model_admin = admin_site._registry.get(model)
    if isinstance(model_admin, OrganizationScopedAdmin):
        return model_admin.organization_path
    if any(field.name == "organization" for field in model._meta.fields):
        return "organization"
    return None


def visible_rows(request, model, admin_site) -> QuerySet:
    """The model's rows the user may be offered: every row for a superuser, their
    organization's for a member, none of a model belonging to no organization."""
    queryset = model._default_manager.all()
    if request.user.is_superuser:
        return queryset
    organization = request_organization(request)
    path = organization_path_of(model, admin_site)
    if organization is None or path is None:
        return queryset.none()
    return queryset.filter(**{path: organization.pk})


class ScopedRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A foreign key's filter offering only the rows the user may see."""

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin)
        rows = visible_rows(request, field.related_model, model_admin.admin_site)
        return field.get_choices(
            include_blank=False,
            ordering=ordering,
            limit_choices_to={"pk__in": rows.values("pk")},
        )


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
        if request.user.is_superuser:
            return filters
        # One organization to choose from is no choice.
        filters = [f for f in filters if f != self.organization_path]
        return [self._scoped_filter(f) for f in filters]

    def _scoped_filter(self, list_filter):
        """A foreign key's filter offers the member's organization's rows only."""
        if not isinstance(list_filter, str):
            return list_filter
        try:
            field = get_fields_from_path(self.model, list_filter)[-1]
        except FieldDoesNotExist:
            return list_filter
        if field.is_relation:
            return (list_filter, ScopedRelatedFieldListFilter)
        return list_filter

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        if not request.user.is_superuser and "organization" in columns:
            columns.remove("organization")
        return columns

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if not request.user.is_superuser:
            kwargs["queryset"] = visible_rows(
                request, db_field.related_model, self.admin_site
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


def take_over(obj: Model, saved: Model) -> None:
    """Make the admin's unsaved instance `obj` the row a service saved, `saved`.

    An admin whose save_model creates through a service (crm's segments, campaigns)
    calls this last: the admin goes on to log the addition and redirect with `obj`,
    so `obj` takes the saved row's field values, primary key included, and counts
    as saved.
    """
    for field in saved._meta.concrete_fields:
        setattr(obj, field.attname, getattr(saved, field.attname))
    obj._state.adding = False
