"""Segment rules: a JSON rule tree checked against a field whitelist, compiled to a Q.

A rule is a group, ``{"and": [...]}``, ``{"or": [...]}`` or ``{"not": {...}}``, or a
leaf, ``{"field": "total_spend", "op": "gt", "value": 1000}``. Every leaf is true or
false for every lead, never unknown: a missing attribute is simply not equal to,
greater than or containing anything, so ``not`` is always the exact complement and
``ne`` always means ``not eq``.

Values never reach SQL as text: they pass the whitelist's type checks, then Django
lookups bind them as parameters.
"""

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import NotSupportedError
from django.db.models import BooleanField, CharField, F, Func, Q
from django.db.models.fields.json import compile_json_path
from django.db.models.lookups import Exact
from django.utils import timezone

# Bounds that keep one segment's SQL a reasonable size.
MAX_RULE_NODES = 200
MAX_LIST_VALUES = 1000
MAX_TEXT_LENGTH = 1000
MAX_DAYS = 36_500
# Every day between holds in any time zone as a UTC instant, as the database asks.
FIRST_DAY, LAST_DAY = "0001-01-02", "9999-12-30"

ATTRIBUTE_PREFIX = "attributes."
# Keys become Django lookup parts ("attributes__<key>__gt"), so "__" would split them
# and a leading digit would be read as an array index.
ATTRIBUTE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")

GROUP_OPS = ("and", "or", "not")
LEAF_KEYS = frozenset({"field", "op", "value"})


