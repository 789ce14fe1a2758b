"""Investor limits on lending, a policy chosen by ``LENDING_INVESTOR_POLICY``: reg_cf, ecsp or none.

``lender_limit_check`` runs in the pledge path of every debt campaign (registered with
``pledges.pledge_checks`` by the app config) before the card is charged, and refuses with a
message that says which rule applies and what the lender can do. Amounts are never converted:
each currency has its own configured limits, and a lender declares income and net worth per
currency.

- ``reg_cf`` (US Regulation Crowdfunding, 2021 amounts): over any rolling 12 months a lender may
  lend, on this platform, the greater of the floor (2,500) or 5 % of the greater of declared
  income and net worth if either is under the threshold (124,000); 10 % of the greater, at most
  the cap (124,000), if both are at least the threshold; accredited investors have no limit.
- ``ecsp`` (EU Regulation 2020/1503): a non-sophisticated lender must have passed the entry
  knowledge test in the last 2 years, and must consent, after a warning, to lend one campaign
  more than the greater of the configured amount (1,000) or 5 % of their net worth. They may
  withdraw a pledge without reason for 4 calendar days, so a campaign closing sooner than that
  takes no new pledge from them (before the deadline a pledge can always be cancelled).

Concurrent pledges by the same lender to two campaigns are checked independently; the limit
reads the pledges already reserved, so at most the in-flight ones can overlap.
"""

import contextlib
import datetime

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User
from accounts.services import audit_record
from crowdfund_site.exceptions import InvalidInput, NotAllowed
from crowdfund_site.money import check_amount, currency_exponent, format_amount
from pledges.models import COUNTED_STATUSES, Pledge, PledgeStatus
from projects.models import Campaign, FundingModel

from ..models import LenderDeclaration, LenderProfile, LendingConsent

ROLLING_DAYS = 365
KNOWLEDGE_TEST_VALID_YEARS = 2
ECSP_WITHDRAWAL_DAYS = 4
POLICIES = ("reg_cf", "ecsp", "none")

# The entry knowledge test: question id -> (question, choices, the right choice).
KNOWLEDGE_TEST = {
    "loss": (
        gettext_lazy("If the borrower stops paying, what can happen to the money you lent?"),
        {
            "a": gettext_lazy("Nothing: it is guaranteed"),
            "b": gettext_lazy("You can lose some or all of it"),
            "c": gettext_lazy("It is insured"),
        },
        "b",
    ),
    "liquidity": (
        gettext_lazy("Can you get your money back before the loan's term ends?"),
        {
            "a": gettext_lazy("Usually not: it comes back with the repayments"),
            "b": gettext_lazy("Yes, at any time"),
            "c": gettext_lazy("Yes, monthly"),
        },
        "a",
    ),
    "spread": (
        gettext_lazy("What lowers the risk of losing much of your savings?"),
        {
            "a": gettext_lazy("Lending it all to one loan"),
            "b": gettext_lazy("Lending small parts to many loans"),
            "c": gettext_lazy("Higher rates"),
        },
        "b",
    ),
}


def _minor(units: int, currency: str) -> int:
    return units * 10 ** currency_exponent(currency)


