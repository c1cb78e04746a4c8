"""Send failed messages again, for one campaign or all."""

from django.core.management.base import BaseCommand, CommandError

from campaigns.models import Campaign
from messaging.services.outbound import sends_due_soon
from messaging.services.recovery import logs_retry_failed


class Command(BaseCommand):
    help = "Queue failed messages again with a fresh attempt count."

    def add_arguments(self, parser):
        parser.add_argument("--campaign", type=int)

    def handle(self, *args, campaign, **options):
        dispatch_ids = None
        if campaign is not None:
            found = Campaign.objects.filter(pk=campaign).first()
            if found is None or found.dispatch_id is None:
                raise CommandError(f"no launched campaign {campaign}")
            dispatch_ids = [found.dispatch_id]
        retried = logs_retry_failed(dispatch_ids=dispatch_ids)
        sends_due_soon()
        self.stdout.write(f"{retried} failed messages queued again")
