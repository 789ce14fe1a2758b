from django.core.management.base import BaseCommand

from settlement.selectors import settlement_find_stuck
from settlement.services import campaigns_close_due, settlement_run


class Command(BaseCommand):
    help = "Close live campaigns past their deadline and settle them in this process (no broker needed)."

    def handle(self, *args, **options):
        claimed = campaigns_close_due(enqueue_settlement=False)
        # Also finish settlements a crashed worker left behind.
        for campaign_id in dict.fromkeys(claimed + settlement_find_stuck()):
            settlement_run(campaign_id=campaign_id)
            self.stdout.write(f"Settled campaign {campaign_id}")
        self.stdout.write(self.style.SUCCESS(f"Closed {len(claimed)} campaign(s)."))
