"""A prepared batch upserted: its rows find their leads (or new ones), two writes."""

import json
from decimal import Decimal

from django.db import connection, transaction

from crm.models import Lead, Organization, Suppression
from crm.services.lead_bulk import (
    lead_texts_insert,
    lead_values_insert,
    lead_values_update,
)
from crm.services.lead_import.leads import (
    UPDATED_FIELDS,
    ImportedLead,
    lead_text,
    lead_values,
    row_apply,
)
from crm.services.lead_import.prepared import Prepared
from crm.services.lead_import.report import ImportReport
from crm.services.lead_import.rows import Row
from crm.services.suppressions import NewSuppression, addresses_suppress

_TABLE = Lead._meta.db_table
_SPEND_AT = 1 + UPDATED_FIELDS.index("total_spend")  # in a record, after the id

_Index = dict[str, list[ImportedLead]]


def upsert_batch(
    organization: Organization, batch: Prepared, report: ImportReport
) -> None:
    """Apply the rows to the leads they find (or new ones): two reads, two writes."""
    if not batch.size:
        return
    existing = _existing_leads(organization, batch.keys)
    if not existing and batch.independent and batch.texts:
        with transaction.atomic():
            lead_texts_insert(
                organization_id=organization.pk,
                fields=UPDATED_FIELDS,
                texts=batch.texts,
            )
            _suppress_opted_out(organization, batch)
        report.created += batch.size
        batch.created = batch.size
        return
    before = {lead.pk: lead_values(lead) for lead in existing}
    created = _rows_applied(batch, existing, report)
    batch.created = len(created)
    changed = []
    for lead in existing:
        values = lead_values(lead)
        if values != before[lead.pk]:
            changed.append((lead.pk, *values))
    _write(organization, batch, created, changed)


def _rows_applied(
    batch: Prepared, existing: list[ImportedLead], report: ImportReport
) -> list[ImportedLead]:
    """Each row applied to the lead it finds, or a new one; the new ones."""
    by_external_id: dict[str, ImportedLead] = {}
    by_phone: _Index = {}
    by_email: _Index = {}
    for lead in existing:
        if lead.external_id:
            by_external_id[lead.external_id] = lead
        if lead.phone:
            by_phone.setdefault(lead.phone, []).append(lead)
        if lead.email:
            by_email.setdefault(lead.email, []).append(lead)
    created: list[ImportedLead] = []
    for i, row in enumerate(batch.rows()):
        lead = _match(row, by_external_id, by_phone, by_email)
        if lead is None:
            lead = ImportedLead()
            lead.text = batch.texts[i] if batch.texts else ""
            created.append(lead)
            report.created += 1
        else:
            lead.text = ""  # no longer what one row made of it, if it was new
            report.updated += 1
        row_apply(row, lead)
        # Later rows of the batch must find this lead by its new keys, first.
        if lead.external_id:
            by_external_id[lead.external_id] = lead
        if lead.phone:
            _put_first(by_phone, lead.phone, lead)
        if lead.email:
            _put_first(by_email, lead.email, lead)
    return created


