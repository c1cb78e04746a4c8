"""Writes the API makes to the automations' objects: sequences with their steps,
enrollments.

Kept here until the automations app has its own services for them; each is one
transaction the views call, as for any other service.
"""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from automations.models import Enrollment, NurtureSequence, NurtureStep
from crm.models import Lead, Organization


def sequence_save(
    *,
    organization: Organization,
    sequence: NurtureSequence | None = None,
    steps: list[dict] | None = None,
    **fields,
) -> NurtureSequence:
    """Create or change a sequence; given steps replace its steps whole."""
    sequence = sequence or NurtureSequence(organization=organization)
    for name, value in fields.items():
        setattr(sequence, name, value)
    sequence.full_clean(exclude=["organization", "dispatch"])
    try:
        with transaction.atomic():
            sequence.save()
            if steps is not None:
                sequence.steps.all().delete()
                NurtureStep.objects.bulk_create(
                    NurtureStep(sequence=sequence, **step) for step in steps
                )
    except IntegrityError as error:
        # The one constraint steps validated as a list cannot break: the name.
        raise ValidationError(
            {"name": [f"a sequence named {sequence.name!r} exists"]}
        ) from error
    return sequence


def enrollment_create(
    *, organization: Organization, lead: Lead, sequence: NurtureSequence
) -> Enrollment:
    """Enroll the lead; its first step is due after that step's delay."""
    if not sequence.is_active:
        raise ValidationError({"sequence": ["the sequence is not active"]})
    first = sequence.steps.order_by("position").first()
    if first is None:
        raise ValidationError({"sequence": ["the sequence has no steps"]})
    try:
        with transaction.atomic():
            return Enrollment.objects.create(
                organization=organization,
                lead=lead,
                sequence=sequence,
                next_run_at=timezone.now() + first.delay,
            )
    except IntegrityError as error:
        raise ValidationError(
            {"lead": ["the lead is already enrolled in this sequence"]}
        ) from error


def enrollment_exit(*, enrollment: Enrollment) -> Enrollment:
    """Take the lead out of the sequence by hand; an ended enrollment stays ended."""
    if enrollment.status == Enrollment.Status.ACTIVE:
        enrollment.status = Enrollment.Status.EXITED
        enrollment.exit_reason = Enrollment.ExitReason.MANUAL
        enrollment.next_run_at = None
        enrollment.finished_at = timezone.now()
        enrollment.save()
    return enrollment
