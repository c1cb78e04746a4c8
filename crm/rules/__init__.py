"""Segment rules: a JSON rule tree checked against a field whitelist, compiled to a Q.

A rule is a group, ``{"and": [...]}``, ``{"or": [...]}`` or ``{"not": {...}}``, or a
leaf, ``{"field": "total_spend", "op": "gt", "value": 1000}``. Every leaf is true or
false for every lead, never unknown: a missing attribute is simply not equal to,
greater than or containing anything, so ``not`` is always the exact complement and
``ne`` always means ``not eq``.

Values never reach SQL as text: they pass the whitelist's type checks, then Django
lookups bind them as parameters.

The package's interface is below; its modules are values (value types and their
parsers), fields (the whitelist and its catalog), validation (the tree checked, with
paths) and compiler (the tree as a Q).
"""

from crm.rules.compiler import compile_rules
from crm.rules.fields import ATTRIBUTE_FIELD, FIELDS, FieldSpec, rule_catalog
from crm.rules.validation import RuleError, validate_rules
from crm.rules.values import MAX_TEXT_LENGTH

__all__ = [
    "ATTRIBUTE_FIELD",
    "FIELDS",
    "MAX_TEXT_LENGTH",
    "FieldSpec",
    "RuleError",
    "compile_rules",
    "rule_catalog",
    "validate_rules",
]