class RuleError(ValueError):
    """A rule tree that cannot be used, with the path of the node at fault."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


# --- Value types ----------------------------------------------------------------


class _BadValue(ValueError):
    """A value of the wrong type; the optional detail says more than the type does."""


@dataclass(frozen=True)
class ValueType:
    """What one op of one field takes: a description for people and a parser."""

    description: str
    plural: str
    parse: Callable[[Any], Any]


@dataclass(frozen=True)
class Moment:
    """A created_at bound: an instant, or a whole day [start, end) for a bare date."""

    start: datetime
    end: datetime | None = None

    @property
    def is_day(self) -> bool:
        return self.end is not None


def _is_number(value: Any) -> bool:
    # bool is an int in Python but never a number in a rule.
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _parse_number(value: Any) -> Decimal:
    if not _is_number(value):
        raise _BadValue
    return Decimal(str(value))


def _parse_whole_number(value: Any) -> int:
    if not _is_number(value) or value != int(value):
        raise _BadValue
    return int(value)


def _parse_json_number(value: Any) -> int | float:
    if not _is_number(value):
        raise _BadValue
    return value


def _parse_text(value: Any) -> str:
    if not isinstance(value, str):
        raise _BadValue
    if len(value) > MAX_TEXT_LENGTH:
        raise _BadValue(f"longer than {MAX_TEXT_LENGTH} characters")
    # Neither can be bound as a query parameter: Postgres text holds no NUL, and a
    # lone surrogate ("\ud800" in JSON) is not UTF-8.
    if "\x00" in value:
        raise _BadValue("holds a NUL character")
    if not value.isascii() and _shown(value) != value:
        raise _BadValue("holds a lone surrogate, which is not text")
    return value


def _parse_non_empty_text(value: Any) -> str:
    if _parse_text(value) == "":
        raise _BadValue
    return value


def _parse_boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _BadValue
    return value


def _parse_json_scalar(value: Any) -> str | int | float | bool:
    if isinstance(value, bool) or _is_number(value):
        return value
    return _parse_text(value)


def _parse_days(value: Any) -> int:
    days = _parse_whole_number(value)
    if not 1 <= days <= MAX_DAYS:
        raise _BadValue(f"not between 1 and {MAX_DAYS}")
    return days


def _parse_moment(value: Any) -> Moment:
    if not isinstance(value, str):
        raise _BadValue
    tz = timezone.get_default_timezone()
    try:
        moment = _moment(value, tz)
        # The database compares instants in UTC: each bound must exist there too
        # (9999-12-31 ends in year 10000; 0001-01-01T00:00+05:00 starts in year 0).
        for bound in (moment.start, moment.end):
            if bound is not None:
                bound.astimezone(UTC)
    except OverflowError:
        raise _BadValue(
            f"out of range: dates run from {FIRST_DAY} to {LAST_DAY}"
        ) from None
    return moment


def _moment(value: str, tz: tzinfo) -> Moment:
    # A bare date means that whole day in the project's time zone.
    if len(value) == 10:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise _BadValue from None
        start = datetime.combine(day, time.min, tzinfo=tz)
        return Moment(start=start, end=start + timedelta(days=1))
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise _BadValue from None
    if timezone.is_naive(instant):
        instant = timezone.make_aware(instant, tz)
    return Moment(start=instant)


NUMBER = ValueType("a number", "numbers", _parse_number)
WHOLE_NUMBER = ValueType("a whole number", "whole numbers", _parse_whole_number)
JSON_NUMBER = ValueType("a number", "numbers", _parse_json_number)
TEXT = ValueType("a string", "strings", _parse_text)
NON_EMPTY_TEXT = ValueType(
    "a non-empty string", "non-empty strings", _parse_non_empty_text
)
BOOLEAN = ValueType("true or false", "booleans", _parse_boolean)
JSON_SCALAR = ValueType(
    "a string, number or boolean", "strings, numbers or booleans", _parse_json_scalar
)
MOMENT = ValueType(
    "an ISO date (2024-05-01) or date-time (2024-05-01T09:30:00+02:00)",
    "ISO dates or date-times",
    _parse_moment,
)
DAYS = ValueType(f"a whole number of days from 1 to {MAX_DAYS}", "days", _parse_days)


# --- The whitelist --------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """One field rules may test: the ops it supports and the value each op takes.

    For ``in`` and ``between`` the value type is that of one element of the list.
    """

    name: str
    description: str
    ops: Mapping[str, ValueType]

    def describe(self, op: str) -> str:
        value_type = self.ops[op]
        if op == "in":
            return f"a non-empty list of {value_type.plural}"
        if op == "between":
            return f"[low, high], two {value_type.plural} with low <= high"
        return value_type.description


def _ops(value_type: ValueType, *names: str, **special: ValueType) -> dict:
    return {name: value_type for name in names} | special


_NUMERIC_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "between")
_TEXT_OPS = _ops(TEXT, "eq", "ne", "in", contains=NON_EMPTY_TEXT, exists=BOOLEAN)
_FLAG_OPS = _ops(BOOLEAN, "eq", "ne")

FIELDS: Mapping[str, FieldSpec] = {
    spec.name: spec
    for spec in [
        FieldSpec("total_spend", "Total spend", _ops(NUMBER, *_NUMERIC_OPS)),
        FieldSpec("visits", "Number of visits", _ops(WHOLE_NUMBER, *_NUMERIC_OPS)),
        FieldSpec("name", "Name", _TEXT_OPS),
        FieldSpec("email", "Primary email", _TEXT_OPS),
        FieldSpec("phone", "Primary phone, E.164", _TEXT_OPS),
        FieldSpec("external_id", "External id", _TEXT_OPS),
        FieldSpec("timezone", "Time zone name", _TEXT_OPS),
        FieldSpec(
            "tags",
            "Tags: contains one tag, in any of several, exists any tag at all",
            _ops(TEXT, "contains", "in", exists=BOOLEAN),
        ),
        FieldSpec(
            "created_at",
            "When the lead was added; a bare date is that whole day",
            _ops(
                MOMENT,
                "eq",
                "ne",
                "gt",
                "gte",
                "lt",
                "lte",
                "between",
                within_last_days=DAYS,
            ),
        ),
        FieldSpec("opted_out", "Opted out of SMS or email (either)", _FLAG_OPS),
        FieldSpec("sms_opt_out", "Opted out of SMS", _FLAG_OPS),
        FieldSpec("email_opt_out", "Opted out of email", _FLAG_OPS),
    ]
}

# The template of every attributes.<key> field; comparisons only match attributes
# of the value's JSON type (a string "5" is not greater than 4).
ATTRIBUTE_FIELD = FieldSpec(
    "attributes.<key>",
    "A free-form attribute; <key> is letters, digits, _ and -",
    _ops(
        JSON_SCALAR,
        "eq",
        "ne",
        "in",
        gt=JSON_NUMBER,
        gte=JSON_NUMBER,
        lt=JSON_NUMBER,
        lte=JSON_NUMBER,
        between=JSON_NUMBER,
        contains=NON_EMPTY_TEXT,
        exists=BOOLEAN,
    ),
)


def rule_catalog() -> list[dict[str, Any]]:
    """The whitelist as JSON-ready data, for the admin and the API to show."""
    return [
        {
            "field": spec.name,
            "description": spec.description,
            "ops": {op: spec.describe(op) for op in spec.ops},
        }
        for spec in [*FIELDS.values(), ATTRIBUTE_FIELD]
    ]


# --- Parsing --------------------------------------------------------------------


@dataclass(frozen=True)
class _Leaf:
    field: str
    attribute: str | None
    op: str
    value: Any


@dataclass(frozen=True)
class _Group:
    connector: str
    children: tuple["_Node", ...]


@dataclass(frozen=True)
class _Not:
    child: "_Node"


_Node = _Leaf | _Group | _Not


def _shown(text: str) -> str:
    """The text as UTF-8 can carry it: a lone surrogate escaped, "\\ud800"."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    text = _shown(text)
    return text if len(text) <= 60 else text[:57] + "..."


