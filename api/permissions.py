"""Who may call the API: members of an organization; viewers only read."""

from django.core.exceptions import ObjectDoesNotExist
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from crm.models import Membership, Organization


def membership_of(request: Request) -> Membership | None:
    """The caller's membership, read once per request."""
    if not hasattr(request, "_crm_membership"):
        try:
            membership = request.user.membership
        except (AttributeError, ObjectDoesNotExist):
            membership = None
        request._crm_membership = membership
    return request._crm_membership


def organization_of(request: Request) -> Organization:
    """The organization every object the caller sees or changes must belong to."""
    return membership_of(request).organization


class IsOrganizationMember(BasePermission):
    """A signed-in user with a membership; a viewer may only read.

    Objects of other organizations are never found (404) rather than forbidden (403):
    the API does not even confirm that they exist.
    """

    message = "You are not a member of any organization."

    def has_permission(self, request, view) -> bool:
        membership = membership_of(request)
        if membership is None:
            return False
        if request.method in SAFE_METHODS:
            return True
        if membership.role == Membership.Role.VIEWER:
            self.message = "Viewers may read but not change anything."
            return False
        return True


class IsOwner(BasePermission):
    """An owner of the organization: for what only owners decide (lifting a
    suppression, the organization's sending rules)."""

    message = "Only the organization's owners may do this."

    def has_permission(self, request, view) -> bool:
        membership = membership_of(request)
        return membership is not None and membership.role == Membership.Role.OWNER


class IsOwnerToChange(IsOwner):
    """Members read; only owners change (an organization's vendor accounts decide
    who it sends as, and hold its secrets)."""

    message = "Only the organization's owners may change this."

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or super().has_permission(request, view)
