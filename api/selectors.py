"""Reads of the API's own models."""

from api.models import LeadImport
from crm.models import Organization


def lead_import_last_column_map(*, organization: Organization) -> dict[str, str]:
    """The column map of the organization's latest mapped import: the marketer's
    last choices, offered again for the next file."""
    last = (
        LeadImport.objects.filter(organization=organization)
        .exclude(column_map={})
        .order_by("-pk")
        .values_list("column_map", flat=True)
        .first()
    )
    return last or {}
