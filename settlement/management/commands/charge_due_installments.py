from django.core.management.base import BaseCommand

from settlement.installments import installments_run_due


class Command(BaseCommand):
    help = "Charge the due installments of pledges paid over time, as beat does (no broker needed)."

    def handle(self, *args, **options):
        counts = installments_run_due()
        self.stdout.write(self.style.SUCCESS(", ".join(f"{what}: {n}" for what, n in counts.items())))
