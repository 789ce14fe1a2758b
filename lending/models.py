"""Loans of debt campaigns: terms set before launch, the loan, its schedule, repayments, payouts.

Amounts are integers in the minor unit of the loan's currency. The schedule's rows and every
repayment and payout line are written by ``lending.services`` and never edited by hand: admin
shows them read-only.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crowdfund_site.money import CURRENCY_CHOICES, format_amount
from projects.models import Campaign

from . import schedules

MAX_RATE_BPS = 3600
MAX_TERM_MONTHS = 60
MAX_GRACE_MONTHS = 6


class RepaymentType(models.TextChoices):
    ANNUITY = schedules.ANNUITY, _("Equal payments (annuity)")
    EQUAL_PRINCIPAL = schedules.EQUAL_PRINCIPAL, _("Equal principal")
    BULLET = schedules.BULLET, _("Interest only, principal at the end")


class LoanTerms(models.Model):
    """What a debt campaign's lenders are promised; fixed once the campaign leaves draft."""

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="loan_terms")
    rate_bps = models.PositiveIntegerField(help_text="Annual interest rate in basis points (0 to 3,600).")
    term_months = models.PositiveSmallIntegerField(help_text="1 to 60 months.")
    repayment_type = models.CharField(max_length=20, choices=RepaymentType.choices, default=RepaymentType.ANNUITY)
    grace_months = models.PositiveSmallIntegerField(default=0, help_text="Interest-only months first (0 to 6).")
    servicing_fee_bps = models.PositiveIntegerField(
        help_text="Basis points a year of the outstanding principal, taken from each installment."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "loan terms"
        constraints = [
            models.CheckConstraint(condition=Q(rate_bps__lte=MAX_RATE_BPS), name="loan_terms_rate_range"),
            models.CheckConstraint(
                condition=Q(term_months__gte=1, term_months__lte=MAX_TERM_MONTHS), name="loan_terms_term_range"
            ),
            models.CheckConstraint(
                condition=Q(grace_months__lte=MAX_GRACE_MONTHS, grace_months__lt=F("term_months")),
                name="loan_terms_grace_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.apr} % over {self.term_months} months ({self.get_repayment_type_display()})"

    @property
    def apr(self) -> str:
        """Return the annual rate in percent as shown to lenders: 1250 -> "12.5"."""
        return f"{self.rate_bps / 100:g}"


class LoanStatus(models.TextChoices):
    FUNDED = "funded", _("Funded")
    REPAYING = "repaying", _("Repaying")
    LATE = "late", _("Late")
    DEFAULTED = "defaulted", _("Defaulted")
    REPAID = "repaid", _("Repaid")
    WRITTEN_OFF = "written_off", _("Written off")


# Every allowed move of a loan; anything else is refused by the services. A defaulted loan still
# takes recoveries, and one that recovers everything is repaid.
LOAN_TRANSITIONS: dict[str, set[str]] = {
    LoanStatus.FUNDED: {LoanStatus.REPAYING},
    LoanStatus.REPAYING: {LoanStatus.LATE, LoanStatus.REPAID},
    LoanStatus.LATE: {LoanStatus.REPAYING, LoanStatus.REPAID, LoanStatus.DEFAULTED, LoanStatus.WRITTEN_OFF},
    LoanStatus.DEFAULTED: {LoanStatus.REPAID, LoanStatus.WRITTEN_OFF},
}
# Statuses in which the borrower (or a recovery) can still pay.
PAYABLE_STATUSES = {LoanStatus.REPAYING, LoanStatus.LATE, LoanStatus.DEFAULTED}


class Loan(models.Model):
    """The loan of a debt campaign that reached its goal: one borrower, many lenders."""

    campaign = models.OneToOneField(Campaign, on_delete=models.PROTECT, related_name="loan")
    borrower = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="loans")
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    principal = models.BigIntegerField(help_text="What the lenders lent, in minor units; what the borrower owes.")
    rate_bps = models.PositiveIntegerField()
    term_months = models.PositiveSmallIntegerField()
    repayment_type = models.CharField(max_length=20, choices=RepaymentType.choices)
    grace_months = models.PositiveSmallIntegerField()
    servicing_fee_bps = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=LoanStatus.choices, default=LoanStatus.FUNDED, db_index=True)
    # Running totals paid out to the lenders, one per kind of money: each lender's share of each
    # stays within one minor unit of exact (lending.allocation).
    principal_distributed = models.BigIntegerField(default=0)
    income_distributed = models.BigIntegerField(default=0, help_text="Interest and late fees paid out.")
    fees_collected = models.BigIntegerField(default=0, help_text="Servicing fees kept by the platform.")
    start_date = models.DateField(null=True, blank=True, help_text="Installments fall due monthly from here.")
    # The borrower's saved payment method, charged on each due date (blank: they pay by hand).
    autopay_token = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("manage_loans", "Can mark loans defaulted or written off and record recoveries")]
        constraints = [
            models.CheckConstraint(condition=Q(principal__gt=0), name="loan_principal_positive"),
            models.CheckConstraint(
                condition=Q(principal_distributed__gte=0, principal_distributed__lte=F("principal")),
                name="loan_principal_distributed_range",
            ),
        ]

    def __str__(self) -> str:
        return f"Loan {self.pk} of {format_amount(self.principal, self.currency)} for {self.campaign}"

    @property
    def outstanding_principal(self) -> int:
        return self.principal - self.principal_distributed

    def terms_schedule(self) -> list[schedules.ScheduledInstallment]:
        """Return the schedule the loan's terms give: what was stored at funding, before any early payoff."""
        return schedules.schedule_build(
            principal=self.principal,
            rate_bps=self.rate_bps,
            term_months=self.term_months,
            repayment_type=self.repayment_type,
            grace_months=self.grace_months,
            fee_bps=self.servicing_fee_bps,
            start=self.start_date,
        )

    @property
    def autopay_on(self) -> bool:
        """Return whether each installment is charged to the saved payment method on its due date."""
        return bool(self.autopay_token)

    @property
    def takes_payments(self) -> bool:
        return self.status in PAYABLE_STATUSES


