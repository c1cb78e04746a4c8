"""A lead as the import writes it (a slotted record, not a model), and a row applied."""

from operator import attrgetter
from typing import Any

from crm.models import LEAD_DATA_FIELDS, Lead
from crm.services.lead_bulk import lead_text_encoder
from crm.services.lead_import.rows import Row, unique

# The fields an import writes, in the order of every record and COPY line.
UPDATED_FIELDS = list(LEAD_DATA_FIELDS)


class ImportedLead:
    """A lead as the import sees it: the fields it writes, and the id once saved.

    A plain slotted object rather than a Lead: model instances cost more to build
    than all the rest of an import's writing (6 s per 100,000 rows). `text` is its
    COPY text while it is new and as one row made it, "" otherwise.
    """

    __slots__ = ("pk", "text", *UPDATED_FIELDS)

    def __init__(self, pk: int | None = None, *values: Any) -> None:
        # One unpacking, in UPDATED_FIELDS' order: a third of the cost of setattr.
        self.pk = pk
        self.text = ""
        (
            self.external_id,
            self.name,
            self.phones,
            self.emails,
            self.phone,
            self.email,
            self.total_spend,
            self.visits,
            self.timezone,
            self.attributes,
            self.tags,
            self.sms_opt_out,
            self.email_opt_out,
        ) = values or _NEW_LEAD


# A lead's fields, in order, as a tuple (attrgetter does it in C).
lead_values = attrgetter(*UPDATED_FIELDS)

# A new lead's values, the model's defaults; never mutated (row_apply assigns).
_NEW_LEAD = tuple(Lead._meta.get_field(name).get_default() for name in UPDATED_FIELDS)

# A lead's values as COPY text, for Postgres.
lead_text = lead_text_encoder(UPDATED_FIELDS)


def row_apply(row: Row, lead: ImportedLead) -> None:
    """Merge the row into the lead, as lead_import_csv's docstring says rows merge."""
    if row.external_id:
        lead.external_id = row.external_id
    for name, value in row.values.items():
        setattr(lead, name, value)
    # A row's lists are unique already, so a new lead (empty lists), or one holding
    # just what the row holds (a file imported again), just takes them; neither
    # list nor dict is ever changed in place, so sharing them is safe.
    if row.phones or row.emails:
        # As Lead.set_contacts: the first of each list mirrors in phone / email.
        phones = _merged(row.phones, lead.phones)
        emails = _merged(row.emails, lead.emails)
        lead.phones, lead.emails = phones, emails
        lead.phone = phones[0] if phones else ""
        lead.email = emails[0] if emails else ""
    if row.tags:
        lead.tags = _merged(lead.tags, row.tags)
    if row.attributes and lead.attributes != row.attributes:
        lead.attributes = (
            {**lead.attributes, **row.attributes} if lead.attributes else row.attributes
        )
    lead.sms_opt_out = lead.sms_opt_out or row.sms_opt_out
    lead.email_opt_out = lead.email_opt_out or row.email_opt_out


def _merged(first: list[str], then: list[str]) -> list[str]:
    """unique([*first, *then]), where the row's list (unique already) is one."""
    if not then or then == first:
        return first
    if not first:
        return unique(then)
    return unique([*first, *then])
