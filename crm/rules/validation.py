"""A rule tree checked against the whitelist, each fault named by its node's path."""

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from crm.rules.fields import (
    ATTRIBUTE_FIELD,
    ATTRIBUTE_KEY,
    ATTRIBUTE_PREFIX,
    FIELDS,
    FieldSpec,
)
from crm.rules.values import BadValue, Moment, utf8_shown

# Bounds that keep one segment's SQL a reasonable size.
MAX_RULE_NODES = 200
MAX_LIST_VALUES = 1000

GROUP_OPS = ("and", "or", "not")
LEAF_KEYS = frozenset({"field", "op", "value"})


class RuleError(ValueError):
    """A rule tree that cannot be used, with the path of the node at fault."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class Leaf:
    field: str
    attribute: str | None
    op: str
    value: Any


@dataclass(frozen=True)
class Group:
    connector: str
    children: tuple["Node", ...]


@dataclass(frozen=True)
class Not:
    child: "Node"


Node = Leaf | Group | Not


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    text = utf8_shown(text)
    return text if len(text) <= 60 else text[:57] + "..."


class _Parser:
    def __init__(self) -> None:
        self.max_depth = settings.CRM_SEGMENT_MAX_DEPTH
        self.nodes = 0

    def node(self, rule: Any, path: str, depth: int) -> Node:
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

    def group(self, op: str, body: Any, path: str, depth: int) -> Node:
        if op == "not":
            return Not(self.node(body, path, depth + 1))
        if not isinstance(body, list) or not body:
            raise RuleError(
                path, f'"{op}" takes a non-empty list of rules, got {_show(body)}'
            )
        children = tuple(
            self.node(child, f"{path}[{index}]", depth + 1)
            for index, child in enumerate(body)
        )
        return Group(op, children)

    def leaf(self, rule: dict, path: str) -> Leaf:
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
        return Leaf(field=spec.name, attribute=attribute, op=op, value=parsed)

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
            except BadValue as bad:
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


def parse_rules(rules: Any) -> Node:
    """The rule tree as nodes; RuleError names the first node at fault."""
    return _Parser().node(rules, "rules", 1)


def validate_rules(rules: Any) -> None:
    """Raise RuleError naming the first node at fault unless the rule tree is usable."""
    parse_rules(rules)
