"""The automations' models and the constraints the jobs rely on."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from automations.models import Enrollment, NurtureStep
from crm.models import Channel
from tests.automations.factories import EnrollmentFactory, NurtureSequenceFactory

pytestmark = pytest.mark.django_db


def test_a_lead_is_active_in_a_sequence_only_once():
    enrollment = EnrollmentFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        EnrollmentFactory(lead=enrollment.lead, sequence=enrollment.sequence)


def test_a_lead_may_enroll_again_after_leaving():
    enrollment = EnrollmentFactory(status=Enrollment.Status.EXITED)

    again = EnrollmentFactory(lead=enrollment.lead, sequence=enrollment.sequence)

    assert again.status == Enrollment.Status.ACTIVE


def test_a_step_with_a_broken_template_or_no_email_subject_does_not_validate():
    step = NurtureStep(
        sequence=NurtureSequenceFactory(),
        position=1,
        channel=Channel.EMAIL,
        template="Hi {{nmae}}",
    )

    with pytest.raises(ValidationError) as error:
        step.full_clean()

    assert set(error.value.message_dict) == {"template", "subject"}
