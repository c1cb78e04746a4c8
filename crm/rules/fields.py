"""The whitelist: the fields a rule may test, their ops and the values those take."""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crm.rules.values import (
    BOOLEAN,
    DAYS,
    JSON_NUMBER,
    JSON_SCALAR,
    MOMENT,
    NON_EMPTY_TEXT,
    NUMBER,
    TEXT,
    WHOLE_NUMBER,
    ValueType,
)

ATTRIBUTE_PREFIX = "attributes."
# Keys become Django lookup parts ("attributes__<key>__gt"), so "__" would split them
# and a leading digit would be read as an array index.
ATTRIBUTE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")


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
    """The whitelist as JSON-ready data, for the admin and the API to show.

    `inputs` names, per op, the kind of value input a form offers (number, text,
    boolean, date or scalar); for ``in`` it is a list's items', for ``between``
    each bound's.
    """
    return [
        {
            "field": spec.name,
            "description": spec.description,
            "ops": {op: spec.describe(op) for op in spec.ops},
            "inputs": {op: value_type.kind for op, value_type in spec.ops.items()},
        }
        for spec in [*FIELDS.values(), ATTRIBUTE_FIELD]
    ]
