"""The CRM in the admin: organizations, members, leads (CSV in and out) and segments.

One module per model admin; importing this package registers them all.
"""

from crm.admin.leads import LeadAdmin, LeadAdminForm, LeadImportForm
from crm.admin.organizations import MembershipAdmin, OrganizationAdmin
from crm.admin.segments import SegmentAdmin, SegmentAdminForm
from crm.admin.suppressions import SuppressionAdmin

__all__ = [
    "LeadAdmin",
    "LeadAdminForm",
    "LeadImportForm",
    "MembershipAdmin",
    "OrganizationAdmin",
    "SegmentAdmin",
    "SegmentAdminForm",
    "SuppressionAdmin",
]
