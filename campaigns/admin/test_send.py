"""The campaign page's test send: find a lead, give your own address, send."""

from django import forms
from django.contrib import messages
from django.db.models import Q
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from campaigns.models import Campaign
from campaigns.services.test_send import TestSendError, campaign_test_send
from crm.models import Channel, Lead

# Leads offered at once: a search narrows them; nobody scrolls past a page.
LEADS_SHOWN = 25


class TestSendForm(forms.Form):
    lead = forms.TypedChoiceField(coerce=int, help_text="Whose data fills the message.")
    to = forms.CharField(max_length=254)

    def __init__(self, *args, campaign: Campaign, leads, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lead"].choices = [
            (lead.pk, f"{lead.name or '(no name)'} · {lead.phone or lead.email}")
            for lead in leads
        ]
        if campaign.channel == Channel.SMS:
            self.fields["to"].label = "Your phone number"
        else:
            self.fields["to"].label = "Your email address"


def leads_matching(campaign: Campaign, query: str):
    """The campaign organization's leads whose name, phone or email holds `query`,
    newest first; without a query, the newest."""
    leads = Lead.objects.filter(organization_id=campaign.organization_id)
    query = query.strip()
    if query:
        leads = leads.filter(
            Q(name__icontains=query)
            | Q(phone__icontains=query)
            | Q(email__icontains=query)
        )
    return list(
        leads.order_by("-pk").only("pk", "name", "phone", "email")[:LEADS_SHOWN]
    )


def test_send_view(model_admin, request, object_id: int):
    """GET shows the form (`q` searches leads); POST sends, then returns to the
    campaign with the outcome, or shows the form again with the reason."""
    campaign = model_admin.get_object(request, str(object_id))
    if campaign is None or not model_admin.has_change_permission(request, campaign):
        return redirect("admin:campaigns_campaign_changelist")
    query = request.GET.get("q", "")
    leads = leads_matching(campaign, query)
    if request.method != "POST":
        form = TestSendForm(campaign=campaign, leads=leads)
    else:
        # The chosen lead stays a choice whatever the search shows now.
        posted = request.POST.get("lead", "")
        chosen = list(
            Lead.objects.filter(
                organization_id=campaign.organization_id,
                pk=int(posted) if posted.isdigit() else 0,
            )
        )
        leads = chosen + [lead for lead in leads if lead not in chosen]
        form = TestSendForm(request.POST, campaign=campaign, leads=leads)
        if form.is_valid():
            try:
                sent = campaign_test_send(
                    campaign_id=campaign.pk,
                    lead_id=form.cleaned_data["lead"],
                    to=form.cleaned_data["to"],
                )
            except TestSendError as error:
                form.add_error(error.field, str(error))
            else:
                model_admin.message_user(
                    request,
                    f"Test message {sent.send_id} sent to {sent.to} ({sent.status}); "
                    "it is not counted in the campaign.",
                    messages.SUCCESS,
                )
                return redirect("admin:campaigns_campaign_change", campaign.pk)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": f"Test send of “{campaign.name}”",
        "original": campaign,
        "form": form,
        "query": query,
    }
    return TemplateResponse(request, "admin/campaigns/campaign/test_send.html", context)
