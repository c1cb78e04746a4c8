"""Nurture sequences: enroll leads, send each step when due, leave when it is over.

The periodic advance finds enrollments whose next step is due and hands them to
step jobs; a step job sends the step and moves the enrollment on in one transaction,
only if the enrollment still waits for exactly that step. So a doubled advance, or a
redelivered job, sends nothing twice (the log's dedupe key names enrollment and step
as well), and a lost job is found again by the next advance.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from automations.models import Enrollment, NurtureSequence, NurtureStep
from automations.services.outbox import (
    lead_message,
    sequence_dispatch_id,
)
from campaigns.personalization import compile_template, format_amount, render
from crm.models import Lead, Segment
from crm.selectors import segment_leads
from messaging.services.logs import NewLog
from messaging.services.outbound import messages_queue
from messaging.sql import insert_ignoring_conflicts

# Enrollments advanced per run of the periodic task; the rest wait for the next.
ADVANCE_BATCH_SIZE = 500
_ENROLL_COLUMNS = (
    "organization_id",
    "lead_id",
    "sequence_id",
    "status",
    "current_step",
    "next_run_at",
    "exit_reason",
    "enrolled_at",
    "updated_at",
)


class EnrollmentError(Exception):
    """The lead cannot be enrolled, or the enrollment cannot change as asked."""


def enrollment_create(*, sequence: NurtureSequence, lead: Lead) -> Enrollment:
    """Enroll the lead; its first step is due after the first step's delay."""
    if lead.organization_id != sequence.organization_id:
        raise EnrollmentError("the lead belongs to another organization")
    first = sequence.steps.order_by("position").first()
    if first is None:
        raise EnrollmentError(f"{sequence} has no steps")
    if Enrollment.objects.filter(
        lead=lead, sequence=sequence, status=Enrollment.Status.ACTIVE
    ).exists():
        raise EnrollmentError(f"{lead} is already in {sequence}")
    return Enrollment.objects.create(
        organization_id=sequence.organization_id,
        lead=lead,
        sequence=sequence,
        next_run_at=timezone.now() + first.delay,
    )


