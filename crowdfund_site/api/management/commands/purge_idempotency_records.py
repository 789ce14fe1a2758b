from django.core.management.base import BaseCommand

from crowdfund_site.api.idempotency import idempotency_records_purge


class Command(BaseCommand):
    help = "Delete Idempotency-Key records older than settings.IDEMPOTENCY_KEY_TTL (at least 24 hours)."

    def handle(self, *args, **options):
        deleted = idempotency_records_purge()
        self.stdout.write(f"Deleted {deleted} idempotency record(s).")
