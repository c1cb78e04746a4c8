"""The main job: a demo campaign end to end, from a CSV of leads to their receipts."""

import time
from contextlib import ExitStack
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from bench.runner import CampaignTimeout, campaign_follow, workers_start
from campaigns.models import Campaign
from campaigns.selectors import campaign_stats
from campaigns.services.lifecycle import campaign_create, campaign_launch
from crm.models import Channel, Organization, Segment
from crm.selectors import segment_preview
from crm.services.demo_data import demo_leads_csv, demo_owner_ready
from crm.services.lead_import import lead_import_csv
from crm.services.organizations import organization_settings_update
from crm.services.segments import segment_create
from messaging.services.dispatches import dispatch_reconcile

DEMO_BAD_ROWS = 4
TEMPLATE = (
    "Hi {{name}}, you have spent ${{total_spend}} and visited {{visits}} times. "
    "Get 10% off!"
)
SEGMENT_RULES = {"field": "visits", "op": "gte", "value": 0}
# The demo waits seconds, not minutes, between retries of a failed send.
DEMO_RETRY_BASE_SECONDS = 1.0


class Command(BaseCommand):
    help = (
        "Run a demo campaign end to end: import leads from a generated CSV, build a "
        "segment, launch an SMS campaign and follow it through a real Celery worker."
    )

    def add_arguments(self, parser):
        parser.add_argument("--leads", type=int, default=2000)
        parser.add_argument("--org", default="demo")
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument(
            "--workers-running",
            action="store_true",
            help="use workers already running on the broker instead of starting some",
        )
        parser.add_argument("--timeout", type=float, default=300)

    def handle(self, *args, leads, org, workers, workers_running, timeout, **options):
        organization, _ = Organization.objects.get_or_create(
            slug=org, defaults={"name": org.replace("-", " ").title()}
        )
        # The demo's leads live in time zones around the world: with quiet hours on,
        # a share of them would wait hours for their morning, so the demo runs with
        # them off (docs/consent.md).
        organization_settings_update(
            organization=organization, quiet_hours_enabled=False
        )
        self.stdout.write("Quiet hours are off for the demo organization")
        campaign = self._prepare(organization, leads)
        with ExitStack() as stack:
            self._start_workers(stack, workers, workers_running)
            started = time.monotonic()
            result = campaign_launch(campaign_id=campaign.pk)
            self.stdout.write(
                f"Launched campaign {campaign.pk}: {result.total_leads} leads in "
                f"{result.total_chunks} chunks of {result.chunk_size}"
            )
            self._follow(campaign, timeout)
            elapsed = time.monotonic() - started
        self._report(campaign, elapsed)
        self._how_to_open_the_admin(organization)

    def _prepare(self, organization: Organization, leads: int) -> Campaign:
        path = settings.VAR_DIR / f"demo-leads-{leads}.csv"
        # A few bad rows too: the import reports them by line and goes on.
        demo_leads_csv(path=path, count=leads, seed=7, bad_rows=DEMO_BAD_ROWS)
        with open(path, newline="", encoding="utf-8") as stream:
            report = lead_import_csv(organization=organization, stream=stream)
        for line, reason in report.rejected[:5]:
            self.stdout.write(f"  rejected line {line}: {reason}")
        if len(report.rejected) > 5:
            self.stdout.write(f"  ... and {len(report.rejected) - 5} more")
        self.stdout.write(f"Imported {path.name}: {report.summary()}")
        segment = Segment.objects.filter(
            organization=organization, name="Demo audience"
        ).first() or segment_create(
            organization=organization, name="Demo audience", rules=SEGMENT_RULES
        )
        preview = segment_preview(organization=organization, rules=segment.rules)
        sample = ", ".join(lead.name or str(lead.pk) for lead in preview.sample[:3])
        self.stdout.write(
            f"Segment '{segment.name}': {preview.count} leads ({sample}, ...)"
        )
        return campaign_create(
            organization=organization,
            name=f"Demo campaign {time.strftime('%Y-%m-%d %H:%M:%S')}",
            channel=Channel.SMS,
            segment=segment,
            template=TEMPLATE,
        )

    def _start_workers(self, stack: ExitStack, workers: int, workers_running: bool):
        settings.MESSAGING_RETRY_BASE_SECONDS = DEMO_RETRY_BASE_SECONDS
        workers_start(
            stack=stack,
            count=workers,
            running=workers_running,
            env={"MESSAGING_RETRY_BASE_SECONDS": str(DEMO_RETRY_BASE_SECONDS)},
            logfile=str(settings.VAR_DIR / "demo-workers.log"),
            say=self.stdout.write,
        )

    def _follow(self, campaign: Campaign, timeout: float) -> None:
        """Show progress until the campaign completes; stand in for beat meanwhile."""
        with tqdm(total=campaign.total_leads, unit="lead", disable=None) as bar:

            def progress(current: Campaign) -> None:
                bar.update(current.dispatch.finished - bar.n)

            try:
                campaign_follow(
                    campaign_id=campaign.pk, timeout=timeout, on_tick=progress
                )
            except CampaignTimeout as error:
                raise CommandError(str(error)) from error

    def _report(self, campaign: Campaign, elapsed: float) -> None:
        campaign = Campaign.objects.select_related("dispatch").get(pk=campaign.pk)
        stats = campaign_stats(campaign=campaign)
        reconciliation = dispatch_reconcile(
            dispatch_id=campaign.dispatch_id, repair=False
        )
        rows = [
            ("audience", stats["audience"]),
            ("skipped", stats["skipped"]),
            ("sent", stats["sent"]),
            ("delivered", stats["delivered"]),
            ("failed", stats["failed"]),
            ("retried", stats["retried"]),
            ("cost", f"${Decimal(stats['cost']):.4f}"),
            ("elapsed", f"{elapsed:.1f} s"),
            ("leads per second", f"{stats['audience'] / elapsed:.0f}"),
        ]
        self.stdout.write("")
        for name, value in rows:
            self.stdout.write(f"  {name:<18}{value:>14}")
        if reconciliation.differences:
            raise CommandError(
                f"counters differ from the logs: {reconciliation.differences}"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Campaign {campaign.pk} completed: every lead has a final state "
                "and the counters match the logs."
            )
        )

    def _how_to_open_the_admin(self, organization: Organization) -> None:
        try:
            owner = demo_owner_ready(organization=organization)
        except (ValueError, ValidationError) as error:
            raise CommandError(f"no demo owner to sign in as: {error}") from error
        self.stdout.write(
            f"\nSee it in the admin: run `make web`, open "
            f"http://127.0.0.1:8000/admin/ and sign in as {owner.username} with "
            f"the password {owner.password} (a new one each demo run)."
        )
