"""Templates: checked when saved, rendered per lead, never running code."""

import re
from decimal import Decimal

import pytest

from campaigns.personalization import TemplateError, compile_template, render
from crm.models import Lead

EXAMPLE = (
    "Hi {{name}}, you have spent ${{total_spend}} and visited {{visits}} times. "
    "Get 10% off!"
)


def make_lead(**fields) -> Lead:
    defaults = {"name": "John Doe", "total_spend": Decimal("5000"), "visits": 3}
    return Lead(**{**defaults, **fields})


def test_the_example_template_renders_a_leads_name_spend_and_visits():
    rendered = render(compile_template(EXAMPLE), make_lead())

    assert rendered == (
        "Hi John Doe, you have spent $5000 and visited 3 times. Get 10% off!"
    )


def test_missing_values_fall_back_to_defaults():
    lead = make_lead(name="", total_spend=None, visits=None)

    rendered = render(compile_template(EXAMPLE), lead)

    assert rendered.startswith("Hi Customer, you have spent $0 and visited 0 times")


def test_contact_first_name_and_attribute_placeholders_render_a_missing_one_empty():
    lead = make_lead(
        phones=["+12025550100", "+12025550101"],
        phone="+12025550100",
        emails=["a@example.com"],
        email="a@example.com",
        attributes={"plan": "gold"},
    )
    template = compile_template(
        "{{first_name}} {{phone}} {{email}} {{ attributes.plan }}|{{attributes.none}}|"
    )

    assert render(template, lead) == "John +12025550100 a@example.com gold||"


def test_cents_are_kept_when_spend_is_not_whole():
    rendered = render(compile_template("{{total_spend}}"), make_lead(total_spend=12.5))

    assert rendered == "12.50"


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("Hi {{nmae}}", "unknown placeholder {{nmae}} at character 4"),
        ("Hi {{name}", "'{{' at character 4 is never closed"),
        ("Hi {{name {{visits}}", "'{{' at character 4 is never closed"),
        ("Hi name}}", "unmatched '}}' at character 8"),
        ("Hi {{}}", "'{{}}' at character 4 is not a placeholder name"),
        ("{{name.__class__}}", "unknown placeholder {{name.__class__}}"),
        ("{{lead.name}}", "unknown placeholder {{lead.name}}"),
    ],
)
def test_bad_templates_are_rejected_with_the_reason(template, reason):
    with pytest.raises(TemplateError, match=re.escape(reason)):
        compile_template(template)


def test_unknown_placeholder_error_lists_the_known_ones():
    with pytest.raises(TemplateError, match=r"known: \{\{name\}\}"):
        compile_template("{{nmae}}")


def test_single_braces_are_plain_text():
    assert render(compile_template("{not a placeholder}"), make_lead()) == (
        "{not a placeholder}"
    )
