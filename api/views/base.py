"""What every organization-scoped view shares."""

from django.db.models import QuerySet

from api.filters import OrganizationFilterBackend
from api.permissions import organization_of
from crm.models import Organization


class OrganizationScoped:
    """Querysets narrowed to the caller's organization; others' objects are 404s.

    `organization_field` is the lookup from the view's model to its organization.
    """

    organization_field = "organization"
    filter_backends = [OrganizationFilterBackend]

    @property
    def organization(self) -> Organization:
        return organization_of(self.request)

    def scoped(self, queryset: QuerySet) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return queryset.none()  # the schema is built without a caller
        return queryset.filter(**{self.organization_field: self.organization})

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False) and self.request.user:
            context["organization"] = self.organization
        return context
