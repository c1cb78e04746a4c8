"""Every domain error a service raises reaches the caller as a 4xx naming the field
or the reason, never a 500 (rule, campaign, invoice, appointment and enrollment
errors have their own tests where they are raised)."""

import pytest
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from api.errors import exception_handler
from campaigns.chunking import ChunkSizeError
from campaigns.personalization import TemplateError
from crm.contacts import ContactError
from crm.services.lead_import import ImportFileError, ImportReport
from messaging.services.dispatches import DispatchStateError
from vendors.base import InvalidPayload


def handled(exc: Exception):
    request = APIRequestFactory().post("/api/anything")
    return exception_handler(exc, {"view": APIView(), "request": request})


@pytest.mark.parametrize(
    ("error", "field"),
    [
        (ChunkSizeError("chunk size must be between 1 and 200, got 500"), "chunk_size"),
        (TemplateError("unknown placeholder {{nmae}}"), "template"),
        (ContactError(kind="phone", value="12", reason="too short"), "phones"),
        (ContactError(kind="email", value="x@", reason="no domain"), "emails"),
        (ImportFileError("no header line", report=ImportReport()), "file"),
        (InvalidPayload("not a receipts callback"), "body"),
    ],
)
def test_a_refused_value_is_a_400_under_its_field(error, field):
    # given / when
    response = handled(error)

    # then
    assert response is not None
    assert response.status_code == 400
    assert response.data[field] == [str(error)]


@pytest.mark.parametrize(
    "error",
    [
        DispatchStateError("the dispatch is finished"),
    ],
)
def test_a_state_that_does_not_allow_the_action_is_a_409_with_the_reason(error):
    # given / when
    response = handled(error)

    # then
    assert response is not None
    assert response.status_code == 409
    assert response.data["detail"] == str(error)
