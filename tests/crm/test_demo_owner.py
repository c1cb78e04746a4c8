"""The demo's owner: how someone who ran `make demo` signs in to see its data."""

import pytest
from django.test import Client

from crm.models import Membership
from crm.services.demo_data import demo_owner_ready
from tests.crm.factories import LeadFactory, MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def test_the_demo_owner_signs_in_to_the_admin_and_sees_the_demo_leads():
    # given the demo's organization with a lead
    demo = OrganizationFactory(slug="demo")
    lead = LeadFactory(organization=demo, name="Demo Lead")

    # when the demo readies its owner
    owner = demo_owner_ready(organization=demo)

    # then the printed name and password sign in, and the admin shows the lead
    browser = Client()
    assert browser.login(username=owner.username, password=owner.password)
    page = browser.get(f"/admin/crm/lead/{lead.pk}/change/")
    assert page.status_code == 200
    assert "Demo Lead" in page.content.decode()
    membership = Membership.objects.get(user__username="demo-owner")
    assert (membership.organization, membership.role) == (demo, "owner")


def test_each_demo_run_prints_a_new_password_for_the_same_owner():
    # given a demo run that readied its owner
    demo = OrganizationFactory(slug="demo")
    first = demo_owner_ready(organization=demo)

    # when the demo runs again
    second = demo_owner_ready(organization=demo)

    # then the same owner signs in with the new password, not the old one
    assert second.username == first.username
    assert second.password != first.password
    assert Client().login(username=second.username, password=second.password)
    assert not Client().login(username=first.username, password=first.password)
    assert Membership.objects.filter(user__username="demo-owner").count() == 1


def test_the_demo_leaves_a_same_named_user_of_another_organization_alone():
    # given a user named demo-owner in some other organization
    other = MembershipFactory(user__username="demo-owner")

    # when the demo readies its owner
    # then it refuses, and that user's password is unchanged
    with pytest.raises(ValueError, match="another organization"):
        demo_owner_ready(organization=OrganizationFactory(slug="demo"))
    assert Client().login(username="demo-owner", password="correct-horse-battery")
    assert other.organization.slug != "demo"
