"""Lead import from CSV (crm.services.lead_import) and `manage.py import_leads`."""

import gc
import io
import re
import tracemalloc
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from crm.models import Lead, Organization
from crm.services.demo_data import demo_leads_create, demo_leads_csv
from crm.services.lead_import import (
    ImportFileError,
    analyze,
    importer,
    lead_import_csv,
    read_ahead,
)
from tests.crm.factories import LeadFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def run_import(organization, text, **options):
    return lead_import_csv(
        organization=organization, stream=io.StringIO(text), **options
    )


def test_bad_rows_are_reported_by_line_and_the_rest_imported(organization):
    # given a file whose lines 3, 5, 6, 7 and 8 are bad in different ways
    text = (
        "external_id,name,phone,email,total_spend,visits\n"
        "A1,Ann,212 867 5309,ann@example.com,10.50,2\n"
        "A2,Bob,12ab,bob@example.com,1,1\n"
        "A3,Cy,,cy@example.com,,\n"
        "A4,Di,,di@@example.com,,\n"
        "A5,Ed,,ed@example.com,-3,\n"
        "A6,Flo,,flo@example.com,,2.5\n"
        ",Gus,,,,\n"
        'A7,Hal,,hal@example.com,"$1,250.00",7\n'
    )

    # when it is imported
    report = run_import(organization, text)

    # then the bad rows are reported with their line and reason, the rest are leads
    assert report.rejected == [
        (3, 'invalid phone "12ab": not a phone number'),
        (5, 'invalid email "di@@example.com": not an email address'),
        (6, 'invalid total_spend "-3": not a non-negative amount'),
        (7, 'invalid visits "2.5": not a non-negative whole number'),
        (8, "no identifier: the row needs an external id, phone or email"),
    ]
    assert (report.rows_read, report.created, report.updated) == (8, 3, 0)
    ann = organization.leads.get(external_id="A1")
    assert (ann.phone, ann.email, ann.total_spend, ann.visits) == (
        "+12128675309",
        "ann@example.com",
        Decimal("10.50"),
        2,
    )
    assert organization.leads.get(external_id="A7").total_spend == Decimal("1250.00")
    assert report.summary() == "created 3, updated 0, rejected 5"


def test_line_numbers_count_physical_lines_and_skip_blank_ones(organization):
    text = (
        "id,name,phone\n"
        'A1,"Ann\nSmith",212 867 5309\n'  # a quoted newline: lines 2 and 3
        "\n"
        "A2,Bob,12ab\n"
    )

    report = run_import(organization, text)

    assert report.rejected == [(5, 'invalid phone "12ab": not a phone number')]
    assert report.rows_read == 2


def test_reimporting_a_file_updates_leads_instead_of_duplicating_them(organization):
    text = "external_id,name,email,total_spend\nA1,Ann,ann@example.com,10\n"
    run_import(organization, text)

    report = run_import(organization, text.replace(",10", ",25"))

    assert (report.created, report.updated) == (0, 1)
    assert organization.leads.count() == 1
    assert organization.leads.get().total_spend == Decimal("25.00")


def test_a_row_without_external_id_finds_its_lead_by_primary_phone(organization):
    lead = LeadFactory(organization=organization, external_id="X9", phones=[])
    lead.set_contacts(phones=["+12128675309"], emails=["old@example.com"])
    lead.save()

    report = run_import(
        organization, "phone,email,visits\n(212) 867-5309,new@x.com,4\n"
    )

    lead.refresh_from_db()
    assert (report.created, report.updated) == (0, 1)
    assert lead.visits == 4
    assert lead.emails == ["new@x.com", "old@example.com"]


def test_a_row_with_only_an_email_finds_its_lead_by_primary_email(organization):
    lead = LeadFactory(organization=organization, emails=["ann@example.com"])

    report = run_import(organization, "email,name\nANN@example.com,Ann B\n")

    lead.refresh_from_db()
    assert report.updated == 1
    assert lead.name == "Ann B"


