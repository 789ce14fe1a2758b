"""Settlement's state lives on campaigns, pledges and the ledger, but for one table.

``RemainderRefund`` is the progress of refunding what a campaign with milestones never released
(its cursor makes the batches resumable). The proxies give operators lists of what settlement
left unfinished, and carry the finance permissions that settlement's services check.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

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


class RemainderCause(models.TextChoices):
    ABANDONED = "abandoned", _("Abandoned by the initiator")
    OVERDUE = "overdue", _("A milestone is overdue past its extension")
    DECLARED_FAILED = "declared_failed", _("Declared failed by staff")


class RemainderRefund(models.Model):
    """Refunding, pro rata, what a campaign with milestones had not released when it ended.

    The split is fixed when it starts: each released pledge gets ``amount * pledge / pledged_total``
    rounded down, and the units left over go one each to the largest remainders (earlier pledges
    win ties); ``threshold_*`` is the last pledge that gets one, so any batch computes its own
    parts exactly. ``after_pledge_id`` is how far the batches have come, moved in the transaction
    that posts them.
    """

    campaign = models.OneToOneField("projects.Campaign", on_delete=models.PROTECT, related_name="remainder_refund")
    cause = models.CharField(max_length=20, choices=RemainderCause.choices)
    reason = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    amount = models.BigIntegerField(help_text="What is refunded, in minor units.")
    pledged_total = models.BigIntegerField(help_text="What the released pledges add up to (the split's weights).")
    threshold_remainder = models.BigIntegerField(null=True, blank=True)
    threshold_pledge_id = models.BigIntegerField(null=True, blank=True)
    after_pledge_id = models.BigIntegerField(default=0)
    refunded_amount = models.BigIntegerField(default=0)
    refunded_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    last_progress_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gte=0, amount__lte=models.F("pledged_total")),
                name="remainder_refund_within_pledged",
            ),
        ]

    def __str__(self) -> str:
        return f"remainder of campaign {self.campaign_id}"


class LateReleaseStatus(models.TextChoices):
    COLLECTING = "collecting", _("Releasing the week's late pledges")
    RELEASED = "released", _("Released; payout pending")
    PAID = "paid", _("Paid out")


class LateReleaseBatch(models.Model):
    """One week's release of a succeeded campaign's late pledges to its initiator.

    Week ``week`` (1 on) ends ``week`` times 7 days after the campaign's deadline; its batch
    takes the late pledges held before that end and not yet in a batch (``LateReleaseItem``),
    made once per campaign and week (the unique constraint) by ``settlement.late_release``.
    ``amount`` is what the items released; ``fee`` and ``net`` are fixed once it stops collecting.
    """

    campaign = models.ForeignKey("projects.Campaign", on_delete=models.PROTECT, related_name="late_batches")
    week = models.PositiveIntegerField()
    period_end = models.DateTimeField()
    status = models.CharField(max_length=10, choices=LateReleaseStatus.choices, default=LateReleaseStatus.COLLECTING)
    amount = models.BigIntegerField(default=0, help_text="Released, in minor units.")
    fee = models.BigIntegerField(default=0)
    fee_bps = models.PositiveIntegerField(default=0)
    net = models.BigIntegerField(default=0)
    pledge_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    released_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["campaign_id", "week"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "week"], name="late_batch_once_per_week"),
            models.CheckConstraint(
                condition=models.Q(amount__gte=0, fee__gte=0, net__gte=0), name="late_batch_amounts_not_negative"
            ),
        ]
        indexes = [models.Index(fields=["status", "campaign"], name="late_batch_status_campaign")]

    def __str__(self) -> str:
        return f"late pledges of campaign {self.campaign_id}, week {self.week}"


class LateReleaseItem(models.Model):
    """A late pledge released in a batch; a pledge is in at most one (the unique pledge)."""

    batch = models.ForeignKey(LateReleaseBatch, on_delete=models.PROTECT, related_name="items")
    pledge = models.OneToOneField(Pledge, on_delete=models.PROTECT, related_name="late_release_item")
    amount = models.BigIntegerField()

    def __str__(self) -> str:
        return f"pledge {self.pledge_id} in {self.batch_id}"
