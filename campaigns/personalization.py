"""Message templates: `{{placeholder}}` syntax, checked when saved, rendered per lead.

Rendering substitutes known values only: it runs no code and reaches no attribute
beyond the placeholders listed here, so a template is safe to take from a marketer.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

PLACEHOLDERS = {
    "name": "the lead's name, or “Customer”",
    "first_name": "the first word of the name, or “Customer”",
    "email": "the primary email",
    "phone": "the primary phone",
    "total_spend": "total spend, e.g. 5000 or 12.50 (0 if unknown)",
    "visits": "number of visits (0 if unknown)",
    "attributes.<key>": "a free-form attribute of the lead, empty if missing",
}
DEFAULT_NAME = "Customer"
_TOKEN = re.compile(r"\{\{|\}\}")
_NAME = re.compile(r"^\s*([a-z_]+(?:\.[A-Za-z0-9_\-]+)?)\s*$")
_SIMPLE = {"name", "first_name", "email", "phone", "total_spend", "visits"}


class TemplateError(ValueError):
    """The template cannot be rendered; the message says where and why."""


@dataclass(frozen=True)
class CompiledTemplate:
    """Literal text and placeholder names, alternating; literals at even positions."""

    parts: tuple[str, ...]

    @property
    def placeholders(self) -> tuple[str, ...]:
        return self.parts[1::2]


def compile_template(text: str) -> CompiledTemplate:
    """Parse and check a template, naming the first problem and its position."""
    parts, position = [], 0
    literal_start = 0
    while True:
        match = _TOKEN.search(text, position)
        if match is None:
            break
        if match.group() == "}}":
            raise TemplateError(f"unmatched '}}}}' at character {match.start() + 1}")
        closing = text.find("}}", match.end())
        reopening = text.find("{{", match.end())
        if closing == -1 or (reopening != -1 and reopening < closing):
            raise TemplateError(
                f"'{{{{' at character {match.start() + 1} is never closed"
            )
        inner = text[match.end() : closing]
        name = _placeholder_name(inner, at=match.start() + 1)
        parts.append(text[literal_start : match.start()])
        parts.append(name)
        position = literal_start = closing + 2
    parts.append(text[literal_start:])
    return CompiledTemplate(parts=tuple(parts))


def _placeholder_name(inner: str, *, at: int) -> str:
    match = _NAME.match(inner)
    if match is None:
        raise TemplateError(
            f"'{{{{{inner}}}}}' at character {at} is not a placeholder name"
        )
    name = match.group(1)
    if name in _SIMPLE or (name.startswith("attributes.") and len(name) > 11):
        return name
    known = ", ".join(f"{{{{{key}}}}}" for key in PLACEHOLDERS)
    raise TemplateError(
        f"unknown placeholder {{{{{name}}}}} at character {at}; known: {known}"
    )


def _name(lead) -> str:
    return (lead.name or "").strip() or DEFAULT_NAME


def _first_name(lead) -> str:
    name = (lead.name or "").strip()
    return name.split()[0] if name else DEFAULT_NAME


# How each simple placeholder reads a lead: only the ones a template uses are read.
_VALUE_OF: dict[str, Callable[[Any], str]] = {
    "name": _name,
    "first_name": _first_name,
    "email": lambda lead: lead.email or (lead.emails[0] if lead.emails else ""),
    "phone": lambda lead: lead.phone or (lead.phones[0] if lead.phones else ""),
    "total_spend": lambda lead: format_amount(lead.total_spend),
    "visits": lambda lead: str(lead.visits or 0),
}


def lead_values(lead) -> dict[str, str]:
    """The values a template can reach for one lead (any object with Lead's fields)."""
    return {name: value_of(lead) for name, value_of in _VALUE_OF.items()}


def render(template: CompiledTemplate, lead) -> str:
    return renderer(template)(lead)


def renderer(template: CompiledTemplate) -> Callable[[Any], str]:
    """`render` for one template, made once for a batch of leads.

    It reads only the placeholders the template has: rendering 1,000 leads with
    every value computed for each took a tenth of an expansion.
    """
    parts: list[str | Callable[[Any], str]] = []
    for index, part in enumerate(template.parts):
        if index % 2 == 0:
            if part:
                parts.append(part)
        elif part.startswith("attributes."):
            parts.append(_attribute(part[11:]))
        else:
            parts.append(_VALUE_OF[part])

    def render_one(lead) -> str:
        return "".join(part if type(part) is str else part(lead) for part in parts)

    return render_one


def _attribute(key: str) -> Callable[[Any], str]:
    def value_of(lead) -> str:
        value = (lead.attributes or {}).get(key, "")
        return "" if value is None else str(value)

    return value_of


def format_amount(amount) -> str:
    """5000.00 -> "5000", 12.5 -> "12.50", None -> "0"."""
    if amount is None:
        return "0"
    amount = Decimal(amount)
    if amount == amount.to_integral_value():
        return str(amount.quantize(Decimal(1)))
    return str(amount.quantize(Decimal("0.01")))
