"""Demo data (crm.services.demo_data) and `manage.py seed_demo`."""

import io

import phonenumbers
import pytest
from django.core.management import call_command

from crm.models import Lead, Organization
from crm.services.demo_data import demo_leads_create, demo_leads_csv, demo_people
from crm.services.lead_import import lead_import_csv

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_the_leads_in_a_new_organization():
    out = io.StringIO()

    call_command("seed_demo", "--leads", "300", "--org", "demo-shop", stdout=out)

    organization = Organization.objects.get(slug="demo-shop")
    assert organization.leads.count() == 300
    assert out.getvalue().startswith("created 300 leads in demo-shop")


def test_demo_leads_have_valid_e164_phones_in_step_with_their_lists(organization):
    demo_leads_create(organization=organization, count=2000, seed=3)

    for phones, phone, emails, email in organization.leads.values_list(
        "phones", "phone", "emails", "email"
    ):
        assert phone == (phones[0] if phones else "")
        assert email == (emails[0] if emails else "")
        for number in phones:
            assert phonenumbers.is_valid_number(phonenumbers.parse(number))
            assert number.startswith("+1")


def test_demo_leads_include_the_awkward_cases_in_realistic_shares(organization):
    demo_leads_create(organization=organization, count=4000, seed=5)
    leads = organization.leads

    without_phone = leads.filter(phone="").count() / 4000
    bad_or_no_email = sum(
        1 for email in leads.values_list("email", flat=True) if "." not in email[-5:]
    )

    assert 0.03 < without_phone < 0.07
    assert 0.015 < bad_or_no_email / 4000 < 0.045
    assert leads.filter(sms_opt_out=True).exists()
    assert leads.filter(email_opt_out=True).exists()
    assert leads.exclude(tags=[]).exists()
    assert not leads.filter(timezone="").exists()


def test_the_same_seed_makes_the_same_people():
    first = [(p.first_name, p.phones, p.emails) for p in demo_people(count=50, seed=9)]
    again = [(p.first_name, p.phones, p.emails) for p in demo_people(count=50, seed=9)]
    other = [(p.first_name, p.phones, p.emails) for p in demo_people(count=50, seed=8)]

    assert first == again
    assert first != other


def test_a_demo_csv_imports_every_good_row_and_rejects_exactly_the_bad_ones(
    organization, tmp_path
):
    # given a demo file of 3,000 good rows and 12 deliberately bad ones
    path = tmp_path / "leads.csv"
    written = demo_leads_csv(path=path, count=3000, seed=4, bad_rows=12)

    # when it is imported
    with open(path, newline="", encoding="utf-8") as stream:
        report = lead_import_csv(organization=organization, stream=stream)

    # then each good row is a new lead and each bad one is reported by its line
    assert written.rows == report.rows_read == 3012
    assert report.created == 3000
    assert [line for line, _ in report.rejected] == written.bad_lines
    assert Lead.objects.filter(organization=organization).count() == 3000
