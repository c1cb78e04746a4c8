"""A validated rule tree compiled to a Q over Lead; values bound as parameters."""

import json
from datetime import datetime, timedelta
from typing import Any

from django.db import NotSupportedError
from django.db.models import BooleanField, CharField, F, Func, Q
from django.db.models.fields.json import compile_json_path
from django.db.models.lookups import Exact
from django.utils import timezone

from crm.rules.validation import Leaf, Node, Not, parse_rules
from crm.rules.values import Moment


class AttributeType(Func):
    """The JSON type of one attribute, the same names on every backend.

    One of string, number, boolean, null, array, object, or missing when the lead has
    no such key; never NULL, so a comparison guarded by it is never unknown.
    """

    output_field = CharField()

    def __init__(self, key: str) -> None:
        super().__init__(F("attributes"))
        self.key = key

    def as_sql(self, compiler, connection, **extra_context):
        raise NotSupportedError(
            f"attribute rules are not supported on {connection.vendor}"
        )

    def as_postgresql(self, compiler, connection, **extra_context):
        column, params = compiler.compile(self.source_expressions[0])
        sql = f"COALESCE(JSONB_TYPEOF({column} -> %s), 'missing')"
        return sql, (*params, self.key)

    def as_sqlite(self, compiler, connection, **extra_context):
        column, params = compiler.compile(self.source_expressions[0])
        path = compile_json_path([self.key])
        sql = (
            f"COALESCE(CASE JSON_TYPE({column}, %s)"
            " WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number'"
            " WHEN 'text' THEN 'string'"
            " WHEN 'true' THEN 'boolean' WHEN 'false' THEN 'boolean'"
            f" ELSE JSON_TYPE({column}, %s) END, 'missing')"
        )
        return sql, (*params, path, *params, path)


class HasTag(Func):
    """Whether the lead's tags list holds one tag (exact, case-sensitive)."""

    output_field = BooleanField()

    def __init__(self, tag: str) -> None:
        super().__init__(F("tags"))
        self.tag = tag

    def as_sql(self, compiler, connection, **extra_context):
        raise NotSupportedError(f"tag rules are not supported on {connection.vendor}")

    def as_postgresql(self, compiler, connection, **extra_context):
        column, params = compiler.compile(self.source_expressions[0])
        return f"({column} @> %s::jsonb)", (*params, json.dumps([self.tag]))

    def as_sqlite(self, compiler, connection, **extra_context):
        # SQLite has no JSON containment operator; json_each walks the array.
        column, params = compiler.compile(self.source_expressions[0])
        sql = f"EXISTS (SELECT 1 FROM JSON_EACH({column}) AS tag WHERE tag.value = %s)"
        return sql, (*params, self.tag)


def _any(conditions: list[Q]) -> Q:
    combined = conditions[0]
    for condition in conditions[1:]:
        combined |= condition
    return combined


def _column(column: str, op: str, value: Any) -> Q:
    if op == "eq":
        return Q(**{column: value})
    if op == "ne":
        return ~Q(**{column: value})
    if op in ("gt", "gte", "lt", "lte", "in"):
        return Q(**{f"{column}__{op}": list(value) if op == "in" else value})
    if op == "between":
        return Q(**{f"{column}__gte": value[0], f"{column}__lte": value[1]})
    if op == "contains":
        return Q(**{f"{column}__icontains": value})
    if op == "exists":
        return ~Q(**{column: ""}) if value else Q(**{column: ""})
    raise AssertionError(op)


def _after(moment: Moment) -> Q:
    if moment.is_day:
        return Q(created_at__gte=moment.end)
    return Q(created_at__gt=moment.start)


def _until(moment: Moment) -> Q:
    if moment.is_day:
        return Q(created_at__lt=moment.end)
    return Q(created_at__lte=moment.start)


def _created_at(op: str, value: Any, now: datetime) -> Q:
    if op in ("eq", "ne"):
        if value.is_day:
            on = Q(created_at__gte=value.start, created_at__lt=value.end)
        else:
            on = Q(created_at=value.start)
        return on if op == "eq" else ~on
    if op == "gt":
        return _after(value)
    if op == "gte":
        return Q(created_at__gte=value.start)
    if op == "lt":
        return Q(created_at__lt=value.start)
    if op == "lte":
        return _until(value)
    if op == "between":
        return Q(created_at__gte=value[0].start) & _until(value[1])
    if op == "within_last_days":
        return Q(created_at__gte=now - timedelta(days=value))
    raise AssertionError(op)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return "string" if isinstance(value, str) else "number"


def _attribute(key: str, op: str, value: Any) -> Q:
    def of_type(json_type: str) -> Q:
        return Q(Exact(AttributeType(key), json_type))

    def lookup(name: str, operand: Any) -> Q:
        return Q(**{f"attributes__{key}__{name}": operand})

    def equals(operand: Any) -> Q:
        return of_type(_json_type(operand)) & lookup("exact", operand)

    if op == "eq":
        return equals(value)
    if op == "ne":
        return ~equals(value)
    if op == "in":
        return _any([equals(item) for item in value])
    if op in ("gt", "gte", "lt", "lte"):
        return of_type("number") & lookup(op, value)
    if op == "between":
        return of_type("number") & lookup("gte", value[0]) & lookup("lte", value[1])
    if op == "contains":
        return of_type("string") & lookup("icontains", value)
    if op == "exists":
        missing = of_type("missing")
        return ~missing if value else missing
    raise AssertionError(op)


def _leaf(leaf: Leaf, now: datetime) -> Q:
    op, value = leaf.op, leaf.value
    if leaf.attribute is not None:
        return _attribute(leaf.attribute, op, value)
    if leaf.field == "tags":
        if op == "exists":
            return ~Q(tags=[]) if value else Q(tags=[])
        tags = [value] if op == "contains" else value
        return _any([Q(HasTag(tag)) for tag in tags])
    if leaf.field == "created_at":
        return _created_at(op, value, now)
    if leaf.field == "opted_out":
        opted_out = value if op == "eq" else not value
        if opted_out:
            return Q(sms_opt_out=True) | Q(email_opt_out=True)
        return Q(sms_opt_out=False, email_opt_out=False)
    return _column(leaf.field, op, value)


def _compile(node: Node, now: datetime) -> Q:
    if isinstance(node, Leaf):
        return _leaf(node, now)
    if isinstance(node, Not):
        return ~_compile(node.child, now)
    children = [_compile(child, now) for child in node.children]
    if node.connector == "or":
        return _any(children)
    combined = children[0]
    for child in children[1:]:
        combined &= child
    return combined


def compile_rules(rules: Any, *, now: datetime | None = None) -> Q:
    """Validate a rule tree and compile it to a Q over Lead.

    ``now`` anchors within_last_days; it defaults to the current time.
    """
    return _compile(parse_rules(rules), now or timezone.now())
