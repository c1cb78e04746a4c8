"""manage.py rotate_vendor_credentials: re-encrypt every account's secrets."""

from django.core.management.base import BaseCommand, CommandError

from vendors.services import vendor_accounts_rotate_credentials


class Command(BaseCommand):
    help = (
        "Re-encrypt every vendor account's credentials with the first key of "
        "VENDOR_CREDENTIALS_KEYS. Put the new key first, keep the old ones after it, "
        "run this, then drop the old keys. Safe to run again; prints counts only."
    )

    def handle(self, *args, **options):
        outcome = vendor_accounts_rotate_credentials()
        self.stdout.write(
            f"rotated={outcome.rotated} "
            f"without_credentials={outcome.without_credentials} "
            f"unreadable={outcome.unreadable}"
        )
        if outcome.unreadable:
            raise CommandError(
                f"{outcome.unreadable} account(s) could not be decrypted with any "
                "key of VENDOR_CREDENTIALS_KEYS: add back the key that encrypted them "
                "and run again (nothing else was changed for them)."
            )
