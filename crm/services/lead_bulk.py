"""Bulk writes of leads: COPY on Postgres, bulk_create and bulk_update elsewhere."""

import json
from collections.abc import Callable, Sequence
from json.encoder import c_make_encoder, encode_basestring_ascii
from typing import Any

from django.db import connection
from django.utils import timezone

from crm.models import OPT_OUT_FIELDS, Lead

# On Postgres, COPY writes a batch several times faster than bulk_create and
# bulk_update, which spend most of their time adapting parameters in Python: a
# 100,000-row import takes 14 s with COPY against 26 s with them (of which Postgres
# itself, maintaining the lead table's nine indexes, takes about 4 s).
_TABLE = Lead._meta.db_table
_JSON_FIELDS = frozenset(
    f.attname
    for f in Lead._meta.concrete_fields
    if f.get_internal_type() == "JSONField"
)
INSERTED_FIELDS = [f.attname for f in Lead._meta.concrete_fields if not f.primary_key]


def leads_bulk_insert(*, leads: Sequence[Lead]) -> int:
    """Insert the (new, unsaved) leads; return how many. Ids are not set on them.

    created_at and updated_at are set to now, as saving would.
    """
    if not leads:
        return 0
    now = timezone.now()
    for lead in leads:
        lead.created_at = lead.updated_at = now
    if connection.vendor != "postgresql":
        return len(Lead.objects.bulk_create(leads))
    statement = f"COPY {_TABLE} ({_columns(INSERTED_FIELDS)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for lead in leads:
            copy.write_row(_values(lead, INSERTED_FIELDS))
    return len(leads)


def leads_bulk_update(*, leads: Sequence[Lead], fields: Sequence[str]) -> int:
    """Write `fields` of the (saved) leads, and updated_at = now; return how many."""
    if not leads:
        return 0
    now = timezone.now()
    for lead in leads:
        lead.updated_at = now
    names = [name for name in fields if name != "updated_at"] + ["updated_at"]
    if connection.vendor != "postgresql":
        return Lead.objects.bulk_update(leads, names)
    with connection.cursor() as cursor:
        _write_changed(
            cursor,
            written=["id", *names],
            rows=(_values(lead, ["id", *names]) for lead in leads),
        )
        return cursor.rowcount


def _columns(names: Sequence[str]) -> str:
    return ", ".join(map(connection.ops.quote_name, names))


def _values(lead: Lead, names: Sequence[str]) -> tuple:
    return tuple(
        json.dumps(getattr(lead, name)) if name in _JSON_FIELDS else getattr(lead, name)
        for name in names
    )


def lead_values_insert(
    *, organization_id: int, fields: Sequence[str], values: Sequence[Sequence[Any]]
) -> int:
    """Insert one new lead per tuple of `fields` values (JSON ones as Python values).

    The import's path: building a Lead instance per row costs more than all the rest
    of its write (6 s per 100,000 rows), so on Postgres tuples go straight to COPY.
    Other fields take their defaults; created_at and updated_at are now.
    """
    if not values:
        return 0
    if connection.vendor != "postgresql":
        return leads_bulk_insert(
            leads=[
                Lead(
                    organization_id=organization_id,
                    **dict(zip(fields, row, strict=True)),
                )
                for row in values
            ]
        )
    return lead_texts_insert(
        organization_id=organization_id,
        fields=fields,
        texts=list(map(lead_text_encoder(fields), values)),
    )


def lead_text_encoder(fields: Sequence[str]) -> Callable[[Sequence[Any]], str]:
    """A function from a tuple of `fields` values to that lead's line of COPY text.

    So that the text can be made where the values are, away from the connection
    (the import makes it in its parse process), and COPY takes whole batches as one
    string instead of adapting value by value.
    """
    kinds = [Lead._meta.get_field(name).get_internal_type() for name in fields]
    cells = tuple(_CELL_ENCODERS.get(kind, str) for kind in kinds)
    last = len(cells) - 1

    def encode(values: Sequence[Any]) -> str:
        texts = [cell(value) for cell, value in zip(cells, values, strict=True)]
        line = "\t".join(texts)
        if line.count("\t") != last or "\\" in line or "\n" in line or "\r" in line:
            line = "\t".join(map(_copy_escaped, texts))
        return line

    return encode


def lead_texts_insert(
    *, organization_id: int, fields: Sequence[str], texts: Sequence[str]
) -> int:
    """Insert one new lead per line of lead_text_encoder(fields) text (Postgres).

    Other fields take their defaults; created_at and updated_at are now.
    """
    if not texts:
        return 0
    now = timezone.now().isoformat()
    written = ["organization_id", "created_at", "updated_at", *fields]
    head = f"{organization_id}\t{now}\t{now}\t"
    statement = f"COPY {_TABLE} ({_columns(written)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(head + f"\n{head}".join(texts) + "\n")
    return len(texts)