def test_a_new_external_id_claims_a_lead_that_has_none_by_phone(organization):
    lead = LeadFactory(organization=organization, external_id="")
    lead.set_contacts(phones=["+12128675309"], emails=[])
    lead.save()

    report = run_import(organization, "id,phone\nPOS-1,212 867 5309\n")

    lead.refresh_from_db()
    assert report.updated == 1
    assert lead.external_id == "POS-1"


def test_a_new_external_id_never_takes_over_another_external_ids_lead(organization):
    # given a lead of customer C1 with a phone a second customer shares
    LeadFactory(organization=organization, external_id="C1", phones=["+12128675309"])

    report = run_import(organization, "id,phone\nC2,212 867 5309\n")

    assert report.created == 1
    assert set(organization.leads.values_list("external_id", flat=True)) == {"C1", "C2"}


def test_multi_valued_cells_become_lists_with_the_first_as_primary(organization):
    text = 'id,phones,emails\nA1,"(212) 867-5309; +1 415 555 0199","b@y.com; a@x.com"\n'

    run_import(organization, text)

    lead = organization.leads.get()
    assert lead.phones == ["+12128675309", "+14155550199"]
    assert lead.emails == ["b@y.com", "a@x.com"]
    assert (lead.phone, lead.email) == ("+12128675309", "b@y.com")


def test_later_rows_for_the_same_lead_merge_within_and_across_batches(organization):
    # given three rows for one lead, the last in a later batch (batch size 2)
    text = (
        "id,phone,tags,visits,city\n"
        "A1,212 867 5309,vip,1,Boston\n"
        "A1,415 555 0199,newsletter,2,\n"
        "A1,,vip|lapsed,,Denver\n"
    )

    report = run_import(organization, text, batch_size=2)

    lead = organization.leads.get()
    assert (report.created, report.updated) == (1, 2)
    assert lead.phones == ["+14155550199", "+12128675309"]
    assert lead.tags == ["vip", "newsletter", "lapsed"]
    assert lead.visits == 2
    assert lead.attributes == {"city": "Denver"}


def test_new_leads_after_batches_of_updates_are_written_whole(organization):
    # given a file imported once, then again with new rows after the old ones
    old = "".join(f"E{i},N{i},n{i}@example.com,vip,{i}.50\n" for i in range(10))
    new = "".join(f"F{i},M{i},m{i}@example.com,new|vip,{i}\n" for i in range(10))
    header = "id,name,email,tags,spend\n"
    run_import(organization, header + old, batch_size=5)

    # when the second file is imported, its updates first (batches of 5)
    report = run_import(organization, header + old + new, batch_size=5)

    # then the new rows are leads with every value, the old ones unchanged
    assert (report.created, report.updated) == (10, 10)
    lead = organization.leads.get(external_id="F7")
    assert (lead.name, lead.emails, lead.tags, lead.total_spend) == (
        "M7",
        ["m7@example.com"],
        ["new", "vip"],
        Decimal("7.00"),
    )
    assert organization.leads.get(external_id="E3").total_spend == Decimal("3.50")
    assert organization.leads.count() == 20


def test_backslashes_tabs_and_newlines_in_values_are_kept(organization):
    text = 'id,name,note,tags\n"A\\1","Ann\tB\\","two\nlines\t\\x","a\\b"\n'

    run_import(organization, text)

    lead = organization.leads.get()
    assert (lead.external_id, lead.name) == ("A\\1", "Ann B\\")
    assert lead.attributes == {"note": "two\nlines\t\\x"}
    assert lead.tags == ["a\\b"]


def test_without_fork_the_batches_are_parsed_in_line(organization, monkeypatch):
    monkeypatch.setattr(read_ahead, "_FORK", False)
    text = "id,phone,tags\nA1,212 867 5309,vip\nA1,415 555 0199,\nB1,12ab,\n"

    report = run_import(organization, text, batch_size=1)

    assert (report.created, report.updated) == (1, 1)
    assert report.rejected == [(4, 'invalid phone "12ab": not a phone number')]
    lead = organization.leads.get()
    assert (lead.phones, lead.tags) == (["+14155550199", "+12128675309"], ["vip"])


