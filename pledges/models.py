from django.conf import settings
from django.db import models
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crowdfund_site.money import CURRENCY_CHOICES, format_amount
from projects.models import AddOn, Campaign, RewardTier
from projects.shipping import country_name


class PledgeStatus(models.TextChoices):
    PENDING = "pending", _("Pending payment")
    HELD = "held", _("Held in escrow")
    RELEASED = "released", _("Released to the initiator")
    REFUNDED = "refunded", _("Refunded")
    CANCELLED = "cancelled", _("Cancelled and refunded")
    FAILED = "failed", _("Payment failed")


# Every allowed move of a pledge; anything else is refused by the services.
PLEDGE_TRANSITIONS: dict[str, set[str]] = {
    PledgeStatus.PENDING: {PledgeStatus.HELD, PledgeStatus.FAILED},
    PledgeStatus.HELD: {PledgeStatus.RELEASED, PledgeStatus.REFUNDED, PledgeStatus.CANCELLED},
}
# Pledges whose money is (or was) counted towards the campaign's total.
COUNTED_STATUSES = (PledgeStatus.HELD, PledgeStatus.RELEASED)
# A backer's pledge that still stands on its campaign: being paid or held. A backer has at most
# one of these per campaign (the ``pledge_one_open_per_backer`` constraint); changes adjust it.
OPEN_STATUSES = (PledgeStatus.PENDING, PledgeStatus.HELD)

# Why a payment failed, in the reader's language, by failure code. ``failure_message`` keeps the
# gateway's own words for staff and the API; pages show these instead when the code is known.
FAILURE_REASONS = {
    "card_declined": _("The card was declined."),
    "insufficient_funds": _("The card has insufficient funds."),
    "campaign_not_live": _("The campaign closed before the payment completed; the charge was refunded."),
    "abandoned": _("The payment was never completed."),
}


def failure_reason(code: str, message: str) -> str:
    """Return why a payment failed in the active language; the gateway's ``message`` for an unknown code."""
    return str(FAILURE_REASONS.get(code, message))


