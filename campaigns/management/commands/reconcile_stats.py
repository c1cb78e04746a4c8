"""Check campaign counters against a count over their logs, and repair them."""

from django.core.management.base import BaseCommand, CommandError

from campaigns.models import Campaign
from messaging.services.dispatches import dispatch_reconcile


class Command(BaseCommand):
    help = "Check (and repair) campaign counters against a count over their messages."

    def add_arguments(self, parser):
        parser.add_argument("campaign_id", nargs="?", type=int)
        parser.add_argument("--all", action="store_true")
        parser.add_argument(
            "--check", action="store_true", help="report only; exit 1 on a difference"
        )

    def handle(self, *args, campaign_id, all, check, **options):
        campaigns = Campaign.objects.exclude(dispatch=None)
        if campaign_id is not None:
            campaigns = campaigns.filter(pk=campaign_id)
        elif not all:
            raise CommandError("name a campaign id or pass --all")
        if campaign_id is not None and not campaigns.exists():
            raise CommandError(f"no launched campaign {campaign_id}")
        differing = 0
        for campaign in campaigns.order_by("pk"):
            result = dispatch_reconcile(
                dispatch_id=campaign.dispatch_id, repair=not check
            )
            if not result.differences:
                self.stdout.write(f"campaign {campaign.pk}: counters match the logs")
                continue
            differing += 1
            verb = "differs" if check else "repaired"
            for name, (stored, counted) in result.differences.items():
                self.stdout.write(
                    f"campaign {campaign.pk}: {name} {verb}: stored {stored}, "
                    f"logs say {counted}"
                )
        if check and differing:
            raise CommandError(f"{differing} campaign(s) have counters off their logs")
