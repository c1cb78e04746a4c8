"""One error shape for the API: 4xx with the fields at fault, never a 500 for input.

Services raise Django's ValidationError (by field), their own state errors and rule
errors; views stay thin because this turns each into the response an integrator
can act on.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.db.models import ProtectedError
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

from campaigns.services.lifecycle import CampaignStateError
from crm.rules import RuleError


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The object's state does not allow this."
    default_code = "conflict"


def _as_api_error(exc: Exception) -> Exception:
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return exceptions.ValidationError(exc.message_dict)
        return exceptions.ValidationError({"non_field_errors": exc.messages})
    if isinstance(exc, RuleError):
        return exceptions.ValidationError({"rules": [str(exc)]})
    if isinstance(exc, CampaignStateError):
        return Conflict(str(exc))
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
