"""A parsed batch prepared for writing where it was parsed: keys, COPY texts, rows."""

import itertools
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field

from crm.models import Channel
from crm.services.lead_import.leads import ImportedLead, lead_values, row_apply
from crm.services.lead_import.reading import Batch
from crm.services.lead_import.rows import Row, row_fields


@dataclass(slots=True)
class Prepared:
    """A parsed batch, with what writing it needs worked out where it was parsed.

    `keys` are the rows' lookup keys by column, each once; `texts` each row's lead,
    were it new, as COPY text (Postgres only, else empty); `independent` says no
    two rows share a key. So when the lookup finds no lead, each row of an
    independent batch is a new lead exactly as its text says, and the rows
    themselves, kept pickled, are never unpickled: the usual case of new leads.
    `opted_out` holds, by channel, the addresses of rows saying opted out: the
    import suppresses them.
    """

    rows_read: int
    rejected: list[tuple[int, str]]
    size: int
    keys: dict[str, list[str]]
    texts: list[str]
    independent: bool
    pickled_rows: bytes
    opted_out: dict[str, list[str]] = field(default_factory=dict)
    created: int = 0  # how many new leads it made, once written

    def rows(self) -> list[Row]:
        return list(itertools.starmap(Row, pickle.loads(self.pickled_rows)))


def prepared(batch: Batch, text: Callable[[tuple], str] | None) -> Prepared:
    """The batch prepared; `text` encodes a new lead's COPY text, if one is wanted."""
    rows = batch.rows
    present = {
        "external_id": [row.external_id for row in rows if row.external_id],
        "phone": [row.phones[0] for row in rows if row.phones],
        "email": [row.emails[0] for row in rows if row.emails],
    }
    keys = {column: list(dict.fromkeys(values)) for column, values in present.items()}
    opted_out = {
        Channel.SMS: [phone for row in rows if row.sms_opt_out for phone in row.phones],
        Channel.EMAIL: [
            email for row in rows if row.email_opt_out for email in row.emails
        ],
    }
    texts = []
    if text:
        for row in rows:
            lead = ImportedLead()
            row_apply(row, lead)
            texts.append(text(lead_values(lead)))
    return Prepared(
        rows_read=batch.rows_read,
        rejected=batch.rejected,
        size=len(rows),
        keys=keys,
        texts=texts,
        independent=all(len(keys[c]) == len(present[c]) for c in present),
        pickled_rows=pickle.dumps(
            list(map(row_fields, rows)), protocol=pickle.HIGHEST_PROTOCOL
        ),
        opted_out={channel: found for channel, found in opted_out.items() if found},
    )
