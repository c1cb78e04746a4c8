"""Nurture steps keep the content bounds: refused when too long as written, and
a subject rendered too long is cut, so the step goes and the enrollment moves on."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from automations.models import Enrollment, NurtureStep
from automations.services.nurture import nurture_due, nurture_send_steps
from crm.models import Channel
from messaging.models import CommunicationLog
from tests.automations.factories import EnrollmentFactory, NurtureStepFactory

pytestmark = pytest.mark.django_db

LONG_NAME = "N" * 190
LONG_SUBJECT = "S" * 190 + " for {{name}}"  # 200 characters as written
SMS_LIMIT = 1600


def test_a_nurture_step_with_an_sms_template_too_long_is_refused():
    # given a step whose SMS template is 1,601 characters; when it is validated
    step = NurtureStep(
        position=1, channel=Channel.SMS, template="x" * (SMS_LIMIT + 1), subject=""
    )
    with pytest.raises(ValidationError) as error:
        step.clean()

    # then the template is named with the bound
    assert "1600" in error.value.message_dict["template"][0]


def test_a_nurture_step_whose_subject_renders_too_long_is_sent_cut():
    # given an email step with a 200-character subject naming a 190-character name
    step = NurtureStepFactory(
        position=1, channel=Channel.EMAIL, subject=LONG_SUBJECT, delay_minutes=0
    )
    enrollment = EnrollmentFactory(
        sequence=step.sequence, lead__name=LONG_NAME, next_run_at=timezone.now()
    )

    # when the nurture run sends due steps
    due = nurture_due(now=timezone.now())
    sent = sum(
        nurture_send_steps(org_id=org, jobs=jobs) for org, jobs in due.jobs.items()
    )

    # then the step went with its subject cut, and the enrollment moved on
    assert sent == 1
    log = CommunicationLog.objects.get()
    assert (len(log.subject), log.subject[-1]) == (255, "…")
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.COMPLETED
