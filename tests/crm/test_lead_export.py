"""Lead export to CSV (crm.services.lead_export): cells a spreadsheet cannot run."""

import csv
import io

import pytest

from crm.services.lead_export import lead_export_csv_lines
from crm.services.lead_import import lead_import_csv
from tests.crm.factories import LeadFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

FORMULAS = [
    '=HYPERLINK("http://x","y")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def export_text(organization) -> str:
    return "".join(lead_export_csv_lines(leads=organization.leads.all()))


def exported(organization) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(export_text(organization), newline="")))


@pytest.mark.parametrize("formula", FORMULAS)
def test_a_cell_a_spreadsheet_would_run_is_exported_as_text(organization, formula):
    # given a lead whose name, tag and attribute are formulas, with two phones and
    # a negative number
    LeadFactory(
        organization=organization,
        name=formula,
        tags=[formula],
        phones=["+12025550111", "+12025550112"],
        phone="+12025550111",
        attributes={"note": formula, "balance": -12.5},
    )

    # when the leads are exported
    (row,) = exported(organization)

    # then each formula starts with a single quote, so a spreadsheet shows text;
    # phones and numbers, which hold no formula, are written as they are
    assert row["name"] == "'" + formula
    assert row["tags"] == "'" + formula
    assert row["note"] == "'" + formula
    assert row["phones"] == "+12025550111; +12025550112"
    assert row["balance"] == "-12.5"


def test_an_exported_formula_imports_back_as_the_same_text(organization):
    # given leads whose text cells are formulas, or already start with a quote
    names = [*FORMULAS[:4], "'=already quoted", "'tis"]
    for i, name in enumerate(names):
        LeadFactory(
            organization=organization,
            external_id=f"x{i}",
            name=name,
            tags=[f"{name[0]}tag"],  # "|" and ";" separate tags on import
            attributes={"note": name, "balance": -3},
        )
    text = export_text(organization)
    other = OrganizationFactory()

    # when the export is imported into another organization
    report = lead_import_csv(organization=other, stream=io.StringIO(text, newline=""))

    # then the file held the formulas as text, and every lead reads back as it was
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [row["name"] for row in rows] == [
        *("'" + name for name in FORMULAS[:4]),
        "''=already quoted",
        "'tis",
    ]
    assert report.rejected == []

    def values(org):
        return sorted(
            org.leads.values_list("external_id", "name", "tags", "attributes")
        )

    assert values(other) == values(organization)
