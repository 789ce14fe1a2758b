"""Which campaigns a pool matches, from the pool's side and from the campaign's."""

from datetime import datetime, timedelta

from django.db.models import Q

from projects.models import Campaign, CampaignStatus, FundingModel

from ..models import Pool, Round, RoundStatus

CHALLENGE_WINDOW = timedelta(days=3)


def eligible_campaigns(*, pool: Pool):
    """Return the campaigns a pool matches: its categories or its list, never the sponsor's own.

    Debt campaigns are never matched: their money is a loan repaid to its lenders, and a sponsor
    is not one of them.
    """
    campaigns = Campaign.objects.filter(Q(category__in=pool.categories.all()) | Q(pk__in=pool.campaigns.all()))
    return campaigns.exclude(initiator_id=pool.sponsor_id).exclude(funding_model=FundingModel.DEBT)


def _rounds_open_for(campaign: Campaign, now: datetime):
    """Return the rounds open now whose funded pool, in the campaign's currency, matches it.

    A pool's category or list, never its sponsor's own campaign: what ``eligible_campaigns``
    says, from the campaign's side.
    """
    pools = Pool.objects.filter(
        Q(categories=campaign.category_id) | Q(campaigns=campaign.pk),
        funded_at__isnull=False,
        currency=campaign.currency,
    ).exclude(sponsor_id=campaign.initiator_id)
    return Round.objects.filter(status=RoundStatus.OPEN, starts_at__lte=now, ends_at__gt=now, pool__in=pools)


def _eligible_now(currency: str, campaign: Campaign, now: datetime) -> bool:
    # As ``round_contributions`` filters the campaigns (``eligible_campaigns`` and the window).
    return (
        campaign.status == CampaignStatus.LIVE
        and campaign.funding_model != FundingModel.DEBT
        and campaign.currency == currency
        and campaign.deadline is not None
        and campaign.deadline > now + CHALLENGE_WINDOW
    )