class LoanStatusChange(models.Model):
    loan = models.ForeignKey(Loan, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=12, choices=LoanStatus.choices)
    to_status = models.CharField(max_length=12, choices=LoanStatus.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.loan_id}: {self.from_status} -> {self.to_status}"


class LoanLender(models.Model):
    """One lender's share of a loan, and the running totals of what they have received."""

    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="lenders")
    lender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="loan_shares")
    pledge = models.OneToOneField("pledges.Pledge", on_delete=models.PROTECT, related_name="loan_share")
    principal = models.BigIntegerField(help_text="What this lender lent.")
    principal_received = models.BigIntegerField(default=0)
    income_received = models.BigIntegerField(default=0, help_text="Interest and late fees received.")

    class Meta:
        ordering = ["loan", "id"]
        constraints = [
            models.UniqueConstraint(fields=["loan", "lender"], name="loan_lender_unique"),
            models.CheckConstraint(condition=Q(principal__gt=0), name="loan_lender_principal_positive"),
            models.CheckConstraint(
                condition=Q(principal_received__gte=0, principal_received__lte=F("principal")),
                name="loan_lender_principal_received_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.lender} lent {format_amount(self.principal, self.loan.currency)}"


class Installment(models.Model):
    """One due date of a loan's schedule: what is due, and how much of it has been paid."""

    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="installments")
    number = models.PositiveSmallIntegerField()
    due_date = models.DateField()
    principal = models.BigIntegerField()
    interest = models.BigIntegerField()
    fee = models.BigIntegerField()
    late_fee = models.BigIntegerField(default=0)
    principal_paid = models.BigIntegerField(default=0)
    interest_paid = models.BigIntegerField(default=0)
    fee_paid = models.BigIntegerField(default=0)
    late_fee_paid = models.BigIntegerField(default=0)
    paid_at = models.DateTimeField(null=True, blank=True, help_text="When the last of it was paid.")

    class Meta:
        ordering = ["loan", "number"]
        constraints = [
            models.UniqueConstraint(fields=["loan", "number"], name="installment_number_unique"),
            models.CheckConstraint(
                condition=Q(principal__gte=0, interest__gte=0, fee__gte=0, late_fee__gte=0),
                name="installment_amounts_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(
                    principal_paid__lte=F("principal"),
                    interest_paid__lte=F("interest"),
                    fee_paid__lte=F("fee"),
                    late_fee_paid__lte=F("late_fee"),
                ),
                name="installment_paid_at_most_due",
            ),
        ]

    def __str__(self) -> str:
        return f"Installment {self.number} of loan {self.loan_id}, due {self.due_date}"

    @property
    def total(self) -> int:
        return self.principal + self.interest + self.fee + self.late_fee

    @property
    def owed(self) -> int:
        return self.total - self.principal_paid - self.interest_paid - self.fee_paid - self.late_fee_paid


class RepaymentKind(models.TextChoices):
    REPAYMENT = "repayment", _("Repayment")
    RECOVERY = "recovery", _("Recovery")


