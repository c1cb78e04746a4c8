"""Nurture sequences saved with their steps, as the API takes them in one request."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from automations.models import NurtureSequence, NurtureStep
from crm.models import Organization


def sequence_save(
    *,
    organization: Organization,
    sequence: NurtureSequence | None = None,
    steps: list[dict] | None = None,
    **fields,
) -> NurtureSequence:
    """Create or change a sequence; given steps replace its steps whole.

    A change writes only the given fields: its dispatch, or a switch made meanwhile,
    stands.
    """
    creating = sequence is None
    sequence = sequence or NurtureSequence(organization=organization)
    for name, value in fields.items():
        setattr(sequence, name, value)
    sequence.full_clean(exclude=["organization", "dispatch"])
    try:
        with transaction.atomic():
            if creating:
                sequence.save()
            else:
                sequence.save(update_fields=[*fields, "updated_at"])
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
