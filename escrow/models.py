"""Double-entry ledger and the sandbox payment gateway's records.

Nothing here knows about campaigns or pledges: accounts have codes, transactions have an
idempotency key and a free-form reference ("pledge:42"), entries carry signed amounts in minor
units. Ledger rows are append-only: the model, its queryset and (on PostgreSQL) a database
trigger all refuse updates and deletes; a correction is a new transaction.
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from crowdfund_site.money import CURRENCY_CHOICES


class LedgerImmutableError(Exception):
    """Raised on any attempt to change or remove a ledger row."""


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise LedgerImmutableError("Ledger rows are append-only; post a correcting transaction.")

    def delete(self):
        raise LedgerImmutableError("Ledger rows are append-only; post a correcting transaction.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise LedgerImmutableError("Ledger rows are append-only; post a correcting transaction.")


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise LedgerImmutableError("Ledger rows are append-only; post a correcting transaction.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise LedgerImmutableError("Ledger rows are append-only; post a correcting transaction.")


class AccountKind(models.TextChoices):
    FUNDING_SOURCE = "funding_source", "Funding source (money from outside, e.g. a backer's card)"
    ESCROW = "escrow", "Escrow (held for a purpose)"
    PAYABLE = "payable", "Payable (owed to a payee)"
    REVENUE = "revenue", "Platform revenue"
    PAYOUT = "payout", "Paid out (money that left to a payee's bank)"


class LedgerAccount(models.Model):
    """A named bucket of money in one currency. Its balance is the sum of its entries."""

    code = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=AccountKind.choices)
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["code"]
        constraints = [models.UniqueConstraint(fields=["code", "currency"], name="ledger_account_code_currency_unique")]

    def __str__(self) -> str:
        return f"{self.code} ({self.currency})"


class TransactionKind(models.TextChoices):
    HOLD = "hold", "Hold in escrow"
    RELEASE = "release", "Release from escrow"
    REFUND = "refund", "Refund"
    FEE = "fee", "Platform fee"
    PAYOUT = "payout", "Payout"
    ADJUSTMENT = "adjustment", "Adjustment"


class LedgerTransaction(AppendOnlyModel):
    """One movement of money: entries that sum to zero per currency, posted exactly once."""

    kind = models.CharField(max_length=20, choices=TransactionKind.choices)
    idempotency_key = models.CharField(max_length=200, unique=True)
    reference = models.CharField(max_length=120)
    description = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [
            # One index for both ways the reference is asked for, ``= 'pledge:42'`` and
            # ``LIKE 'pledge:%'`` (``db_index=True`` makes two on PostgreSQL, and every posting
            # writes each): the pattern operator class answers both whatever the collation.
            models.Index(fields=["reference"], name="ledger_txn_reference", opclasses=["varchar_pattern_ops"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.idempotency_key}"


class LedgerEntry(AppendOnlyModel):
    """One leg of a transaction: a signed amount added to an account's balance."""

    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="entries")
    amount = models.BigIntegerField(help_text="Minor units; positive adds to the account's balance.")
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "ledger entries"
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="ledger_entry_not_zero")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.amount:+d} {self.currency}"


class OperationKind(models.TextChoices):
    CHARGE = "charge", "Charge"
    REFUND = "refund", "Refund"
    PAYOUT = "payout", "Payout"


class OperationStatus(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    DECLINED = "declined", "Declined"
    FAILED = "failed", "Failed (transient, may be retried)"


class GatewayOperation(models.Model):
    """What the sandbox payment processor did for one idempotency key.

    It plays the role of the processor's own records: a repeated key returns this row's result.
    """

    kind = models.CharField(max_length=10, choices=OperationKind.choices)
    idempotency_key = models.CharField(max_length=200, unique=True)
    status = models.CharField(max_length=10, choices=OperationStatus.choices)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    token = models.CharField(max_length=64, blank=True)
    destination = models.CharField(max_length=120, blank=True)
    # Only refunds name a charge: its index (partial, below) leaves out the charges themselves.
    charge = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="refunds", db_index=False
    )
    refunded_amount = models.BigIntegerField(default=0)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="gateway_amount_positive"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=models.F("amount")),
                name="gateway_refund_within_charge",
            ),
        ]
        indexes = [models.Index(fields=["charge"], name="gateway_op_charge", condition=Q(charge__isnull=False))]

    def __str__(self) -> str:
        return f"{self.kind} {self.reference} {self.status}"

    @property
    def reference(self) -> str:
        prefix = {"charge": "ch", "refund": "re", "payout": "po"}[self.kind]
        return f"{prefix}_{self.pk}"


class LedgerCheckpoint(AppendOnlyModel):
    """A seal over the ledger transactions after the previous checkpoint, up to ``last_transaction_id``.

    ``hash`` is the SHA-256 of the previous checkpoint's hash and the digests of the transactions
    it covers (with their entries), in id order, so changing, adding or removing any sealed row
    changes every hash from there on. ``digests`` keeps the first bytes of each transaction's
    digest, in id order, so that verification can name the transaction that changed.
    ``escrow.checkpoints`` seals and verifies them; like the ledger, they are append-only.
    """

    sequence = models.PositiveBigIntegerField(unique=True)
    previous_hash = models.CharField(max_length=64, blank=True, help_text="Empty for the first checkpoint.")
    first_transaction_id = models.BigIntegerField()
    last_transaction_id = models.BigIntegerField(unique=True)
    transaction_count = models.PositiveIntegerField()
    sealed_total = models.PositiveBigIntegerField(help_text="Transactions sealed by this and every earlier checkpoint.")
    digests = models.BinaryField()
    hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["sequence"]
        constraints = [
            models.CheckConstraint(
                condition=Q(first_transaction_id__lte=models.F("last_transaction_id")), name="checkpoint_range_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"checkpoint {self.sequence} ({self.hash[:12]})"
