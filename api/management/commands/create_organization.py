"""manage.py create_organization: a new tenant, its owner and an API token."""

import getpass
import sys
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from api.services.onboarding import organization_onboard


class Command(BaseCommand):
    help = (
        "Create an organization with an owner who signs in to the admin (password "
        "from a prompt or --password-file) and print the owner's API token, once."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="the organization's name")
        parser.add_argument("--owner", required=True, help="the owner's username")
        parser.add_argument("--email", default="", help="the owner's email address")
        parser.add_argument(
            "--password-file",
            type=Path,
            help="a file whose first line is the owner's password (else prompted)",
        )

    def handle(self, *args, name, owner, email, password_file, **options):
        password = self._password(password_file)
        try:
            onboarded = organization_onboard(
                name=name,
                owner_username=owner,
                owner_email=email,
                owner_password=password,
            )
        except ValidationError as error:
            reasons = "; ".join(
                f"{field}: {' '.join(messages)}"
                for field, messages in error.message_dict.items()
            )
            raise CommandError(f"nothing created: {reasons}") from error
        organization = onboarded.organization
        self.stdout.write(
            self.style.SUCCESS(
                f'Created organization "{organization.name}" '
                f"(slug {organization.slug}) with owner {owner}, who signs in to "
                "the admin at /admin/ with the password given."
            )
        )
        self.stdout.write(
            "The owner's API token, shown this once (send it as "
            '"Authorization: Token <token>"):'
        )
        self.stdout.write(f"API token: {onboarded.token}")

    def _password(self, password_file: Path | None) -> str:
        if password_file is not None:
            try:
                lines = password_file.read_text(encoding="utf-8").splitlines()
            except OSError as error:
                raise CommandError(f"cannot read {password_file}: {error}") from error
            if not lines or not lines[0]:
                raise CommandError(f"{password_file} has no password on its first line")
            return lines[0]
        if not sys.stdin.isatty():
            raise CommandError(
                "no password: give --password-file, or run in a terminal to be asked"
            )
        password = getpass.getpass("Owner's password: ")
        if password != getpass.getpass("The same again: "):
            raise CommandError("the two passwords differ")
        return password
