from django.conf import settings
from django.core.management.base import BaseCommand

from escrow.checkpoints import checkpoint_latest, ledger_seal


class Command(BaseCommand):
    help = "Seal every committed ledger transaction not sealed yet into checkpoints (no broker needed)."

    def handle(self, *args, **options):
        sealed = ledger_seal(batch_size=settings.LEDGER_CHECKPOINT_BATCH_SIZE)
        latest = checkpoint_latest()
        head = f"; latest checkpoint {latest.sequence}, {latest.hash}" if latest else ""
        self.stdout.write(self.style.SUCCESS(f"Sealed {sealed} transaction(s){head}."))
