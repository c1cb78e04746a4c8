"""Nurture sequences: steps delivered with their delays, and ways out of a sequence."""

import datetime as dt

import pytest
from django.utils import timezone

from automations.models import Enrollment
from automations.services.nurture import (
    EnrollmentError,
    enrollment_create,
    enrollment_exit,
    enrollments_create_for_segment,
    nurture_due,
    nurture_send_steps,
)
from crm.models import Channel
from messaging.models import CommunicationLog, LogStatus
from tests.automations.factories import NurtureSequenceFactory, NurtureStepFactory
from tests.crm.factories import LeadFactory, SegmentFactory

pytestmark = pytest.mark.django_db

TICK = dt.timedelta(minutes=5)  # the periodic task's crontab: */5


def advance() -> int:
    """One run of the periodic task and the step jobs it hands out."""
    result = nurture_due(now=timezone.now())
    return sum(
        nurture_send_steps(org_id=org, jobs=jobs) for org, jobs in result.jobs.items()
    )


def run_for(clock, duration: dt.timedelta, *, tick: dt.timedelta = TICK) -> None:
    end = timezone.now() + duration
    while timezone.now() < end:
        clock.shift(tick)
        advance()


def steps_sent(enrollment: Enrollment) -> list[tuple[str, dt.datetime]]:
    logs = CommunicationLog.objects.filter(
        dedupe_key__startswith=f"enr{enrollment.pk}-"
    ).order_by("created_at")
    return [(log.dedupe_key.split("-")[1], log.created_at) for log in logs]


@pytest.fixture
def three_steps():
    sequence = NurtureSequenceFactory()
    NurtureStepFactory(
        sequence=sequence,
        position=1,
        delay_minutes=10,
        template="Welcome {{first_name}}!",
    )
    NurtureStepFactory(
        sequence=sequence, position=2, delay_minutes=24 * 60, template="Day two"
    )
    NurtureStepFactory(
        sequence=sequence,
        position=3,
        delay_minutes=3 * 24 * 60,
        channel=Channel.EMAIL,
        subject="Last one, {{first_name}}",
        template="See you, {{name}}",
    )
    return sequence


def test_a_three_step_sequence_is_delivered_with_its_delays_then_completes(
    clock, three_steps
):
    lead = LeadFactory(organization=three_steps.organization, name="Ada Lovelace")
    enrollment = enrollment_create(sequence=three_steps, lead=lead)
    enrolled_at = timezone.now()

    run_for(clock, dt.timedelta(days=5))

    sent = steps_sent(enrollment)
    assert [step for step, _ in sent] == ["s1", "s2", "s3"]
    # Each step goes at the first tick once its delay after the previous is over.
    assert sent[0][1] == enrolled_at + dt.timedelta(minutes=10)
    assert sent[1][1] == sent[0][1] + dt.timedelta(days=1)
    assert sent[2][1] == sent[1][1] + dt.timedelta(days=3)
    logs = CommunicationLog.objects.filter(lead=lead).order_by("created_at")
    # A nurture email is marketing: it ends with the lead's unsubscribe link.
    assert [log.body.split("\n\n--\n")[0] for log in logs] == [
        "Welcome Ada!",
        "Day two",
        "See you, Ada Lovelace",
    ]
    assert logs[2].body.split("\n\n--\n")[1].startswith("To stop these emails: ")
    assert "\n--\n" not in logs[0].body + logs[1].body
    assert (logs[2].channel, logs[2].recipient, logs[2].subject) == (
        Channel.EMAIL,
        lead.email,
        "Last one, Ada",
    )
    assert {log.status for log in logs} == {LogStatus.PENDING}
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.COMPLETED
    assert (enrollment.current_step, enrollment.next_run_at) == (3, None)


def test_an_opt_out_stops_the_sequence(clock, three_steps):
    lead = LeadFactory(organization=three_steps.organization)
    enrollment = enrollment_create(sequence=three_steps, lead=lead)
    run_for(clock, dt.timedelta(minutes=30))
    assert [step for step, _ in steps_sent(enrollment)] == ["s1"]

    lead.sms_opt_out = True
    lead.save()
    run_for(clock, dt.timedelta(days=5), tick=dt.timedelta(hours=1))

    assert [step for step, _ in steps_sent(enrollment)] == ["s1"]
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.EXITED
    assert enrollment.exit_reason == Enrollment.ExitReason.OPTED_OUT


def test_a_lead_taken_out_by_hand_gets_nothing_more(clock, three_steps):
    lead = LeadFactory(organization=three_steps.organization)
    enrollment = enrollment_create(sequence=three_steps, lead=lead)
    run_for(clock, dt.timedelta(minutes=15))

    enrollment_exit(enrollment=enrollment, reason=Enrollment.ExitReason.CONVERTED)
    run_for(clock, dt.timedelta(days=5), tick=dt.timedelta(hours=1))

    assert [step for step, _ in steps_sent(enrollment)] == ["s1"]
    assert enrollment.status == Enrollment.Status.EXITED
    with pytest.raises(EnrollmentError):
        enrollment_exit(enrollment=enrollment, reason=Enrollment.ExitReason.MANUAL)


def test_a_doubled_advance_sends_each_step_once(clock, three_steps):
    lead = LeadFactory(organization=three_steps.organization)
    enrollment = enrollment_create(sequence=three_steps, lead=lead)
    clock.shift(dt.timedelta(minutes=10))

    first = nurture_due(now=timezone.now())
    second = nurture_due(now=timezone.now())
    sent = [
        nurture_send_steps(org_id=org, jobs=jobs)
        for result in (first, second)
        for org, jobs in result.jobs.items()
    ]

    assert sent == [1, 0]
    assert [step for step, _ in steps_sent(enrollment)] == ["s1"]


def test_the_step_job_carries_the_documented_payload(clock, three_steps):
    lead = LeadFactory(organization=three_steps.organization, name="Ada Lovelace")
    enrollment = enrollment_create(sequence=three_steps, lead=lead)
    clock.shift(dt.timedelta(minutes=10))

    [job] = nurture_due(now=timezone.now()).jobs[three_steps.organization_id]

    assert {
        key: job[key] for key in ("org_id", "contact_id", "sequence_step", "template")
    } == {
        "org_id": three_steps.organization_id,
        "contact_id": lead.pk,
        "sequence_step": 1,
        "template": "Welcome {{first_name}}!",
    }
    assert job["enrollment_id"] == enrollment.pk
    assert job["personalization"]["name"] == "Ada Lovelace"


def test_a_whole_segment_is_enrolled_once(clock, three_steps):
    organization = three_steps.organization
    leads = LeadFactory.create_batch(5, organization=organization, visits=10)
    LeadFactory(organization=organization, visits=0)
    segment = SegmentFactory(
        organization=organization, rules={"field": "visits", "op": "gte", "value": 5}
    )
    enrollment_create(sequence=three_steps, lead=leads[0])

    created = enrollments_create_for_segment(sequence=three_steps, segment=segment)
    again = enrollments_create_for_segment(sequence=three_steps, segment=segment)

    assert (created, again) == (4, 0)
    enrolled = Enrollment.objects.filter(sequence=three_steps)
    assert set(enrolled.values_list("lead_id", flat=True)) == {
        lead.pk for lead in leads
    }
    assert {e.next_run_at for e in enrolled[1:]} == {
        timezone.now() + dt.timedelta(minutes=10)
    }


def test_a_lead_of_another_organization_cannot_enroll(three_steps):
    with pytest.raises(EnrollmentError):
        enrollment_create(sequence=three_steps, lead=LeadFactory())