def lead_values_update(
    *, fields: Sequence[str], values: Sequence[Sequence[Any]]
) -> int:
    """Write `fields` (and updated_at = now) of the leads whose id leads each tuple.

    An opt-out column is only ever set, never cleared: a lead opted out since its
    values were read stays opted out.

    Each tuple is (id, *values of fields), JSON ones as Python values; see
    lead_values_insert for why tuples rather than Lead instances.
    """
    if not values:
        return 0
    if connection.vendor != "postgresql":
        leads = [
            Lead(pk=row[0], **dict(zip(fields, row[1:], strict=True))) for row in values
        ]
        flags = [name for name in fields if name in OPT_OUT_FIELDS.values()]
        for flag in flags:
            Lead.objects.filter(
                pk__in=[lead.pk for lead in leads if getattr(lead, flag)]
            ).update(**{flag: True})
        others = [name for name in fields if name not in flags]
        return leads_bulk_update(leads=leads, fields=others)
    now = timezone.now()
    names = [name for name in fields if name != "updated_at"]
    encoders = _encoders(["id", *names])
    with connection.cursor() as cursor:
        _write_changed(
            cursor,
            written=["id", *names, "updated_at"],
            rows=(_encoded(row, encoders) + (now,) for row in values),
        )
        return cursor.rowcount


def _write_changed(cursor: Any, *, written: Sequence[str], rows: Any) -> None:
    """COPY the rows into the session's scratch table, then one UPDATE ... FROM it."""
    # The session's scratch table, made once with the lead table's column types.
    cursor.execute(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS lead_bulk_changed AS "
        f"SELECT * FROM {_TABLE} WITH NO DATA; TRUNCATE lead_bulk_changed"
    )
    with cursor.copy(
        f"COPY lead_bulk_changed ({_columns(written)}) FROM STDIN"
    ) as copy:
        write_row = copy.write_row
        for row in rows:
            write_row(row)
    assignments = ", ".join(map(_assignment, written[1:]))
    cursor.execute(
        f"UPDATE {_TABLE} SET {assignments} FROM lead_bulk_changed AS changed "
        f"WHERE {_TABLE}.id = changed.id"
    )


def _assignment(name: str) -> str:
    """`column = changed.column`; an opt-out may be set by a bulk write, never
    cleared: it keeps the row's own value OR the new one, in the same UPDATE."""
    column = connection.ops.quote_name(name)
    if name in OPT_OUT_FIELDS.values():
        return f"{column} = {_TABLE}.{column} OR changed.{column}"
    return f"{column} = changed.{column}"


def _json_encoder() -> Callable[[Any], str]:
    """json.dumps with default arguments, minus its per-call set-up.

    json.dumps builds a new C encoder on every call; for the import's 400,000 small
    lists and dicts per 100,000 rows that set-up costs more than the encoding. One
    encoder, made with the arguments JSONEncoder passes it by default (save the
    circular-reference check: values read from CSV or from jsonb cannot be circular)
    gives the same text. Python builds without the C encoder keep json.dumps.
    """
    if c_make_encoder is None:
        return json.dumps
    defaults = json.JSONEncoder()
    encode = c_make_encoder(
        None,
        defaults.default,
        encode_basestring_ascii,
        None,
        defaults.key_separator,
        defaults.item_separator,
        False,
        False,
        True,
    )
    return lambda value: "".join(encode(value, 0))


_dumps = _json_encoder()


def _json_cell(value: Any) -> str:
    # Most lists of an import are empty: no encoder for those.
    return _dumps(value) if value or type(value) is not list else "[]"


# COPY's text form of each kind of field the import writes; others go through str().
_CELL_ENCODERS: dict[str, Callable[[Any], str]] = {
    "JSONField": _json_cell,
    "BooleanField": lambda value: "t" if value else "f",
}
_COPY_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))


def _copy_escaped(text: str) -> str:
    for special, escaped in _COPY_ESCAPES:
        text = text.replace(special, escaped)
    return text


def _encoders(fields: Sequence[str]) -> tuple[int, ...]:
    """The positions of the JSON fields among `fields`."""
    return tuple(i for i, name in enumerate(fields) if name in _JSON_FIELDS)


def _encoded(row: Sequence[Any], encoders: tuple[int, ...]) -> tuple:
    values = list(row)
    for i in encoders:
        values[i] = _json_cell(values[i])
    return tuple(values)
