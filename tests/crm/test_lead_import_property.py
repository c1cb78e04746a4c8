"""Any bytes given to the lead importer: rows imported or rejected by line, no crash."""

import io

import pytest
from hypothesis import HealthCheck, given, settings

from crm.services.lead_import import ImportFileError, lead_import_csv
from tests.support.csv_strategies import any_csv_bytes

pytestmark = pytest.mark.django_db


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=any_csv_bytes)
def test_any_bytes_are_imported_or_rejected_by_line_never_a_crash(organization, data):
    # given any bytes as a UTF-8 CSV file
    stream = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")
    leads_before = organization.leads.count()  # examples share the organization

    # when they are imported
    try:
        report = lead_import_csv(organization=organization, stream=stream, batch_size=3)
    except ImportFileError as error:  # the file as a whole: no header, not UTF-8
        report = error.report
        assert str(error) and "\x00" not in str(error)

    # then every row read was imported or rejected with its line and a reason
    assert report.created + report.updated + report.rejected_count == report.rows_read
    lines = [line for line, _ in report.rejected]
    assert lines == sorted(set(lines)) and all(line >= 2 for line in lines)
    assert all(reason and "\x00" not in reason for _, reason in report.rejected)
    assert organization.leads.count() - leads_before == report.created
