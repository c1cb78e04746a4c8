"""A column map: a file's own headers translated to what the importer reads."""

import io

import pytest

from api.models import LeadImport
from api.selectors import lead_import_last_column_map
from crm.models import Lead
from crm.services.lead_import import (
    ImportFileError,
    column_map_error,
    column_target,
    lead_import_csv,
)
from tests.crm.factories import OrganizationFactory

pytestmark = pytest.mark.django_db

TEXT = (
    "Kundennummer;Handy;Mail;Lieblingstee;Notiz;Telefon\n"
    "k1;+1 202 555 0101;ann@example.com;green;call after 5;x\n"
    "k2;+1 202 555 0102;;black;;\n"
)
COLUMN_MAP = {
    "Kundennummer": "external_id",
    "Handy": "phones",
    "Mail": "emails",
    "Lieblingstee": "attr:Favourite tea",
    "Notiz": "ignore",
}


def test_a_file_with_unknown_headers_imports_through_a_map(organization):
    # When a file whose headers the importer does not know is imported with a map
    report = lead_import_csv(
        organization=organization, stream=io.StringIO(TEXT), column_map=COLUMN_MAP
    )

    # Then each column lands where the map says; one it does not name keeps its name
    assert (report.created, report.rejected_count) == (2, 0)
    ann = Lead.objects.get(external_id="k1")
    assert ann.phones == ["+12025550101"] and ann.emails == ["ann@example.com"]
    assert ann.attributes == {"favourite_tea": "green", "telefon": "x"}


def test_without_a_map_the_same_file_has_no_identifier(organization):
    with pytest.raises(ImportFileError, match="no identifier column"):
        lead_import_csv(organization=organization, stream=io.StringIO(TEXT))


def test_a_map_can_ignore_a_column_the_importer_would_read(organization):
    text = "email,phone\nann@example.com,12\n"

    report = lead_import_csv(
        organization=organization,
        stream=io.StringIO(text),
        column_map={"phone": "ignore"},
    )

    # the bad phone is not read, so the row is not rejected
    assert (report.created, report.rejected_count) == (1, 0)
    assert Lead.objects.get().phones == []


def test_headers_get_the_targets_the_importer_gives_them_by_name():
    assert column_target("E-Mail") == "emails"
    assert column_target("Mobile Phone") == "phones"
    assert column_target("Favourite Tea") == "attr:favourite_tea"
    assert column_target(" -- ") == "ignore"


def test_a_map_to_an_unknown_target_is_refused():
    assert column_map_error(COLUMN_MAP) is None
    assert "unknown target" in column_map_error({"Salary": "salary"})
    assert "unknown target" in column_map_error({"Salary": "attr: "})


def test_the_organizations_last_mapping_is_remembered(organization):
    # Given two mapped imports, an unmapped one after them, another org's latest
    LeadImport.objects.create(organization=organization, column_map={"A": "emails"})
    LeadImport.objects.create(organization=organization, column_map=COLUMN_MAP)
    LeadImport.objects.create(organization=organization)
    LeadImport.objects.create(
        organization=OrganizationFactory(), column_map={"B": "phones"}
    )

    # Then the map offered next is the organization's latest one
    assert lead_import_last_column_map(organization=organization) == COLUMN_MAP
