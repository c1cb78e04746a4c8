"""The campaign form, checked by the lifecycle service that launch checks with."""

from django import forms
from django.core.exceptions import ValidationError

from campaigns.models import Campaign
from campaigns.personalization import PLACEHOLDERS
from campaigns.services import lifecycle
from crm.models import Segment

PLACEHOLDER_HELP = "Placeholders: " + "; ".join(
    f"{{{{{name}}}}} = {meaning}" for name, meaning in PLACEHOLDERS.items()
)


class CampaignAdminForm(forms.ModelForm):
    """Checked by lifecycle.campaign_validate, each error shown at its field."""

    class Meta:
        model = Campaign
        fields = [
            "organization",
            "name",
            "channel",
            "segment",
            "subject",
            "template",
            "chunk_size",
            "scheduled_at",
        ]
        widgets = {
            "template": forms.Textarea(
                attrs={"rows": 5, "cols": 80, "class": "vLargeTextField"}
            )
        }
        help_texts = {"template": PLACEHOLDER_HELP}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "segment" in self.fields:
            self.fields["segment"].label_from_instance = segment_choice_label

    def clean(self):
        cleaned = super().clean()
        segment = cleaned.get("segment")
        # A saved campaign's organization is shown, not edited.
        organization = cleaned.get("organization") or (
            self.instance.organization if self.instance.pk else None
        )
        if organization is None or segment is None or not cleaned.get("channel"):
            return cleaned  # their own errors are already shown
        try:
            lifecycle.campaign_validate(
                organization=organization,
                channel=cleaned["channel"],
                segment=segment,
                template=cleaned.get("template") or "",
                subject=cleaned.get("subject") or "",
                chunk_size=cleaned.get("chunk_size"),
            )
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                self.add_error(field if field in self.fields else None, problems)
        return cleaned


def segment_choice_label(segment: Segment) -> str:
    """A segment in the picker with its audience, as last counted (on save)."""
    if segment.audience_size is None:
        return f"{segment.name} (not counted yet)"
    leads = "lead" if segment.audience_size == 1 else "leads"
    return f"{segment.name} ({segment.audience_size:,} {leads})"