class Repayment(models.Model):
    """Money the borrower (or a recovery) paid on a loan, and how it was split."""

    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="repayments")
    kind = models.CharField(max_length=10, choices=RepaymentKind.choices, default=RepaymentKind.REPAYMENT)
    amount = models.BigIntegerField()
    fee = models.BigIntegerField(help_text="Servicing fee kept by the platform.")
    interest = models.BigIntegerField()
    late_fee = models.BigIntegerField()
    principal = models.BigIntegerField()
    # Chosen by the payer (or the service), per loan: a retry with the same key returns this repayment.
    idempotency_key = models.CharField(max_length=255)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["loan", "id"]
        constraints = [
            models.UniqueConstraint(fields=["loan", "idempotency_key"], name="repayment_idempotency_key_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="repayment_amount_positive"),
            models.CheckConstraint(
                condition=Q(amount=F("fee") + F("interest") + F("late_fee") + F("principal")),
                name="repayment_parts_sum_to_amount",
            ),
        ]

    def __str__(self) -> str:
        return f"{format_amount(self.amount, self.loan.currency)} on loan {self.loan_id}"

    @property
    def to_lenders(self) -> int:
        return self.amount - self.fee


class LenderPayout(models.Model):
    """One lender's part of one repayment."""

    repayment = models.ForeignKey(Repayment, on_delete=models.PROTECT, related_name="payouts")
    share = models.ForeignKey(LoanLender, on_delete=models.PROTECT, related_name="payouts")
    principal = models.BigIntegerField()
    income = models.BigIntegerField(help_text="Interest and late fees.")

    class Meta:
        ordering = ["repayment", "id"]
        constraints = [
            models.UniqueConstraint(fields=["repayment", "share"], name="lender_payout_unique"),
            models.CheckConstraint(condition=Q(principal__gte=0, income__gte=0), name="lender_payout_not_negative"),
        ]

    def __str__(self) -> str:
        return f"Payout {self.pk} of repayment {self.repayment_id}"

    @property
    def amount(self) -> int:
        return self.principal + self.income


class WithdrawalStatus(models.TextChoices):
    PENDING = "pending", _("Being paid out")
    PAID = "paid", _("Paid")
    FAILED = "failed", _("Failed")


class Withdrawal(models.Model):
    """A lender's request to take money out of their balance in one currency, paid through the gateway.

    Made pending (which already holds the amount back from the balance), paid out, then posted
    and marked paid, or failed with nothing posted. Written only by ``lending.services.withdrawals``.
    """

    lender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="withdrawals")
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    amount = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=WithdrawalStatus.choices, default=WithdrawalStatus.PENDING)
    idempotency_key = models.CharField(max_length=255)
    gateway_reference = models.CharField(max_length=100, blank=True)
    error_code = models.CharField(max_length=50, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["created_at"], condition=Q(status="pending"), name="withdrawal_pending")]
        constraints = [
            models.UniqueConstraint(fields=["lender", "idempotency_key"], name="withdrawal_idempotency_key_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="withdrawal_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"Withdrawal {self.pk} of {format_amount(self.amount, self.currency)}"


class LenderProfile(models.Model):
    """What a lender declares for the investor limits (``LENDING_INVESTOR_POLICY``), per user."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lender_profile")
    # reg_cf: an accredited investor; ecsp: a sophisticated investor. Either lends without limits.
    accredited = models.BooleanField(default=False)
    knowledge_test_passed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Lender profile of {self.user}"


class LenderDeclaration(models.Model):
    """A lender's declared yearly income and net worth in one currency (limits are never converted)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lender_declarations")
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    annual_income = models.BigIntegerField(help_text="Minor units of the currency.")
    net_worth = models.BigIntegerField(help_text="Minor units of the currency.")
    declared_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["user", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["user", "currency"], name="lender_declaration_per_currency"),
            models.CheckConstraint(
                condition=Q(annual_income__gte=0, net_worth__gte=0), name="lender_declaration_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.currency}"


class LendingConsent(models.Model):
    """A lender's explicit consent, after the risk warning, to lend up to ``amount`` to one campaign."""

    lender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lending_consents")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="lending_consents")
    amount = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["lender", "campaign"]
        constraints = [
            models.UniqueConstraint(fields=["lender", "campaign"], name="lending_consent_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="lending_consent_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.lender} consents to lend {format_amount(self.amount, self.campaign.currency)}"


class DueWorkKind(models.TextChoices):
    REMINDER_7_DAYS = "reminder_7d", _("Reminder 7 days before")
    REMINDER_1_DAY = "reminder_1d", _("Reminder 1 day before")
    CHARGE = "charge", _("Charge the saved payment method")
    CHARGE_FAILED_NOTICE = "charge_failed", _("Notice of a failed charge")


class LoanDueWork(models.Model):
    """One piece of time-driven work on an installment: a reminder, the automatic charge, a notice.

    Rows are made with the schedule (and a notice per failed charge); beat's worker claims due
    ones with ``select_for_update(skip_locked=True)`` and marks them done, so each happens once.
    A charge in flight keeps its repayment key in ``pending_key`` and pushes ``due_at`` a lease
    ahead: a worker killed mid-charge is retried with the same key, which charges nothing twice.
    """

    installment = models.ForeignKey(Installment, on_delete=models.CASCADE, related_name="due_work")
    kind = models.CharField(max_length=16, choices=DueWorkKind.choices)
    attempt = models.PositiveSmallIntegerField(default=0, help_text="Charges tried; for a notice, which one failed.")
    due_at = models.DateTimeField()
    pending_key = models.CharField(max_length=100, blank=True)
    pending_amount = models.BigIntegerField(default=0)
    last_error = models.CharField(max_length=255, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [
            models.Index(fields=["due_at", "id"], condition=Q(done_at__isnull=True), name="loan_due_work_pending")
        ]
        constraints = [
            models.UniqueConstraint(fields=["installment", "kind", "attempt"], name="loan_due_work_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of installment {self.installment_id}"
