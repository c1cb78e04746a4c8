"""One error shape for the API: 4xx with the fields at fault, never a 500 for input.

Services raise Django's ValidationError (by field), their own state errors and rule
errors; views stay thin because this turns each into the response an integrator
can act on.
"""

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.db.models import ProtectedError
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

from automations.services.dunning import InvoiceStateError
from automations.services.nurture import EnrollmentError
from automations.services.reminders import AppointmentStateError
from campaigns.chunking import ChunkSizeError
from campaigns.personalization import TemplateError
from campaigns.services.lifecycle import CampaignStateError
from campaigns.services.test_send import TestSendError
from crm.contacts import ContactError
from crm.rules import RuleError
from crm.services.lead_import import ImportFileError
from messaging.services.dispatches import DispatchStateError
from vendors.base import InvalidPayload

# A service refusing what the object's state does not allow: a 409 with its reason.
STATE_ERRORS = (
    CampaignStateError,
    AppointmentStateError,
    InvoiceStateError,
    EnrollmentError,
    DispatchStateError,
)
# A service refusing a value: a 400 under the field it came from.
VALUE_ERRORS = {
    RuleError: "rules",
    ChunkSizeError: "chunk_size",
    TemplateError: "template",
    ImportFileError: "file",
    InvalidPayload: "body",
}


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The object's state does not allow this."
    default_code = "conflict"


def _as_api_error(exc: Exception) -> Exception:
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return exceptions.ValidationError(exc.message_dict)
        return exceptions.ValidationError({"non_field_errors": exc.messages})
    if isinstance(exc, TestSendError):
        return exceptions.ValidationError({exc.field: [str(exc)]})
    if isinstance(exc, ContactError):
        return exceptions.ValidationError({f"{exc.kind}s": [str(exc)]})
    for error_class, field in VALUE_ERRORS.items():
        if isinstance(exc, error_class):
            return exceptions.ValidationError({field: [str(exc)]})
    if isinstance(exc, STATE_ERRORS):
        return Conflict(str(exc))
    if isinstance(exc, ObjectDoesNotExist):
        # Read, then deleted by another request before a service locked it.
        return exceptions.NotFound("the object no longer exists")
    if isinstance(exc, ProtectedError):
        names = sorted({type(obj)._meta.verbose_name for obj in exc.protected_objects})
        return Conflict(f"still used by {', '.join(names)}; remove those first")
    if isinstance(exc, DataError):
        # The last line of defence: validation should have caught the value first.
        return exceptions.ValidationError(
            {"non_field_errors": ["a value is out of range or not valid here"]}
        )
    return exc


def exception_handler(exc, context):
    return drf_exception_handler(_as_api_error(exc), context)
