"""Content bounds: the lengths a message's subject and body must keep, and how a
rendered message is made to keep them.

A subject is stored in the log's column and an SMS goes to vendors that refuse
long bodies. A template longer than its bound can never fit and is refused when
the campaign or step is saved. Placeholders can still render past a bound (a long
name, a long attribute), which is only known per lead: a subject is then cut with
an ellipsis (mail clients show its first 40-80 characters anyway, and a marketer
would rather the email go than not), while an SMS body is skipped with a reason
(cut, it could lose its link or its opt-out words; vendors refuse it whole).
"""

from crm.models import Channel
from messaging.models import CommunicationLog
from vendors.sms import SMS_MAX_CHARACTERS

SUBJECT_MAX_LENGTH = CommunicationLog._meta.get_field("subject").max_length
ELLIPSIS = "…"
BODY_TOO_LONG = "body_too_long"


def content_errors(*, channel: str, template: str, subject: str) -> dict[str, str]:
    """By field, the bound a template or subject is longer than, as written."""
    errors = {}
    if len(subject) > SUBJECT_MAX_LENGTH:
        errors["subject"] = (
            f"at most {SUBJECT_MAX_LENGTH} characters (it has {len(subject)})"
        )
    if channel == Channel.SMS and len(template) > SMS_MAX_CHARACTERS:
        errors["template"] = (
            f"an SMS is at most {SMS_MAX_CHARACTERS} characters "
            f"(the template has {len(template)})"
        )
    return errors


def fit_subject(subject: str) -> str:
    """A rendered subject, cut to the column with an ellipsis if longer."""
    if len(subject) <= SUBJECT_MAX_LENGTH:
        return subject
    return subject[: SUBJECT_MAX_LENGTH - len(ELLIPSIS)] + ELLIPSIS


def body_limit(channel: str) -> int | None:
    """The most characters a rendered body may have on this channel, if bounded."""
    return SMS_MAX_CHARACTERS if channel == Channel.SMS else None


def body_skip_reason(channel: str, body: str) -> str:
    """Why a rendered body cannot go (too long for the channel), or ""."""
    limit = body_limit(channel)
    return BODY_TOO_LONG if limit is not None and len(body) > limit else ""