def analyze_runs_during(action):
    """How many ANALYZE statements `action` ran on the lead table."""
    statements = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        action()
    return sum(sql.startswith("ANALYZE crm_lead") for sql in statements)


def rows_of_new_leads(count):
    return "id,name\n" + "".join(f"N{i},Lead {i}\n" for i in range(count))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="Postgres statistics")
def test_statistics_are_refreshed_as_a_small_table_grows(organization, monkeypatch):
    # given: an empty lead table, and a first refresh after 10 new leads
    monkeypatch.setattr(analyze, "ANALYZE_FIRST_AT", 10)
    text = rows_of_new_leads(200)

    # when: 200 new leads come in, 10 a batch
    runs = analyze_runs_during(lambda: run_import(organization, text, batch_size=10))

    # then: after 10, 40 and 160 of them, so the lookups' plans know the new leads
    assert runs == 3


@pytest.mark.skipif(connection.vendor != "postgresql", reason="Postgres statistics")
def test_statistics_of_a_big_table_are_refreshed_once(organization, monkeypatch):
    # given: 300 leads of another organization that the statistics know of
    demo_leads_create(organization=OrganizationFactory(slug="other"), count=300)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE crm_lead")
    monkeypatch.setattr(analyze, "ANALYZE_FIRST_AT", 10)
    text = rows_of_new_leads(200)

    # when: 200 new leads come in, 10 a batch
    runs = analyze_runs_during(lambda: run_import(organization, text, batch_size=10))

    # then: one refresh, for the new organization; the table has not doubled since
    assert runs == 1
    assert organization.leads.count() == 200


def test_rows_keyed_by_phone_in_one_batch_become_one_lead(organization):
    text = "phone,name\n212 867 5309,Ann\n(212) 867-5309,Ann Smith\n"

    report = run_import(organization, text)

    assert (report.created, report.updated) == (1, 1)
    assert organization.leads.get().name == "Ann Smith"


def test_empty_cells_keep_values_and_an_import_never_clears_an_opt_out(organization):
    LeadFactory(
        organization=organization,
        external_id="A1",
        name="Ann",
        visits=3,
        sms_opt_out=True,
    )

    run_import(organization, "id,name,visits,sms_opt_out\nA1,,,no\n")

    lead = organization.leads.get()
    assert (lead.name, lead.visits, lead.sms_opt_out) == ("Ann", 3, True)


def test_headers_are_case_insensitive_with_aliases_and_extra_columns_as_attributes(
    organization,
):
    text = (
        "Customer ID,First Name,Last Name,Mobile,E-mail,Spend,Visits,Time Zone,"
        "Tags,SMS Opt Out,Email_Opt_Out,Loyalty Tier,Points,Zip\n"
        "A1,Ann,Smith,212 867 5309,ann@x.com,12.345,3,america/chicago,"
        "vip; new |vip,yes,0,gold,120,02139\n"
    )

    report = run_import(organization, text)

    lead = organization.leads.get()
    assert report.rejected == []
    assert (lead.external_id, lead.name, lead.phone, lead.email) == (
        "A1",
        "Ann Smith",
        "+12128675309",
        "ann@x.com",
    )
    assert (lead.total_spend, lead.visits, lead.timezone) == (
        Decimal("12.35"),
        3,
        "America/Chicago",
    )
    assert lead.tags == ["vip", "new"]
    assert (lead.sms_opt_out, lead.email_opt_out) == (True, False)
    # numbers become JSON numbers for segment rules; a leading zero keeps a string
    assert lead.attributes == {"loyalty_tier": "gold", "points": 120, "zip": "02139"}


def test_a_semicolon_separated_file_is_read_too(organization):
    report = run_import(organization, "id;name;spend\nA1;Ann;3.50\n")

    assert report.created == 1
    assert organization.leads.get().total_spend == Decimal("3.50")


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("A1,Mars/Base,", 'invalid timezone "Mars/Base": not an IANA time zone'),
        ("A1,,maybe", 'invalid sms_opt_out "maybe": expected yes or no'),
        ("A1,,,extra", "has 4 fields, the header has 3"),
    ],
)
def test_other_invalid_values_reject_the_row(organization, row, reason):
    report = run_import(organization, f"id,timezone,sms_opt_out\n{row}\n")

    assert report.rejected[0][0] == 2
    assert report.rejected[0][1].startswith(reason)
    assert not organization.leads.exists()