def enrollments_create_for_segment(
    *, sequence: NurtureSequence, segment: Segment
) -> int:
    """Enroll every lead of the segment not already in the sequence; return how many.

    One INSERT per page; the partial unique index (one active enrollment per lead)
    makes a lead already enrolled, or a second run, insert nothing.
    """
    if segment.organization_id != sequence.organization_id:
        raise EnrollmentError("the segment belongs to another organization")
    first = sequence.steps.order_by("position").first()
    if first is None:
        raise EnrollmentError(f"{sequence} has no steps")
    next_run_at = timezone.now() + first.delay
    already = Enrollment.objects.filter(
        sequence=sequence, status=Enrollment.Status.ACTIVE
    ).values_list("lead_id", flat=True)
    lead_ids = (
        segment_leads(segment=segment)
        .exclude(pk__in=already)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    created = 0
    page: list[int] = []
    for lead_id in lead_ids.iterator(chunk_size=2000):
        page.append(lead_id)
        if len(page) == 2000:
            created += _enroll_page(sequence, page, next_run_at)
            page = []
    if page:
        created += _enroll_page(sequence, page, next_run_at)
    return created


def _enroll_page(sequence, lead_ids: list[int], next_run_at: datetime) -> int:
    now = timezone.now()
    rows = [
        (
            sequence.organization_id,
            lead_id,
            sequence.pk,
            Enrollment.Status.ACTIVE,
            0,
            next_run_at,
            "",
            now,
            now,
        )
        for lead_id in lead_ids
    ]
    inserted = insert_ignoring_conflicts(
        table=Enrollment._meta.db_table,
        columns=_ENROLL_COLUMNS,
        rows=rows,
        returning="id",
    )
    return len(inserted)


def enrollment_exit(*, enrollment: Enrollment, reason: str) -> Enrollment:
    """Take the lead out of the sequence (by hand, on conversion, on opt-out)."""
    if reason not in Enrollment.ExitReason.values:
        raise EnrollmentError(f"unknown exit reason {reason!r}")
    updated = Enrollment.objects.filter(
        pk=enrollment.pk, status=Enrollment.Status.ACTIVE
    ).update(
        status=Enrollment.Status.EXITED,
        exit_reason=reason,
        next_run_at=None,
        finished_at=timezone.now(),
        updated_at=timezone.now(),
    )
    if not updated:
        raise EnrollmentError(f"the enrollment is already {enrollment.status}")
    enrollment.refresh_from_db()
    return enrollment


def lead_personalization(lead: Lead) -> dict:
    """What a step's template may use, as JSON primitives for the job."""
    return {
        "name": lead.name,
        "email": lead.email,
        "phone": lead.phone,
        "total_spend": format_amount(lead.total_spend),
        "visits": lead.visits,
        "attributes": lead.attributes or {},
    }


@dataclass
class _Personalized:
    """The lead fields `render` reads, rebuilt from a job's personalization."""

    name: str = ""
    email: str = ""
    phone: str = ""
    total_spend: str = "0"
    visits: int = 0
    attributes: dict = field(default_factory=dict)
    emails: list = field(default_factory=list)
    phones: list = field(default_factory=list)


@dataclass(frozen=True)
class AdvanceResult:
    jobs: dict[int, list[dict]]
    completed: int


def nurture_due(*, now: datetime, limit: int = ADVANCE_BATCH_SIZE) -> AdvanceResult:
    """Step jobs for enrollments due at `now`, by organization id.

    A job: {org_id, contact_id, enrollment_id, sequence_step, channel, subject,
    template, personalization}. An enrollment past its sequence's last step (steps
    removed since) is completed here instead.
    """
    due = list(
        Enrollment.objects.filter(
            status=Enrollment.Status.ACTIVE,
            next_run_at__lte=now,
            sequence__is_active=True,
        )
        .select_related("lead")
        .order_by("next_run_at", "pk")[:limit]
    )
    steps = {
        (step.sequence_id, step.position): step
        for step in NurtureStep.objects.filter(
            sequence_id__in={enrollment.sequence_id for enrollment in due}
        )
    }
    jobs: dict[int, list[dict]] = {}
    finished = []
    for enrollment in due:
        step = _next_step(steps, enrollment)
        if step is None:
            finished.append(enrollment.pk)
            continue
        jobs.setdefault(enrollment.organization_id, []).append(
            {
                "org_id": enrollment.organization_id,
                "contact_id": enrollment.lead_id,
                "enrollment_id": enrollment.pk,
                "sequence_step": step.position,
                "channel": step.channel,
                "subject": step.subject,
                "template": step.template,
                "personalization": lead_personalization(enrollment.lead),
            }
        )
    completed = Enrollment.objects.filter(
        pk__in=finished, status=Enrollment.Status.ACTIVE
    ).update(
        status=Enrollment.Status.COMPLETED,
        next_run_at=None,
        finished_at=now,
        updated_at=now,
    )
    return AdvanceResult(jobs=jobs, completed=completed)


def _next_step(steps: dict, enrollment: Enrollment) -> NurtureStep | None:
    """The first step after the current one (positions may have gaps)."""
    later = [
        step
        for (sequence_id, position), step in steps.items()
        if sequence_id == enrollment.sequence_id and position > enrollment.current_step
    ]
    return min(later, key=lambda step: step.position) if later else None


def nurture_send_steps(*, org_id: int, jobs: list[dict]) -> int:
    """Send each job's step and move its enrollment on; return how many were sent.

    An enrollment that no longer waits for that step (moved on, exited) is left
    alone. A lead opted out of the step's channel leaves the sequence instead.
    """
    now = timezone.now()
    sent = 0
    with transaction.atomic():
        enrollments = (
            Enrollment.objects.select_for_update(of=("self",))
            .select_related("lead")
            .filter(
                pk__in=[job["enrollment_id"] for job in jobs],
                organization_id=org_id,
                status=Enrollment.Status.ACTIVE,
            )
            .order_by("pk")
            .in_bulk()
        )
        steps = {
            (step.sequence_id, step.position): step
            for step in NurtureStep.objects.filter(
                sequence_id__in={e.sequence_id for e in enrollments.values()}
            )
        }
        by_sequence: dict[tuple[int, str], list] = {}
        for job in jobs:
            enrollment = enrollments.get(job["enrollment_id"])
            if enrollment is None:
                continue
            step = _next_step(steps, enrollment)
            if step is None or step.position != job["sequence_step"]:
                continue
            if enrollment.lead.is_opted_out(job["channel"]):
                _finish(enrollment, now, exit_reason=Enrollment.ExitReason.OPTED_OUT)
                continue
            key = (enrollment.sequence_id, job["channel"])
            by_sequence.setdefault(key, []).append(_step_message(enrollment, job))
            _move_on(enrollment, steps, step, now)
        for (sequence_id, channel), messages in by_sequence.items():
            dispatch_id = sequence_dispatch_id(sequence_id=sequence_id, channel=channel)
            sent += messages_queue(
                dispatch_id=dispatch_id, channel=channel, messages=messages
            )
    return sent


def _step_message(enrollment: Enrollment, job: dict) -> NewLog:
    """The job's step, rendered for the lead from the job's personalization."""
    personalized = _Personalized(**job["personalization"])
    return lead_message(
        lead=enrollment.lead,
        channel=job["channel"],
        dedupe_key=f"enr{enrollment.pk}-s{job['sequence_step']}",
        body=render(compile_template(job["template"]), personalized),
        subject=(
            render(compile_template(job["subject"]), personalized)
            if job["subject"]
            else ""
        ),
        marketing=True,
    )


def _move_on(
    enrollment: Enrollment, steps: dict, step: NurtureStep, now: datetime
) -> None:
    """The step is sent: the enrollment waits for the next, or is completed."""
    enrollment.current_step = step.position
    following = _next_step(steps, enrollment)
    if following is None:
        _finish(enrollment, now)
    else:
        enrollment.next_run_at = now + following.delay
        enrollment.save(update_fields=["current_step", "next_run_at", "updated_at"])


def _finish(enrollment: Enrollment, now: datetime, *, exit_reason: str = "") -> None:
    enrollment.status = (
        Enrollment.Status.EXITED if exit_reason else Enrollment.Status.COMPLETED
    )
    enrollment.exit_reason = exit_reason
    enrollment.next_run_at = None
    enrollment.finished_at = now
    enrollment.save(
        update_fields=[
            "status",
            "exit_reason",
            "current_step",
            "next_run_at",
            "finished_at",
            "updated_at",
        ]
    )