class Pledge(models.Model):
    backer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="pledges")
    # No index of their own: every pledge's row is indexed again when it goes from pending to
    # held (status is indexed, so that UPDATE is never HOT), so each index costs the hot path
    # twice. ``pledge_campaign_status_id`` leads with the campaign; the reward's is partial.
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="pledges", db_index=False)
    reward = models.ForeignKey(
        RewardTier, null=True, blank=True, on_delete=models.PROTECT, related_name="pledges", db_index=False
    )
    amount = models.BigIntegerField(help_text="In minor units of the currency.")
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    status = models.CharField(max_length=10, choices=PledgeStatus.choices, default=PledgeStatus.PENDING)
    # Chosen by the client; a retry with the same key returns this pledge instead of a new one.
    idempotency_key = models.CharField(max_length=255)
    # What the request asked for, to refuse the same key sent with a different body.
    request_fingerprint = models.CharField(max_length=255)
    payment_reference = models.CharField(max_length=64, blank=True)
    failure_code = models.CharField(max_length=40, blank=True)
    failure_message = models.CharField(max_length=255, blank=True)
    # The processor's fingerprint of the card charged (``GatewayResult.card_fingerprint``), kept
    # whether the charge went through or not: fraud signals look for one card across accounts.
    # The database default lets the bulk inserts of tests and benchmarks leave it out.
    card_fingerprint = models.CharField(max_length=64, blank=True, default="", db_default="")
    # For a reward that ships: where to (ISO 3166-1 alpha-2) and what shipping there cost, which
    # ``amount`` includes. ``amount`` is the whole that is charged, held, released and refunded.
    shipping_country = models.CharField(max_length=2, blank=True, default="", db_default="")
    shipping_amount = models.BigIntegerField(default=0, db_default=0, help_text="Included in amount.")
    # The part of ``amount`` paid from the backer's balance on the platform (a lender's received
    # money re-lent) instead of by card: held, released and refunded with the rest, but taken
    # from and given back to that balance, never to a card. ``amount - from_balance`` is charged.
    from_balance = models.BigIntegerField(
        default=0, db_default=0, help_text="Part of amount paid from the backer's balance, not by card."
    )
    # What the pledge's add-ons (``PledgeAddOn`` rows) cost together, which ``amount`` includes:
    # held, released and refunded with the rest. 0 tells the services there are no rows to read.
    addons_amount = models.BigIntegerField(default=0, db_default=0, help_text="Included in amount.")
    # Paid over time (``pledges.installments``): ``amount`` is the whole pledged, counted towards
    # the goal; ``unheld_amount`` is the part of it that is not in escrow, i.e. installments still
    # due, and those paid after the campaign's release straight to the initiator. Escrow holds,
    # releases and refunds ``held_amount``. 0 on every pledge paid at once.
    installment_plan = models.BooleanField(default=False, db_default=False)
    unheld_amount = models.BigIntegerField(default=0, db_default=0, help_text="Part of amount not in escrow.")
    created_at = models.DateTimeField(default=timezone.now)
    held_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True, help_text="Released, refunded or cancelled.")
    # Set on the replacement pledge a change of amount creates: once its charge succeeds it is
    # swapped in for this one, by the request or, after a crash, by the sweeper.
    replaces = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="replaced_by",
        help_text="The pledge whose amount this one changes.",
        db_index=False,  # partial, below: most pledges replace none
    )

    # True on the extra open pledges a backer already held on one campaign when "one open pledge
    # per backer per campaign" came in (set by migration 0005, never by the services): they keep
    # settling as before and are shown grouped, but stand outside the constraint. Every pledge
    # made since is subject to it.
    legacy_duplicate = models.BooleanField(default=False, db_default=False)
    # A late pledge (``pledges.late_pledges``): made after its campaign succeeded, for a reward of
    # the campaign's late offer; held in escrow until settlement's weekly batch releases it
    # (``settlement.late_release``), never counted in the campaign's total at the deadline.
    is_late = models.BooleanField(default=False, db_default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["backer", "idempotency_key"], name="pledge_idempotency_key_unique"),
            models.UniqueConstraint(
                fields=["backer", "campaign"],
                condition=Q(status__in=OPEN_STATUSES, legacy_duplicate=False),
                name="pledge_one_open_per_backer",
                violation_error_message="You already back this campaign: manage your pledge instead.",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="pledge_amount_positive"),
            models.CheckConstraint(
                condition=Q(shipping_amount__gte=0) & Q(shipping_amount__lt=F("amount")),
                name="pledge_shipping_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(from_balance__gte=0) & Q(from_balance__lte=F("amount")),
                name="pledge_from_balance_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(addons_amount__gte=0) & Q(amount__gt=F("addons_amount") + F("shipping_amount")),
                name="pledge_addons_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(unheld_amount__gte=0) & Q(unheld_amount__lt=F("amount")),
                name="pledge_unheld_within_amount",
            ),
        ]
        indexes = [
            # Settlement walks one campaign's held pledges in id order, batch by batch.
            models.Index(fields=["campaign", "status", "id"], name="pledge_campaign_status_id"),
            models.Index(fields=["status", "created_at"], name="pledge_status_created"),
            # Fraud signals: the pledges made with one card (most pledges have none recorded).
            models.Index(
                fields=["card_fingerprint", "created_at"],
                name="pledge_card_created",
                condition=~Q(card_fingerprint=""),
            ),
            # The foreign keys' lookups (``reward_id = x``, a tier's pledges; ``replaces_id = x``)
            # only ever ask for a value, so the pledges without one are left out of their indexes.
            models.Index(fields=["reward"], name="pledge_reward", condition=Q(reward__isnull=False)),
            models.Index(fields=["replaces"], name="pledge_replaces", condition=Q(replaces__isnull=False)),
        ]
        permissions = [("refund_pledge", "Can refund held pledges")]

    def __str__(self) -> str:
        return f"{format_amount(self.amount, self.currency)} to {self.campaign_id} ({self.status})"

    @property
    def amount_display(self) -> str:
        return format_amount(self.amount, self.currency)

    @property
    def card_amount(self) -> int:
        """Return what the card paid into escrow (and is refunded): ``held_amount`` without the balance's part.

        For a pledge paid over time, what its installments paid into escrow so far (at pledge: the first).
        """
        return self.amount - self.from_balance - self.unheld_amount

    @property
    def held_amount(self) -> int:
        """Return what escrow holds (held), released (released) or gave back for this pledge."""
        return self.amount - self.unheld_amount

    @property
    def pledged_amount(self) -> int:
        """Return what the backer pledged to the campaign itself: ``amount`` without its shipping and add-ons."""
        return self.amount - self.shipping_amount - self.addons_amount

    def needs_more_for(self, reward) -> bool:
        """Whether this pledge must grow to take ``reward``.

        The reward's price is compared with what was pledged to the campaign itself, without
        shipping and add-ons: the rule of ``pledge_create`` (shipping comes on top of the price).
        """
        return reward.minimum_amount > self.pledged_amount

    @property
    def amount_without_addons(self) -> int:
        """Return ``amount`` without the add-ons: what a change of amount names (add-ons come on top)."""
        return self.amount - self.addons_amount

    @property
    def shipping_display(self) -> str:
        """Return "$9.00 shipping to France" (in the active language), or "" for a pledge that ships nothing."""
        if not self.shipping_country:
            return ""
        return _("%(amount)s shipping to %(country)s") % {
            "amount": format_amount(self.shipping_amount, self.currency),
            "country": country_name(self.shipping_country),
        }

    @property
    def failure_reason(self) -> str:
        return failure_reason(self.failure_code, self.failure_message)


