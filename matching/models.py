"""Matching pools: a sponsor's money, the rounds it is shared in, and what each campaign got.

A pool's money lives in its own ledger account (``escrow.vocabulary.pool_funds_code``); these
rows say what it is for and record each round's frozen allocation. Balances come from the
ledger, never from here.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crowdfund_site.money import CURRENCY_CHOICES, format_amount
from projects.models import Campaign, Category

# The group whose members may put up pools; staff may create one on a sponsor's behalf.
SPONSORS_GROUP = "Sponsors"
# Input limits of a pool, used by the services and the API alike.
POOL_DESCRIPTION_MAX_LENGTH = 20_000
POOL_RATIO_MAX_BPS = 100 * 10_000  # 100:1
# Input limits of a campaign's application to a pool and of staff's reason on it.
APPLICATION_STATEMENT_MAX_LENGTH = 2_000
APPLICATION_REASON_MAX_LENGTH = 255


class PoolMode(models.TextChoices):
    FIXED_RATIO = "fixed_ratio", _("Fixed ratio")
    PRO_RATA = "pro_rata", _("Pro rata")
    QUADRATIC = "quadratic", _("Quadratic funding")


class PoolStatus(models.TextChoices):
    """Where a public pool is in its life: derived from its dates and closing (``pools_public``), not stored."""

    UPCOMING = "upcoming"
    RUNNING = "running"
    ENDED = "ended"
    CLOSED = "closed"


class LeftoverChoice(models.TextChoices):
    REFUND = "refund", _("Back to the sponsor")
    ROLL_OVER = "roll_over", _("On to the sponsor's next pool")


class Pool(models.Model):
    sponsor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="matching_pools")
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140, unique=True)
    description = models.TextField(blank=True)
    # The logo's descriptor (crowdfund_site.images.image_store); empty for none.
    logo = models.JSONField(default=dict, blank=True)
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    amount = models.BigIntegerField(help_text="What the sponsor puts in, in minor units.")
    mode = models.CharField(max_length=20, choices=PoolMode.choices)
    # fixed_ratio: the match per unit given, in basis points (10000 = 1:1).
    ratio_bps = models.PositiveIntegerField(default=10_000)
    per_contribution_cap = models.BigIntegerField(null=True, blank=True)
    per_backer_cap = models.BigIntegerField(null=True, blank=True, help_text="Per backer per campaign.")
    per_campaign_cap = models.BigIntegerField(null=True, blank=True)
    # quadratic: contributions below this do not count.
    minimum_contribution = models.BigIntegerField(default=100)
    pairwise_damping = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Quadratic only: Gitcoin's pairwise M in minor units (2500 = 25.00); empty for none.",
    )
    categories = models.ManyToManyField(Category, blank=True, related_name="matching_pools")
    campaigns = models.ManyToManyField(
        Campaign, blank=True, related_name="matching_pools", help_text="Approved by staff; with categories, either."
    )
    # Campaigns may also apply (``PoolApplication``); those staff accept join ``campaigns``, so
    # eligibility stays the one rule of categories or list.
    accepts_applications = models.BooleanField(
        default=False, help_text="Campaigns may apply; those staff accept join the list."
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    payment_reference = models.CharField(max_length=64, blank=True)
    funded_at = models.DateTimeField(null=True, blank=True)
    # Closing fixes what is left (no round runs any more, no matched money can come back), then
    # it is refunded to the sponsor.
    closed_at = models.DateTimeField(null=True, blank=True)
    leftover = models.BigIntegerField(
        default=0, help_text="What was left at closing and went back to the sponsor (or on to the next pool)."
    )
    leftover_returned_at = models.DateTimeField(null=True, blank=True)
    # The sponsor's choice for what is left at the end, until the pool closes.
    leftover_choice = models.CharField(max_length=10, choices=LeftoverChoice.choices, default=LeftoverChoice.REFUND)
    next_pool = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="rolled_over_from"
    )
    # The API's Idempotency-Key of the request that created it (unique per sponsor), and what that
    # request asked for: a retry answers with this pool and charges it once; the same key with
    # another request is refused. Empty for pools made elsewhere (admin, demo).
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    request_fingerprint = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["sponsor", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="matching_pool_idempotency_key_unique",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="matching_pool_amount_positive"),
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="matching_pool_dates"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def amount_display(self) -> str:
        return format_amount(self.amount, self.currency)


class RoundStatus(models.TextChoices):
    OPEN = "open", _("Open")
    ENDED = "ended", _("Ended, results frozen")
    CHALLENGE = "challenge", _("Published, in the challenge window")
    PAID = "paid", _("Paid")
    CANCELLED = "cancelled", _("Cancelled")


# Every allowed move of a round; anything else is refused by the services.
ROUND_TRANSITIONS: dict[str, set[str]] = {
    RoundStatus.OPEN: {RoundStatus.ENDED, RoundStatus.CANCELLED},
    RoundStatus.ENDED: {RoundStatus.CHALLENGE, RoundStatus.CANCELLED},
    RoundStatus.CHALLENGE: {RoundStatus.PAID, RoundStatus.CANCELLED},
}


class Round(models.Model):
    pool = models.ForeignKey(Pool, on_delete=models.PROTECT, related_name="rounds")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=RoundStatus.choices, default=RoundStatus.OPEN)
    # When it ended: eligibility (campaigns live past the challenge window) is judged as of then,
    # also when an exclusion recomputes the allocation.
    ended_at = models.DateTimeField(null=True, blank=True)
    challenge_ends_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    # What the round shares, fixed when it ends: what the pool holds then, less what other rounds
    # ended and not yet paid are to take. Null until then.
    budget = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="matching_round_dates"),
        ]
        permissions = [("pay_round", "Can pay matching rounds")]

    def __str__(self) -> str:
        return f"{self.pool} {self.starts_at:%Y-%m-%d} – {self.ends_at:%Y-%m-%d}"


class RoundStatusChange(models.Model):
    """An append-only record of one round transition: who, when, from, to, why."""

    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=10, choices=RoundStatus.choices)
    to_status = models.CharField(max_length=10, choices=RoundStatus.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.round_id}: {self.from_status} -> {self.to_status}"


class RoundExclusion(models.Model):
    """A contribution staff found fraudulent in a round's challenge window: it no longer counts."""

    round = models.ForeignKey(Round, on_delete=models.PROTECT, related_name="exclusions")
    pledge = models.ForeignKey("pledges.Pledge", on_delete=models.PROTECT, related_name="matching_exclusions")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["round", "pledge"], name="matching_exclusion_once")]

    def __str__(self) -> str:
        return f"{self.round_id}: pledge {self.pledge_id}"


