"""Members see and change only their organization's rows; operators see all."""

import pytest
from django.urls import reverse

from crm.models import Membership
from tests.crm.factories import LeadFactory, MembershipFactory, UserFactory
from tests.support.campaigns import launched_campaign, logs_for

pytestmark = pytest.mark.django_db


def test_a_member_lists_only_their_organizations_leads(
    member_client, organization, other_organization
):
    mine = LeadFactory(organization=organization, name="Mine Person")
    LeadFactory(organization=other_organization, name="Other Person")

    response = member_client.get(reverse("admin:crm_lead_changelist"))

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [mine]
    assert "Other Person" not in response.content.decode()


def test_a_member_cannot_open_another_organizations_campaign(
    member_client, other_organization
):
    theirs = launched_campaign(other_organization)

    response = member_client.get(
        reverse("admin:campaigns_campaign_change", args=[theirs.pk])
    )

    # The admin answers an object outside the queryset as missing.
    assert response.status_code == 302
    assert response.url == reverse("admin:index")


def test_a_member_sees_only_their_messages(
    member_client, organization, other_organization
):
    mine = logs_for(launched_campaign(organization), statuses={"delivered": 2})
    logs_for(launched_campaign(other_organization), statuses={"delivered": 3})

    response = member_client.get(reverse("admin:messaging_communicationlog_changelist"))

    assert {log.pk for log in response.context["cl"].result_list} == {
        log.pk for log in mine
    }


def test_an_operator_sees_every_organization(
    operator_client, organization, other_organization
):
    LeadFactory(organization=organization)
    LeadFactory(organization=other_organization)

    response = operator_client.get(reverse("admin:crm_lead_changelist"))

    assert len(response.context["cl"].result_list) == 2


def test_the_organization_field_is_fixed_for_a_member(member_client, organization):
    response = member_client.get(reverse("admin:crm_segment_add"))

    field = response.context["adminform"].form.fields["organization"]
    assert field.disabled
    assert list(field.queryset) == [organization]


def test_a_viewer_may_look_but_not_add(client, organization):
    viewer = MembershipFactory(
        organization=organization,
        user=UserFactory(is_staff=True),
        role=Membership.Role.VIEWER,
    ).user
    client.force_login(viewer)

    assert client.get(reverse("admin:crm_lead_changelist")).status_code == 200
    assert client.get(reverse("admin:crm_lead_add")).status_code == 403


def test_staff_without_membership_see_no_crm_rows(client, organization):
    LeadFactory(organization=organization)
    client.force_login(UserFactory(is_staff=True))

    response = client.get(reverse("admin:crm_lead_changelist"))

    assert response.status_code == 403