def _write(
    organization: Organization,
    batch: Prepared,
    created: list[ImportedLead],
    changed: list[tuple],
) -> None:
    """Insert the new leads, update the changed ones and suppress the addresses
    of rows saying opted out, in one transaction."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            lead_texts_insert(
                organization_id=organization.pk,
                fields=UPDATED_FIELDS,
                texts=[lead.text or lead_text(lead_values(lead)) for lead in created],
            )
        else:
            lead_values_insert(
                organization_id=organization.pk,
                fields=UPDATED_FIELDS,
                values=[lead_values(lead) for lead in created],
            )
        lead_values_update(fields=UPDATED_FIELDS, values=changed)
        _suppress_opted_out(organization, batch)


def _suppress_opted_out(organization: Organization, batch: Prepared) -> None:
    """A row saying opted out adds its addresses to the suppression list (one
    INSERT a channel); a row saying not opted out never lifts one."""
    addresses_suppress(
        suppressions=[
            NewSuppression(
                organization_id=organization.pk,
                channel=channel,
                address=address,
                reason=Suppression.Reason.IMPORT,
                source="import",
            )
            for channel, addresses in batch.opted_out.items()
            for address in dict.fromkeys(addresses)
        ]
    )


def _existing_leads(
    organization: Organization, keys: dict[str, list[str]]
) -> list[ImportedLead]:
    if connection.vendor == "postgresql":
        return _existing_leads_postgres(organization, keys)
    found = set()
    for key, values in keys.items():
        if values:
            matches = organization.leads.filter(**{f"{key}__in": values})
            found.update(matches.exclude(**{key: ""}).values_list("pk", flat=True))
    if not found:
        return []
    # Oldest first, so of two leads sharing a phone the row finds the same one always.
    matches = organization.leads.filter(pk__in=found).order_by("pk")
    return [
        ImportedLead(*values) for values in matches.values_list("pk", *UPDATED_FIELDS)
    ]


def _existing_leads_postgres(
    organization: Organization, keys: dict[str, list[str]]
) -> list[ImportedLead]:
    # One probe of the key's index per value: given "key IN (1,000 values)" the
    # planner scans every lead once the table has some 50,000 (12 ms a key at
    # 50,000 leads against 1 ms); OFFSET 0 keeps it from flattening the lateral
    # join back into that. `key <> ''` lets the external id use its partial index.
    probes, params = [], []
    for key, values in keys.items():
        if values:
            column = connection.ops.quote_name(key)
            # The values go as one JSON text: psycopg quotes a text[] parameter
            # value by value in Python, ~3 ms a batch; json encodes it in C.
            probes.append(
                f"SELECT lead.id FROM jsonb_array_elements_text(%s::jsonb) "
                f"AS wanted(value) "
                f"CROSS JOIN LATERAL (SELECT id FROM {_TABLE} WHERE "
                f"organization_id = %s AND {column} = wanted.value AND {column} <> '' "
                f"OFFSET 0) AS lead"
            )
            params += [json.dumps(values), organization.pk]
    if not probes:
        return []
    # The leads found come back in the same round trip, as one JSON text: a single
    # json.loads in C instead of psycopg decoding each row and json.loads for each
    # of its four JSON fields (3.4 s per 100,000 updated rows). The amount goes as
    # text, to come back the exact Decimal. Oldest first, so of two leads sharing
    # a phone the row finds the same one always.
    fields = [
        f"lead.{connection.ops.quote_name(name)}"
        + ("::text" if name == "total_spend" else "")
        for name in ["id", *UPDATED_FIELDS]
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH found AS MATERIALIZED ({' UNION '.join(probes)}) "
            f"SELECT json_agg(json_build_array({', '.join(fields)}) "
            f"ORDER BY lead.id)::text FROM found CROSS JOIN LATERAL "
            f"(SELECT * FROM {_TABLE} WHERE id = found.id OFFSET 0) AS lead",
            params,
        )
        (text,) = cursor.fetchone()
    leads = []
    for record in json.loads(text) if text else ():
        record[_SPEND_AT] = Decimal(record[_SPEND_AT])
        leads.append(ImportedLead(*record))
    return leads


def _match(
    row: Row,
    by_external_id: dict[str, ImportedLead],
    by_phone: _Index,
    by_email: _Index,
) -> ImportedLead | None:
    if row.external_id and row.external_id in by_external_id:
        return by_external_id[row.external_id]
    for contacts, index, attribute in (
        (row.phones, by_phone, "phone"),
        (row.emails, by_email, "email"),
    ):
        if not contacts:
            continue
        for lead in index.get(contacts[0], ()):
            # The lead may have changed its primary contact earlier in the batch.
            if getattr(lead, attribute) != contacts[0]:
                continue
            if row.external_id and lead.external_id:
                continue
            return lead
    return None


def _put_first(index: _Index, key: str, lead: ImportedLead) -> None:
    leads = index.setdefault(key, [])
    if not leads or leads[0] is not lead:
        leads.insert(0, lead)
