"""Re-encrypt every stored token with the newest key of TOKEN_ENCRYPTION_KEYS.

Rotation: put the new key first in TOKEN_ENCRYPTION_KEYS (keep the old ones after
it), deploy, run this command, then remove the old keys. Each row is rewritten
under its own row lock, so a token refresh running at the same time is not lost.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from connections import crypto
from connections.models import Connection


class Command(BaseCommand):
    help = "Re-encrypt every connection's tokens with the first key of TOKEN_ENCRYPTION_KEYS."

    def handle(self, *args, **options):
        rotated, failed = 0, []
        ids = Connection.objects.exclude(token_blob="").values_list("pk", flat=True)
        for pk in ids.iterator():
            with transaction.atomic():
                conn = Connection.objects.select_for_update().filter(pk=pk).first()
                if conn is None or not conn.token_blob:
                    continue
                try:
                    conn.token_blob = crypto.rotate(conn.token_blob)
                except crypto.TokenDecryptError:
                    failed.append(pk)
                    continue
                conn.save(update_fields=["token_blob"])
                rotated += 1
        self.stdout.write(f"Re-encrypted the tokens of {rotated} connection(s) with the newest key.")
        if failed:
            raise CommandError(
                f"{len(failed)} connection(s) could not be decrypted with any configured key "
                f"(ids {', '.join(map(str, failed))}); keep the old key until they are fixed."
            )
