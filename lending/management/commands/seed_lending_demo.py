"""Demo loans for the site's demo data: one debt campaign raising, one repaying with payments, one late.

A lender of the repaying loan has withdrawn half of what it paid them, so My loans shows a
balance and a paid withdrawal; another (``RELENDER``, who had not lent to the raising loan) has
re-lent all that the repayments paid them to the raising loan, from their balance.

Runs after ``seed_demo`` (which calls it) and uses its people: the initiator borrows, the backers
lend, staff approve. Everything goes through the real services and settlement; only the dates of
the late loan's schedule are moved two months back, so that it is late today. Safe to run again:
it does nothing once a debt campaign exists.
"""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from lending.models import Installment, Loan, RepaymentType
from lending.selectors import lender_balances
from lending.services import lender_withdraw, loan_repay, loan_terms_set, loans_assess_late
from pledges.services import pledge_create
from projects.demo_pictures import demo_picture
from projects.media import campaign_cover_set
from projects.models import Campaign, Category, FundingModel
from projects.services import campaign_approve, campaign_create, campaign_submit_for_review
from settlement.services import campaigns_close_due, settlement_run
from settlement.verification import ledger_verify

LOANS = [
    # title, goal (USD cents), rate bps, months, repayment type, share pledged, fate
    ("Bakery oven for the corner shop: a 12-month loan", 1_200_000, 900, 12, RepaymentType.ANNUITY, 0.55, "raising"),
    ("Second delivery van for a farm co-op", 800_000, 1100, 18, RepaymentType.EQUAL_PRINCIPAL, 1.0, "repaying"),
    ("Solar panels for a village workshop", 500_000, 1400, 6, RepaymentType.ANNUITY, 1.0, "late"),
]

RELENDER = "backer2"  # a demo login: lends to the raising loan only from what repayments paid them

STORY = (
    "We are borrowing from our community instead of a bank. Every month we repay part of the loan "
    "with interest, and each lender receives their share of every repayment."
)


class Command(BaseCommand):
    help = "Create demo debt campaigns and loans (once), on top of seed_demo's people."

    def handle(self, *args, **options):
        if Campaign.objects.filter(funding_model=FundingModel.DEBT).exists():
            self.stdout.write("Demo loans already present; nothing to do.")
            return
        try:
            staff = User.objects.get(username="admin")
            initiator = User.objects.get(username="initiator")
        except User.DoesNotExist:
            raise CommandError("Run seed_demo first: the demo loans use its people.") from None
        backers = list(User.objects.filter(username__startswith="backer").order_by("username"))
        relender = next(b for b in backers if b.username == RELENDER)
        category = Category.objects.order_by("pk").first()
        raising = None
        for title, goal, rate, months, kind, share, fate in LOANS:
            campaign = self._campaign(initiator, staff, category, title, goal, rate, months, kind)
            if fate == "raising":
                self._lend(campaign, [b for b in backers if b != relender], int(goal * share))
                raising = campaign
                continue
            self._lend(campaign, backers, int(goal * share))
            Campaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - timedelta(minutes=1))
            for campaign_id in campaigns_close_due(enqueue_settlement=False):
                settlement_run(campaign_id=campaign_id)
            loan = Loan.objects.get(campaign=campaign)
            if fate == "repaying":
                for installment in loan.installments.order_by("number")[:3]:
                    loan_repay(
                        loan=loan, actor=initiator, amount=installment.owed, idempotency_key=f"demo-{installment.pk}"
                    )
                self._withdraw_half(backers[0], campaign.currency)
                self._relend_all(relender, raising)
            else:
                # Demo only: the loan was funded two months ago and its first installment never paid.
                Installment.objects.filter(loan=loan).update(due_date=F("due_date") - timedelta(days=61))
                loans_assess_late(today=timezone.localdate())
        problems = ledger_verify()
        if problems:
            raise RuntimeError(f"Demo loans broke the ledger: {problems}")
        self.stdout.write(self.style.SUCCESS("Demo loans ready: one raising, one repaying, one late."))

    def _campaign(self, initiator, staff, category, title, goal, rate, months, kind):
        campaign = campaign_create(
            initiator=initiator,
            title=title,
            summary=title,
            description=STORY,
            category=category,
            goal=goal,
            risks="Sales could be slower than planned; the repayment schedule leaves room for a slow quarter.",
        )
        # The campaign forms and API do not offer debt yet (they take no loan terms): set it here.
        Campaign.objects.filter(pk=campaign.pk).update(funding_model=FundingModel.DEBT)
        campaign.refresh_from_db()
        loan_terms_set(campaign=campaign, actor=initiator, rate_bps=rate, term_months=months, repayment_type=kind)
        campaign_cover_set(
            campaign=campaign,
            actor=initiator,
            upload=demo_picture(title=title, category_slug=category.slug),
            alt=f"{title}: the cover picture",
        )
        campaign_submit_for_review(campaign=campaign, actor=initiator)
        return campaign_approve(campaign=campaign, reviewer=staff, note="Terms are clear.")

    def _withdraw_half(self, lender, currency):
        """The first lender takes half of what the repayments brought them out to their bank."""
        balance = next(b for b in lender_balances(user=lender) if b.currency == currency)
        lender_withdraw(
            lender=lender, currency=currency, amount=balance.available // 2, idempotency_key="demo-withdrawal"
        )

    def _relend_all(self, lender, campaign):
        """The re-lender lends all that the repayments paid them to the raising loan, without a card."""
        balance = next(b for b in lender_balances(user=lender) if b.currency == campaign.currency)
        pledge_create(
            backer=lender,
            campaign=campaign,
            amount=balance.available,
            currency=campaign.currency,
            payment_token="",
            from_balance=balance.available,
            idempotency_key=f"demo-relend-{campaign.pk}",
        )

    def _lend(self, campaign, backers, target):
        amounts = [target // len(backers)] * len(backers)
        amounts[0] += target - sum(amounts)
        for n, (backer, amount) in enumerate(zip(backers, amounts, strict=True)):
            pledge_create(
                backer=backer,
                campaign=campaign,
                amount=amount,
                currency=campaign.currency,
                payment_token="tok_visa",  # noqa: S106 - the sandbox test card, not a secret
                idempotency_key=f"demo-loan-{campaign.pk}-{n}",
            )