def test_a_header_without_an_identifier_column_fails_the_file(organization):
    with pytest.raises(ImportFileError, match="no identifier column"):
        run_import(organization, "name,visits\nAnn,3\n")


def test_an_empty_file_fails(organization):
    with pytest.raises(ImportFileError, match="empty"):
        run_import(organization, "")


def test_the_import_command_reports_bad_rows_and_a_summary(tmp_path, capsys):
    # given a file with one bad row, for an organization that does not exist yet
    path = tmp_path / "leads.csv"
    path.write_text("id,phone\nA1,212 867 5309\nA2,12ab\n", encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()

    # when the command imports it
    call_command(
        "import_leads", str(path), "--org", "acme-shoes", stdout=out, stderr=err
    )

    # then the organization exists with its lead, the bad row went to stderr
    organization = Organization.objects.get(slug="acme-shoes")
    assert organization.name == "Acme Shoes"
    assert organization.leads.count() == 1
    assert err.getvalue() == 'line 3: invalid phone "12ab": not a phone number\n'
    assert re.fullmatch(
        r"created 1, updated 0, rejected 1 in \d+\.\d s \([\d,]+ rows/s\)\n",
        out.getvalue(),
    )


def test_the_import_command_reads_national_numbers_in_the_given_region(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_text("id,phone\nA1,020 7946 0958\n", encoding="utf-8")

    call_command(
        "import_leads", str(path), "--org", "uk", "--region", "GB", stdout=io.StringIO()
    )

    assert Lead.objects.get(organization__slug="uk").phone == "+442079460958"


def test_the_import_command_fails_clearly_on_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_leads", str(tmp_path / "nope.csv"), "--org", "acme")


def test_the_import_command_fails_clearly_on_an_undecodable_file(tmp_path):
    # given a Latin-1 file whose bad byte comes after a first, clean batch
    path = tmp_path / "leads.csv"
    rows = "".join(f"A{n},lead{n}@example.com\n" for n in range(2000))
    path.write_bytes(f"id,email\n{rows}B1,Jos\xe9@example.com\n".encode("latin-1"))

    # when it is imported as UTF-8
    with pytest.raises(CommandError) as caught:
        call_command(
            "import_leads",
            str(path),
            "--org",
            "acme",
            "--batch-size",
            "500",
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )

    # then the error says where and what to do; rows well before it were imported
    assert "cannot be decoded as utf-8-sig" in str(caught.value)
    assert "--encoding" in str(caught.value)
    assert Lead.objects.filter(organization__slug="acme").count() >= 1500


def test_the_import_command_reads_other_encodings_when_told(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_bytes("id,name\nA1,José\n".encode("cp1252"))

    call_command(
        "import_leads",
        str(path),
        "--org",
        "acme",
        "--encoding",
        "cp1252",
        stdout=io.StringIO(),
    )

    assert Lead.objects.get(organization__slug="acme").name == "José"


def _peak_import_memory(organization, path) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        with open(path, newline="", encoding="utf-8") as stream:
            lead_import_csv(organization=organization, stream=stream)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_import_memory_stays_flat_as_the_file_grows(tmp_path):
    # given files of 5,000 and 20,000 rows, imported into their own organizations
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    demo_leads_csv(path=small, count=5_000, seed=1)
    demo_leads_csv(path=large, count=20_000, seed=2)
    first = Organization.objects.create(name="Small", slug="small")
    second = Organization.objects.create(name="Large", slug="large")

    # when each is imported under tracemalloc
    small_peak = _peak_import_memory(first, small)
    large_peak = _peak_import_memory(second, large)

    # then four times the rows need nowhere near four times the memory
    assert second.leads.count() == 20_000
    assert large_peak < small_peak * 1.5, (small_peak, large_peak)


def test_a_database_error_mid_import_stops_the_parse_process(organization, monkeypatch):
    # given a file of three batches whose second batch fails to write
    import os

    text = "external_id,name\n" + "".join(f"E{i},N{i}\n" for i in range(30))
    written, children = [], []

    def failing(org, batch, report):
        if written:
            raise RuntimeError("database gone")
        written.append(len(batch.rows()))

    def fork():
        pid = real_fork()
        children.append(pid)
        return pid

    real_fork = os.fork
    monkeypatch.setattr(importer, "upsert_batch", failing)
    monkeypatch.setattr(os, "fork", fork)

    # when it is imported, then the error reaches the caller
    with pytest.raises(RuntimeError, match="database gone"):
        run_import(organization, text, batch_size=10)

    # and the parsing process is gone, reaped
    assert written == [10]
    assert len(children) == 1
    with pytest.raises(ChildProcessError):
        os.waitpid(children[0], os.WNOHANG)


def test_a_visits_cell_of_thousands_of_digits_rejects_its_line_only(organization):
    # given a row whose visits cell has 5,000 digits between two good rows
    text = (
        "email,visits\n"
        "ann@example.com,1\n"
        f"bob@example.com,{'9' * 5000}\n"
        "cy@example.com,2\n"
    )

    # when it is imported
    report = run_import(organization, text)

    # then that line is rejected with a short reason and the others are leads
    assert [line for line, _ in report.rejected] == [3]
    assert "not a non-negative whole number" in report.rejected[0][1]
    assert len(report.rejected[0][1]) < 100
    assert sorted(organization.leads.values_list("email", flat=True)) == [
        "ann@example.com",
        "cy@example.com",
    ]


@pytest.mark.parametrize("column", ["name", "id", "note", "tags"])
def test_a_nul_character_in_a_cell_rejects_its_line_only(organization, column):
    # given a row with a NUL character in one of its cells
    text = f"email,{column}\nann@example.com,a\x00b\ncy@example.com,ok\n"

    # when it is imported
    report = run_import(organization, text)

    # then that line is rejected, naming the column, and the other row is a lead
    assert report.rejected == [(2, f"{column} contains a NUL character")]
    assert list(organization.leads.values_list("email", flat=True)) == [
        "cy@example.com"
    ]


@pytest.mark.parametrize(
    ("column", "cell", "reason"),
    [
        ("name", "N" * 201, "longer than 200 characters"),
        ("note", "x" * 1001, "longer than 1000 characters"),
        ("tags", "t" * 65, "longer than 64 characters"),
        ("tags", "|".join(f"t{i}" for i in range(101)), "more than 100 tags"),
        ("emails", "; ".join(f"a{i}@x.com" for i in range(21)), "more than 20"),
    ],
)
def test_a_value_past_its_columns_bound_rejects_its_line(
    organization, column, cell, reason
):
    # given a row whose cell is longer, or lists more, than its column holds
    text = f'email,{column}\nann@example.com,"{cell}"\ncy@example.com,\n'

    # when it is imported
    report = run_import(organization, text)

    # then that line is rejected with the bound, and the other row is a lead
    assert [line for line, _ in report.rejected] == [2]
    assert reason in report.rejected[0][1]
    assert list(organization.leads.values_list("email", flat=True)) == [
        "cy@example.com"
    ]


def test_rejected_rows_are_kept_up_to_a_cap_and_all_counted(organization):
    # given a file of 2,500 rows without an identifier, then a good row
    text = "email,name\n" + "".join(f",N{i}\n" for i in range(2500))
    text += "ann@example.com,Ann\n"

    # when it is imported
    report = run_import(organization, text, batch_size=100)

    # then the first 1,000 rejected rows are kept by line, all 2,500 counted
    assert report.rejected_count == 2500
    assert [line for line, _ in report.rejected] == list(range(2, 1002))
    assert report.summary() == "created 1, updated 0, rejected 2500"
    assert organization.leads.get().email == "ann@example.com"
