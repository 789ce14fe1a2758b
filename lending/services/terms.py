"""Loan terms of debt campaigns: validated, set by the initiator, fixed once the campaign is submitted."""

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from crowdfund_site.exceptions import (
    Conflict,
    InvalidInput,
    NotAllowed,
)
from projects.models import EDITABLE_STATUSES, Campaign, FundingModel
from projects.services import campaign_update

from ..models import (
    MAX_GRACE_MONTHS,
    MAX_RATE_BPS,
    MAX_TERM_MONTHS,
    LoanTerms,
    RepaymentType,
)


def loan_terms_validate(*, rate_bps: int, term_months: int, repayment_type: str, grace_months: int) -> None:
    """Raise InvalidInput, naming the field, unless the terms are inside the platform's ranges."""
    checks = [
        ("rate_bps", rate_bps, 0, MAX_RATE_BPS, _("The interest rate must be between 0 % and 36 % a year.")),
        ("term_months", term_months, 1, MAX_TERM_MONTHS, _("The term must be between 1 and 60 months.")),
        ("grace_months", grace_months, 0, MAX_GRACE_MONTHS, _("The grace period must be between 0 and 6 months.")),
    ]
    for field, value, low, high, message in checks:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidInput(message, code=f"invalid_{field}", field=field)
    if grace_months >= term_months:
        raise InvalidInput(
            _("The grace period must be shorter than the term."), code="invalid_grace_months", field="grace_months"
        )
    if repayment_type not in RepaymentType.values:
        raise InvalidInput(_("Unknown repayment type."), code="invalid_repayment_type", field="repayment_type")


@transaction.atomic
def loan_terms_set(
    *, campaign: Campaign, actor, rate_bps: int, term_months: int, repayment_type: str, grace_months: int = 0
) -> LoanTerms:
    """Set (or replace) the loan terms of the initiator's own debt campaign; return them.

    Terms can change only while the campaign can be edited (a draft, or changes requested):
    reviewers approve them and lenders lend on them, so from review on they are fixed. The
    servicing fee is copied from ``LENDING_SERVICING_FEE_BPS`` now, so a later change of the
    setting does not alter terms already set. Locks the campaign row.
    Raises NotAllowed (not the initiator), Conflict (not a debt campaign, or terms fixed) and
    InvalidInput (a value out of range), changing nothing.
    """
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if actor is None or actor.pk != campaign.initiator_id:
        raise NotAllowed(_("Only the campaign's initiator can set its loan terms."), code="not_initiator")
    if campaign.funding_model != FundingModel.DEBT:
        raise Conflict(_("Only debt campaigns have loan terms."), code="not_debt_campaign")
    if campaign.status not in EDITABLE_STATUSES:
        raise Conflict(
            _("Loan terms are fixed once a campaign is submitted for review; lenders lend on them."),
            code="terms_fixed",
        )
    loan_terms_validate(
        rate_bps=rate_bps, term_months=term_months, repayment_type=repayment_type, grace_months=grace_months
    )
    terms, _created = LoanTerms.objects.update_or_create(
        campaign=campaign,
        defaults={
            "rate_bps": rate_bps,
            "term_months": term_months,
            "repayment_type": repayment_type,
            "grace_months": grace_months,
            "servicing_fee_bps": settings.LENDING_SERVICING_FEE_BPS,
        },
    )
    return terms


@transaction.atomic
def campaign_funding_update(*, campaign: Campaign, actor, loan_terms: dict | None, **fields) -> Campaign:
    """Change a draft campaign's fields (``campaign_update``) and, for a debt campaign, its loan terms.

    One transaction: a refused term leaves the campaign's fields unchanged too. ``loan_terms``
    holds ``loan_terms_set``'s arguments and is required when the campaign is (or becomes) a
    debt campaign. Raises what ``campaign_update`` and ``loan_terms_set`` raise.
    """
    campaign = campaign_update(campaign=campaign, actor=actor, **fields)
    if campaign.funding_model == FundingModel.DEBT:
        if loan_terms is None:
            raise InvalidInput(_("A loan needs its terms."), code="loan_terms_required", field="rate_bps")
        loan_terms_set(campaign=campaign, actor=actor, **loan_terms)
    return campaign