class AllocationOutcome(models.TextChoices):
    RELEASED = "released", _("Released with the campaign's funds")
    RETURNED = "returned", _("Returned to the pool")
    NOT_PAID = "not_paid", _("Not paid: the campaign closed before the round was paid")


class Allocation(models.Model):
    """What one campaign is matched in one round, frozen when the round ends."""

    round = models.ForeignKey(Round, on_delete=models.PROTECT, related_name="allocations")
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="matching_allocations")
    amount = models.BigIntegerField()
    # The inputs behind it, for the published results.
    contributions = models.PositiveIntegerField(default=0)
    backers = models.PositiveIntegerField(default=0)
    raised = models.BigIntegerField(default=0)
    paid_at = models.DateTimeField(null=True, blank=True, help_text="When it moved into the campaign's escrow.")
    outcome = models.CharField(max_length=10, choices=AllocationOutcome.choices, blank=True)
    # What went back to the pool at settlement: all of it when the campaign failed, the part its
    # cancelled or refunded pledges no longer earn when it succeeded.
    returned_amount = models.BigIntegerField(default=0)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["round", "-amount", "campaign"]
        constraints = [
            models.UniqueConstraint(fields=["round", "campaign"], name="matching_allocation_once_per_round"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="matching_allocation_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}: {self.amount}"


class ApplicationStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for a decision")
    ACCEPTED = "accepted", _("Accepted")
    DECLINED = "declined", _("Declined")


class PoolApplication(models.Model):
    """A campaign asking to be matched by a pool that takes applications; staff decide it once.

    Accepting it adds the campaign to the pool's list (``Pool.campaigns``): from then on it is
    eligible like any campaign staff approved.
    """

    pool = models.ForeignKey(Pool, on_delete=models.PROTECT, related_name="applications")
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="matching_applications")
    applicant = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    statement = models.TextField(max_length=APPLICATION_STATEMENT_MAX_LENGTH)
    status = models.CharField(max_length=10, choices=ApplicationStatus.choices, default=ApplicationStatus.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=APPLICATION_REASON_MAX_LENGTH, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["pool", "campaign"], name="matching_application_once_per_pool"),
        ]
        permissions = [("decide_application", "Can accept or decline campaigns applying to matching pools")]

    def __str__(self) -> str:
        return f"{self.campaign} -> {self.pool}"
