"""Lead export to CSV, in the columns the importer reads back (a round trip is exact).

Lists (phones, emails, tags) are joined with "; ", which the importer splits on;
each attribute key gets its own column, which the importer turns back into that
attribute. Cells a spreadsheet would run as a formula are escaped (crm.spreadsheet),
and the importer reads them back unescaped.
"""

import csv
from collections.abc import Iterator

from django.db.models import QuerySet

from crm.models import LEAD_DATA_FIELDS, Lead
from crm.spreadsheet import formula_escaped

# The lists hold the primary contacts first; attributes get a column a key.
COLUMNS = [
    name for name in LEAD_DATA_FIELDS if name not in {"phone", "email", "attributes"}
]
_ITERATOR_CHUNK = 2000


class _Echo:
    """A file-like object whose write returns the line, for streaming responses."""

    def write(self, value: str) -> str:
        return value


def lead_export_csv_lines(*, leads: QuerySet[Lead]) -> Iterator[str]:
    """The leads as CSV lines, header first, streamed a chunk of rows at a time.

    Reads the attributes once to learn their keys (the columns), then the rows.
    """
    leads = leads.order_by("pk")
    keys: dict[str, None] = {}
    for attributes in leads.values_list("attributes", flat=True).iterator(
        chunk_size=_ITERATOR_CHUNK
    ):
        keys.update(dict.fromkeys(attributes or {}))
    attribute_keys = [key for key in keys if key not in COLUMNS]
    writer = csv.writer(_Echo())
    yield writer.writerow(map(formula_escaped, [*COLUMNS, *attribute_keys]))
    for lead in leads.iterator(chunk_size=_ITERATOR_CHUNK):
        attributes = lead.attributes or {}
        yield writer.writerow(
            map(
                formula_escaped,
                [
                    lead.external_id,
                    lead.name,
                    "; ".join(lead.phones),
                    "; ".join(lead.emails),
                    str(lead.total_spend),
                    str(lead.visits),
                    lead.timezone,
                    "; ".join(lead.tags),
                    "yes" if lead.sms_opt_out else "no",
                    "yes" if lead.email_opt_out else "no",
                    *(_cell(attributes.get(key)) for key in attribute_keys),
                ],
            )
        )


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
