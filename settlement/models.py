"""Settlement keeps no tables of its own: its state lives on campaigns, pledges and the ledger.

These proxies give operators lists of what settlement left unfinished, and carry the finance
permissions that settlement's services check.
"""

from pledges.models import Pledge
from projects.models import Campaign


class StuckSettlement(Campaign):
    class Meta:
        proxy = True
        verbose_name = "settlement in progress"
        verbose_name_plural = "settlements in progress"
        permissions = [
            ("retry_operations", "Can retry stuck settlements and unconfirmed refunds"),
            ("verify_ledger", "Can run the ledger verification"),
        ]


class UnconfirmedRefund(Pledge):
    class Meta:
        proxy = True
        verbose_name = "refund not confirmed by the gateway"
        verbose_name_plural = "refunds not confirmed by the gateway"


class SuspendedPastDeadline(Campaign):
    """Suspended campaigns whose deadline has passed.

    The beat task closes only live campaigns, so these backers' money stays in escrow until staff
    reinstate the campaign (it then closes at once) or cancel it (every backer is refunded).
    """

    class Meta:
        proxy = True
        verbose_name = "suspended campaign past its deadline"
        verbose_name_plural = "suspended past deadline"
