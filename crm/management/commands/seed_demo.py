"""manage.py seed_demo: fill an organization with realistic fake leads."""

import time

from django.core.management.base import BaseCommand, CommandError
from django.utils.text import slugify

from crm.models import Organization
from crm.services.demo_data import demo_leads_create


class Command(BaseCommand):
    help = (
        "Create N fake leads (Faker) in an organization, created if missing: about 5% "
        "without a phone, 3% with a bad or empty email, a few opted out."
    )

    def add_arguments(self, parser):
        parser.add_argument("--leads", type=int, required=True, help="how many")
        parser.add_argument("--org", required=True, help="the organization's slug")
        parser.add_argument(
            "--seed", type=int, default=0, help="the same seed makes the same leads"
        )

    def handle(self, *args, **options):
        count, slug = options["leads"], options["org"]
        if count < 0:
            raise CommandError("--leads must be 0 or more")
        if slugify(slug) != slug:
            raise CommandError(f'--org "{slug}" is not a slug (try "{slugify(slug)}")')
        organization, _ = Organization.objects.get_or_create(
            slug=slug, defaults={"name": slug.replace("-", " ").title()}
        )
        started = time.monotonic()
        created = demo_leads_create(
            organization=organization, count=count, seed=options["seed"]
        )
        self.stdout.write(
            f"created {created} leads in {organization.slug} "
            f"in {time.monotonic() - started:.1f} s"
        )