class _Parser:
    def __init__(self) -> None:
        self.max_depth = settings.CRM_SEGMENT_MAX_DEPTH
        self.nodes = 0

    def node(self, rule: Any, path: str, depth: int) -> _Node:
        if depth > self.max_depth:
            raise RuleError(path, f"rules nest deeper than {self.max_depth} levels")
        self.nodes += 1
        if self.nodes > MAX_RULE_NODES:
            raise RuleError(path, f"rules have more than {MAX_RULE_NODES} nodes")
        if not isinstance(rule, dict):
            raise RuleError(path, f"a rule must be an object, got {_show(rule)}")
        groups = [key for key in GROUP_OPS if key in rule]
        if groups:
            extra = sorted(set(rule) - {groups[0]})
            if extra:
                keys = ", ".join(_show(key) for key in extra)
                raise RuleError(
                    path, f'a "{groups[0]}" rule has no other keys, got {keys}'
                )
            return self.group(groups[0], rule[groups[0]], f"{path}.{groups[0]}", depth)
        return self.leaf(rule, path)

    def group(self, op: str, body: Any, path: str, depth: int) -> _Node:
        if op == "not":
            return _Not(self.node(body, path, depth + 1))
        if not isinstance(body, list) or not body:
            raise RuleError(
                path, f'"{op}" takes a non-empty list of rules, got {_show(body)}'
            )
        children = tuple(
            self.node(child, f"{path}[{index}]", depth + 1)
            for index, child in enumerate(body)
        )
        return _Group(op, children)

    def leaf(self, rule: dict, path: str) -> _Leaf:
        extra = sorted(set(rule) - LEAF_KEYS, key=str)
        if extra:
            raise RuleError(path, f"unexpected key {_show(extra[0])}")
        for key in ("field", "op", "value"):
            if key not in rule:
                raise RuleError(path, f'missing "{key}"')
        name, op, value = rule["field"], rule["op"], rule["value"]
        spec, attribute = self.field(name, f"{path}.field")
        if op not in spec.ops:
            supported = ", ".join(spec.ops)
            raise RuleError(
                f"{path}.op",
                f"{name} does not support {_show(op)}; it supports {supported}",
            )
        parsed = self.value(spec, name, op, value, f"{path}.value")
        return _Leaf(field=spec.name, attribute=attribute, op=op, value=parsed)

    def field(self, name: Any, path: str) -> tuple[FieldSpec, str | None]:
        if isinstance(name, str) and name in FIELDS:
            return FIELDS[name], None
        if isinstance(name, str) and name.startswith(ATTRIBUTE_PREFIX):
            key = name.removeprefix(ATTRIBUTE_PREFIX)
            if not ATTRIBUTE_KEY.fullmatch(key) or "__" in key:
                raise RuleError(
                    path,
                    f"attribute key {_show(key)} must start with a letter or _, hold "
                    "only letters, digits, _ and - (no __), and be at most 64 long",
                )
            return ATTRIBUTE_FIELD, key
        known = ", ".join([*FIELDS, ATTRIBUTE_FIELD.name])
        raise RuleError(path, f"unknown field {_show(name)}; fields are {known}")

    def value(self, spec: FieldSpec, name: str, op: str, value: Any, path: str) -> Any:
        value_type = spec.ops[op]

        def one(item: Any, item_path: str, expected: str) -> Any:
            try:
                return value_type.parse(item)
            except _BadValue as bad:
                detail = f" ({bad})" if str(bad) else ""
                raise RuleError(
                    item_path, f"{name} takes {expected}, got {_show(item)}{detail}"
                ) from None

        if op not in ("in", "between"):
            return one(value, path, value_type.description)
        shape = spec.describe(op)
        wanted = 2 if op == "between" else None
        if (
            not isinstance(value, list)
            or not value
            or (wanted is not None and len(value) != wanted)
        ):
            raise RuleError(path, f"{name} {op} takes {shape}, got {_show(value)}")
        if len(value) > MAX_LIST_VALUES:
            raise RuleError(path, f"{name} {op} takes at most {MAX_LIST_VALUES} values")
        items = [
            one(item, f"{path}[{index}]", value_type.description)
            for index, item in enumerate(value)
        ]
        if op == "between" and _sort_key(items[0]) > _sort_key(items[1]):
            raise RuleError(path, f"{name} {op} takes {shape}, got {_show(value)}")
        return tuple(items)


def _sort_key(value: Any) -> Any:
    return value.start if isinstance(value, Moment) else value


def _parse(rules: Any) -> _Node:
    return _Parser().node(rules, "rules", 1)


def validate_rules(rules: Any) -> None:
    """Raise RuleError naming the first node at fault unless the rule tree is usable."""
    _parse(rules)


# --- Compiling ------------------------------------------------------------------


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


def _leaf(leaf: _Leaf, now: datetime) -> Q:
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


def _compile(node: _Node, now: datetime) -> Q:
    if isinstance(node, _Leaf):
        return _leaf(node, now)
    if isinstance(node, _Not):
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
    return _compile(_parse(rules), now or timezone.now())