def reg_cf_limit(*, annual_income: int, net_worth: int, currency: str) -> int:
    """Return a non-accredited lender's 12-month limit under Regulation Crowdfunding, in minor units."""
    limits = settings.LENDING_REG_CF_LIMITS.get(currency)
    if limits is None:
        raise NotAllowed(
            _("Lending in %(currency)s is not open under this platform's investor limits.") % {"currency": currency},
            code="no_limits_for_currency",
        )
    threshold = _minor(limits["threshold"], currency)
    greater = max(annual_income, net_worth)
    if annual_income >= threshold and net_worth >= threshold:
        return min(greater * 10 // 100, _minor(limits["cap"], currency))
    return max(_minor(limits["floor"], currency), greater * 5 // 100)


def ecsp_consent_threshold(*, net_worth: int, currency: str) -> int:
    """Return the amount above which a non-sophisticated lender must consent (the greater of two)."""
    fixed = settings.LENDING_ECSP_CONSENT_ABOVE.get(currency)
    if fixed is None:
        raise NotAllowed(
            _("Lending in %(currency)s is not open under this platform's investor limits.") % {"currency": currency},
            code="no_limits_for_currency",
        )
    return max(_minor(fixed, currency), net_worth * 5 // 100)


def lent_in_last_year(*, lender, currency: str, now: datetime.datetime | None = None, exclude_pledge=None) -> int:
    """Return what ``lender`` lent (pending, held or released debt pledges) in ``currency`` over 12 months."""
    since = (now or timezone.now()) - datetime.timedelta(days=ROLLING_DAYS)
    pledges = Pledge.objects.filter(
        backer=lender,
        currency=currency,
        campaign__funding_model=FundingModel.DEBT,
        status__in=[*COUNTED_STATUSES, PledgeStatus.PENDING],
        created_at__gte=since,
    )
    if exclude_pledge is not None:
        pledges = pledges.exclude(pk=exclude_pledge.pk)
    return pledges.aggregate(total=Sum("amount"))["total"] or 0


def knowledge_test_valid(profile: LenderProfile | None, now: datetime.datetime | None = None) -> bool:
    """Return whether the lender passed the knowledge test within the last 2 years."""
    if profile is None or profile.knowledge_test_passed_at is None:
        return False
    passed = profile.knowledge_test_passed_at
    try:
        expires = passed.replace(year=passed.year + KNOWLEDGE_TEST_VALID_YEARS)
    except ValueError:  # passed on 29 February
        expires = passed.replace(year=passed.year + KNOWLEDGE_TEST_VALID_YEARS, day=28)
    return (now or timezone.now()) < expires


def lender_limit_check(*, backer, campaign: Campaign, amount: int, replaces=None) -> None:
    """Refuse a pledge of ``amount`` to a debt campaign that the investor policy does not allow.

    Reads only; runs before anything is reserved or charged. ``replaces`` is the pledge a change
    of amount resizes (not counted twice). Raises NotAllowed (profile, test or consent missing)
    or InvalidInput (above the limit), each saying what the lender can do.
    """
    policy = settings.LENDING_INVESTOR_POLICY
    if policy == "none":
        return
    if policy not in POLICIES:
        raise ImproperlyConfigured(f"LENDING_INVESTOR_POLICY must be one of {', '.join(POLICIES)}")
    profile = LenderProfile.objects.filter(user=backer).first()
    if profile is not None and profile.accredited:
        return
    declaration = LenderDeclaration.objects.filter(user=backer, currency=campaign.currency).first()
    if policy == "reg_cf":
        _reg_cf_check(backer=backer, campaign=campaign, amount=amount, replaces=replaces, declaration=declaration)
    else:
        _ecsp_check(campaign=campaign, amount=amount, profile=profile, declaration=declaration, backer=backer)


@contextlib.contextmanager
def lender_limit_guard(*, backer, campaign: Campaign, amount: int):
    """Write a new loan pledge under the lender's row lock, with their limit checked again under it.

    ``lender_limit_check`` runs first without a lock, for a quick refusal; two lends by one
    lender at the same moment could both pass it. This lock makes the second wait until the
    first's pending pledge is written (and counted by ``lent_in_last_year``), then checks again.
    """
    with transaction.atomic():
        # FOR NO KEY UPDATE: it serialises this lender's lends, but not the key-share locks that
        # rows referring to the lender take (their withdrawal, the hold of a lend paid from their
        # balance, an audit event): those wait for nothing here, so no lock order can deadlock.
        list(User.objects.select_for_update(no_key=True).filter(pk=backer.pk).values_list("pk", flat=True))
        lender_limit_check(backer=backer, campaign=campaign, amount=amount)
        yield


def _reg_cf_check(*, backer, campaign: Campaign, amount: int, replaces, declaration) -> None:
    currency = campaign.currency
    if declaration is None:
        raise NotAllowed(
            _(
                "US crowdfunding rules limit what you may lend by your income and net worth. Declare them in "
                "%(currency)s in your lending profile (My loans, Lending profile) first."
            )
            % {"currency": currency},
            code="lender_profile_required",
        )
    limit = reg_cf_limit(annual_income=declaration.annual_income, net_worth=declaration.net_worth, currency=currency)
    lent = lent_in_last_year(lender=backer, currency=currency, exclude_pledge=replaces)
    if lent + amount > limit:
        raise InvalidInput(
            _(
                "US crowdfunding rules let you lend at most %(limit)s in any 12 months, given the income and net "
                "worth you declared. You have lent %(lent)s in that time, so you can lend at most %(left)s more."
            )
            % {
                "limit": format_amount(limit, currency),
                "lent": format_amount(lent, currency),
                "left": format_amount(max(limit - lent, 0), currency),
            },
            code="investor_limit",
            field="amount",
        )


def _ecsp_check(*, backer, campaign: Campaign, amount: int, profile, declaration) -> None:
    if not knowledge_test_valid(profile):
        raise NotAllowed(
            _(
                "EU crowdfunding rules ask you to pass a short knowledge test before you lend (valid for two "
                "years). Take it in your lending profile (My loans, Knowledge test)."
            ),
            code="knowledge_test_required",
        )
    if campaign.deadline and campaign.deadline - timezone.now() < datetime.timedelta(days=ECSP_WITHDRAWAL_DAYS):
        raise NotAllowed(
            _(
                "You may withdraw a loan without reason for 4 days after you make it, and this campaign closes "
                "sooner, so it takes no new loans."
            ),
            code="withdrawal_period_too_short",
        )
    net_worth = declaration.net_worth if declaration is not None else 0
    threshold = ecsp_consent_threshold(net_worth=net_worth, currency=campaign.currency)
    if amount > threshold:
        consent = LendingConsent.objects.filter(lender=backer, campaign=campaign, amount__gte=amount).exists()
        if not consent:
            raise NotAllowed(
                _(
                    "Warning: lending more than %(threshold)s to one loan puts a large part of your savings at "
                    "risk; you can lose all of it. To go ahead, confirm that you understand on this loan's "
                    "schedule page, then lend again."
                )
                % {"threshold": format_amount(threshold, campaign.currency)},
                code="consent_required",
            )


@transaction.atomic
def lender_profile_update(
    *, user, accredited: bool, currency: str, annual_income: int, net_worth: int
) -> LenderDeclaration:
    """Record the lender's accredited status and their income and net worth in ``currency``; return it.

    Replaces an earlier declaration in that currency. Raises InvalidInput (a bad currency or a
    negative or absurd amount), changing nothing.
    """
    currency_exponent(currency)
    for field, value in (("annual_income", annual_income), ("net_worth", net_worth)):
        if value != 0:
            check_amount(value, currency)
        if value < 0:
            raise InvalidInput(_("Enter an amount of zero or more."), code="invalid_amount", field=field)
    profile, _created = LenderProfile.objects.get_or_create(user=user)
    if profile.accredited != accredited:
        profile.accredited = accredited
        profile.save(update_fields=["accredited", "updated_at"])
    declaration, _created = LenderDeclaration.objects.update_or_create(
        user=user,
        currency=currency,
        defaults={"annual_income": annual_income, "net_worth": net_worth, "declared_at": timezone.now()},
    )
    return declaration


@transaction.atomic
def lender_knowledge_test_take(*, user, answers: dict[str, str]) -> bool:
    """Record a pass of the knowledge test if every answer is right; return whether it passed."""
    passed = all(answers.get(key) == right for key, (_question, _choices, right) in KNOWLEDGE_TEST.items())
    if passed:
        profile, _created = LenderProfile.objects.get_or_create(user=user)
        profile.knowledge_test_passed_at = timezone.now()
        profile.save(update_fields=["knowledge_test_passed_at", "updated_at"])
    return passed


@transaction.atomic
def lending_consent_give(*, lender, campaign: Campaign, amount: int) -> LendingConsent:
    """Record the lender's consent, after the warning, to lend up to ``amount`` to ``campaign`` (audited).

    Raises InvalidInput for a bad amount. A larger consent replaces a smaller one.
    """
    check_amount(amount, campaign.currency)
    consent, created = LendingConsent.objects.get_or_create(
        lender=lender, campaign=campaign, defaults={"amount": amount}
    )
    if not created and consent.amount < amount:
        consent.amount = amount
        consent.created_at = timezone.now()
        consent.save(update_fields=["amount", "created_at"])
    audit_record(actor=lender, action="lending_consent", obj=campaign, details={"amount": amount})
    return consent
