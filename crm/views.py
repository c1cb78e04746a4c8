"""Public pages a lead reaches without a login: the email unsubscribe link."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from config.redaction import mask_text
from crm.services.unsubscribe import (
    UnsubscribeTokenError,
    unsubscribe_apply,
    unsubscribe_read,
)


# Exempt from CSRF: RFC 8058's one click is a POST from the mail client, which has
# no token; the signed link itself is what proves the request.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe_view(request: HttpRequest, token: str) -> HttpResponse:
    """GET asks for confirmation and changes nothing (mail scanners follow links);
    POST, from the page's button or the mail client, unsubscribes."""
    try:
        if request.method == "POST":
            unsubscribe = unsubscribe_apply(token=token)
            template = "crm/unsubscribe_done.html"
        else:
            unsubscribe = unsubscribe_read(token=token)
            template = "crm/unsubscribe_confirm.html"
    except UnsubscribeTokenError:
        return render(request, "crm/unsubscribe_invalid.html", status=404)
    context = {
        "organization": unsubscribe.organization.name,
        "address": mask_text(unsubscribe.address),
    }
    return render(request, template, context)