class PledgeAddOn(models.Model):
    """How many of one add-on a pledge carries, at the price it was added for.

    Written only by ``pledges.addons`` (with the pledge, or by a change of it), which keeps the
    pledge's ``addons_amount`` equal to the sum of its rows and claims and frees the add-on's
    units. A change to quantity 0 deletes the row.
    """

    pledge = models.ForeignKey(Pledge, on_delete=models.CASCADE, related_name="addon_lines")
    addon = models.ForeignKey(AddOn, on_delete=models.PROTECT, related_name="pledge_lines")
    quantity = models.PositiveSmallIntegerField()
    unit_price = models.BigIntegerField(help_text="In minor units of the pledge's currency.")

    class Meta:
        ordering = ["addon__price", "addon_id"]
        constraints = [
            models.UniqueConstraint(fields=["pledge", "addon"], name="pledge_addon_once"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="pledge_addon_quantity_positive"),
            models.CheckConstraint(condition=Q(unit_price__gt=0), name="pledge_addon_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.addon_id} on pledge {self.pledge_id}"

    @property
    def total(self) -> int:
        return self.quantity * self.unit_price

    @property
    def display(self) -> str:
        """Return "2 × Sticker pack ($10.00)" (in the active language)."""
        return _("%(quantity)s × %(addon)s (%(total)s)") % {
            "quantity": self.quantity,
            "addon": self.addon.title,
            "total": format_amount(self.total, self.pledge.currency),
        }


class PledgeStatusChange(models.Model):
    """An append-only record of one pledge transition: who, when, from, to, why."""

    pledge = models.ForeignKey(Pledge, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=10, choices=PledgeStatus.choices)
    to_status = models.CharField(max_length=10, choices=PledgeStatus.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.pledge_id}: {self.from_status} -> {self.to_status}"


class PledgeChangeStatus(models.TextChoices):
    PENDING = "pending", _("Being charged")
    DONE = "done", _("Done")
    FAILED = "failed", _("Not made")


class PledgeChange(models.Model):
    """One change of a held pledge's amount and/or reward: from, to, who, when, and the money moved.

    More money is charged as the difference (``charge_reference``); less is refunded as the
    difference, from the pledge's newest charges first (``refund_parts``: ``[charge reference,
    amount]`` pairs, each sent to the gateway under its own key). The pledge keeps its number.
    """

    pledge = models.ForeignKey(Pledge, on_delete=models.PROTECT, related_name="changes")
    from_amount = models.BigIntegerField()
    to_amount = models.BigIntegerField()
    from_reward = models.ForeignKey(RewardTier, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    to_reward = models.ForeignKey(RewardTier, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=PledgeChangeStatus.choices, default=PledgeChangeStatus.PENDING)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Chosen by the client, per pledge: a retry with the same key returns this change.
    idempotency_key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=255)
    charge_reference = models.CharField(max_length=64, blank=True)
    # The processor's fingerprint of the card that paid the difference (as ``Pledge.card_fingerprint``).
    card_fingerprint = models.CharField(max_length=64, blank=True, default="")
    refund_parts = models.JSONField(default=list, blank=True)
    # The shipping the pledge had before and has after (both included in the amounts): a change
    # of reward or country is quoted the new reward's shipping to the country; otherwise the
    # backer keeps the shipping they agreed to, whatever the reward's rules say now.
    from_shipping_country = models.CharField(max_length=2, blank=True, default="", db_default="")
    to_shipping_country = models.CharField(max_length=2, blank=True, default="", db_default="")
    from_shipping_amount = models.BigIntegerField(default=0, db_default=0)
    to_shipping_amount = models.BigIntegerField(default=0, db_default=0)
    # The add-ons the change sets, ``{"<add-on id>": [quantity, unit price], ...}`` for every
    # add-on the pledge carries after it; null: the change leaves them as they are.
    addons_to = models.JSONField(null=True, blank=True)
    failure_code = models.CharField(max_length=40, blank=True)
    failure_message = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["pledge", "idempotency_key"], name="pledge_change_key_unique"),
            # One change at a time: a second one waits until the first's charge is settled.
            models.UniqueConstraint(fields=["pledge"], condition=Q(status="pending"), name="pledge_change_one_pending"),
            models.CheckConstraint(condition=Q(to_amount__gt=0), name="pledge_change_amount_positive"),
            models.CheckConstraint(
                condition=Q(to_shipping_amount__gte=0) & Q(to_shipping_amount__lt=F("to_amount")),
                name="pledge_change_shipping_within_amount",
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="pledge_change_status_created")]

    def __str__(self) -> str:
        return f"{self.pledge_id}: {self.from_amount} -> {self.to_amount} ({self.status})"

    @property
    def difference(self) -> int:
        return self.to_amount - self.from_amount

    @property
    def shipping_changed(self) -> bool:
        return (self.from_shipping_country, self.from_shipping_amount) != (
            self.to_shipping_country,
            self.to_shipping_amount,
        )

    @property
    def from_shipping_display(self) -> str:
        return self._shipping_text(self.from_shipping_country, self.from_shipping_amount)

    @property
    def to_shipping_display(self) -> str:
        return self._shipping_text(self.to_shipping_country, self.to_shipping_amount)

    def _shipping_text(self, country: str, amount: int) -> str:
        """Return "$9.00 to France" (in the active language), or "no shipping"."""
        if not country:
            return str(_("no shipping"))
        return _("%(amount)s to %(country)s") % {
            "amount": format_amount(amount, self.pledge.currency),
            "country": country_name(country),
        }

    @property
    def from_amount_display(self) -> str:
        return format_amount(self.from_amount, self.pledge.currency)

    @property
    def to_amount_display(self) -> str:
        return format_amount(self.to_amount, self.pledge.currency)


class InstallmentStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    CHARGING = "charging", _("Being charged")
    # Charged after the campaign's release; its payout to the initiator is being recorded.
    CHARGED = "charged", _("Being paid out")
    PAID = "paid", _("Paid")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class InstallmentPaidTo(models.TextChoices):
    ESCROW = "escrow", _("Held in escrow")
    INITIATOR = "initiator", _("Paid to the initiator")


# Installments that still have to be paid: a plan with none of these is paid in full.
INSTALLMENT_OPEN_STATUSES = (InstallmentStatus.SCHEDULED, InstallmentStatus.CHARGING, InstallmentStatus.CHARGED)


def pledge_paid_in_full_q(prefix: str = "") -> Q:
    """Return the filter of pledges paid in full: not paid over time, or with no installment left to pay.

    The one rule that surveys and shipping wait on (``fulfilment``). ``prefix`` is the lookup
    path from the queried model to the pledge ("pledge__"), "" for a Pledge queryset.
    """
    outer = OuterRef(f"{prefix}pk" if prefix else "pk")
    unpaid = PledgeInstallment.objects.filter(pledge_id=outer, status__in=INSTALLMENT_OPEN_STATUSES)
    return Q(**{f"{prefix}installment_plan": False}) | ~Exists(unpaid)


class PledgeInstallment(models.Model):
    """One of the 3 monthly parts of a pledge paid over time: when due, how much, how it went.

    A row, not a broker task: beat's ``charge_due_installments`` claims the rows due with SKIP
    LOCKED (``pledges.installments``). The first is paid by the pledge's own charge and hold.
    Each attempt is charged under its own key (``installment_charge_key``); a paid installment
    names its one ledger transaction.
    """

    pledge = models.ForeignKey(Pledge, on_delete=models.PROTECT, related_name="installments")
    number = models.PositiveSmallIntegerField()
    amount = models.BigIntegerField(help_text="In minor units of the pledge's currency.")
    due_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=InstallmentStatus.choices, default=InstallmentStatus.SCHEDULED)
    # Charges tried (each under its own key) and how many of them were declined (3: the plan ends).
    attempts = models.PositiveSmallIntegerField(default=0)
    declines = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # The sandbox token of the card the backer chose at pledge (a processor's saved payment method).
    payment_token = models.CharField(max_length=255, blank=True)
    charge_reference = models.CharField(max_length=64, blank=True)
    paid_to = models.CharField(max_length=10, choices=InstallmentPaidTo.choices, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    ledger_transaction = models.ForeignKey(
        "escrow.LedgerTransaction", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    failure_code = models.CharField(max_length=40, blank=True)
    failure_message = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["pledge_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["pledge", "number"], name="pledge_installment_number_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="pledge_installment_amount_positive"),
            models.CheckConstraint(
                condition=~Q(status="paid") | Q(ledger_transaction__isnull=False),
                name="pledge_installment_paid_has_transaction",
            ),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="pledge_installment_due")]

    def __str__(self) -> str:
        return f"{self.number}/3 of pledge {self.pledge_id}: {self.amount} ({self.status})"

    @property
    def amount_display(self) -> str:
        return format_amount(self.amount, self.pledge.currency)

    @property
    def failure_reason(self) -> str:
        return failure_reason(self.failure_code, self.failure_message)
