"""manage.py create_organization: an operator onboards a new tenant in one command."""

import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from crm.models import Membership, Organization
from tests.crm.factories import OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "plum-orchard-41-lantern"


@pytest.fixture
def password_file(tmp_path):
    path = tmp_path / "password"
    path.write_text(PASSWORD + "\n")
    return path


def create(*args: str) -> str:
    out = StringIO()
    call_command("create_organization", *args, stdout=out)
    return out.getvalue()


def test_create_organization_makes_an_owner_who_signs_in_and_a_working_token(
    password_file,
):
    # given nothing but the command
    # when an operator onboards Acme Dental
    out = create(
        "Acme Dental",
        "--owner",
        "alice",
        "--email",
        "alice@example.com",
        "--password-file",
        str(password_file),
    )

    # then the organization exists with alice as its owner
    organization = Organization.objects.get(slug="acme-dental")
    membership = Membership.objects.get(user__username="alice")
    assert membership.organization == organization
    assert membership.role == Membership.Role.OWNER

    # and alice signs in to the admin with the password from the file
    browser = Client()
    assert browser.login(username="alice", password=PASSWORD)
    assert browser.get("/admin/").status_code == 200
    assert browser.get("/admin/crm/lead/").status_code == 200

    # and the printed token calls the API as alice, in Acme Dental
    (token,) = re.findall(r"^API token: (\w+)$", out, flags=re.MULTILINE)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    created = api.post(
        "/api/leads", {"name": "Bo", "phones": ["+12025550100"]}, format="json"
    )
    assert created.status_code == 201, created.json()
    assert organization.leads.get().name == "Bo"


def test_create_organization_asks_for_the_password_in_a_terminal(monkeypatch):
    # given an operator at a terminal, typing the password twice
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt: PASSWORD)

    # when they onboard an organization without a password file
    create("Bright Smiles", "--owner", "bea")

    # then the owner signs in with what they typed
    assert Client().login(username="bea", password=PASSWORD)


def test_create_organization_refuses_two_different_passwords(monkeypatch):
    # given an operator who mistypes the second password
    answers = iter([PASSWORD, PASSWORD + "x"])
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))

    # when they onboard an organization
    # then nothing is created
    with pytest.raises(CommandError, match="the two passwords differ"):
        create("Bright Smiles", "--owner", "bea")
    assert not Organization.objects.filter(slug="bright-smiles").exists()


def test_create_organization_without_a_password_source_says_how_to_give_one(
    monkeypatch,
):
    # given no terminal (a script) and no password file
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)

    # when the command runs
    # then it says how to give the password, and creates nothing
    with pytest.raises(CommandError, match="--password-file"):
        create("Acme", "--owner", "alice")
    assert not Organization.objects.exists()


def test_create_organization_twice_is_a_clear_error_and_changes_nothing(
    password_file,
):
    # given Acme Dental, onboarded once
    create("Acme Dental", "--owner", "alice", "--password-file", str(password_file))

    # when the same organization is created again, with another owner
    # then the command says it exists, and no second owner appears
    with pytest.raises(CommandError, match='organization "acme dental".*exists'):
        create("acme dental", "--owner", "bob", "--password-file", str(password_file))
    assert not get_user_model().objects.filter(username="bob").exists()
    assert Organization.objects.count() == 1


def test_create_organization_for_a_taken_username_is_a_clear_error(password_file):
    # given a user alice already (in another organization)
    UserFactory(username="alice")
    OrganizationFactory(slug="elsewhere")

    # when a new organization names alice as its owner
    # then the command says the user exists, and no organization is left behind
    with pytest.raises(CommandError, match='username: a user "alice" exists'):
        create("Acme", "--owner", "alice", "--password-file", str(password_file))
    assert not Organization.objects.filter(slug="acme").exists()


def test_create_organization_refuses_a_weak_password_with_the_reasons(tmp_path):
    # given a password file holding a common, short password
    weak = tmp_path / "weak"
    weak.write_text("12345\n")

    # when an organization is onboarded with it
    # then the command gives the validators' reasons and creates nothing
    with pytest.raises(CommandError, match="password: .*too short"):
        create("Acme", "--owner", "alice", "--password-file", str(weak))
    assert not Organization.objects.exists()
    assert not get_user_model().objects.filter(username="alice").exists()
