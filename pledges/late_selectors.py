"""Reads of late pledges: a campaign's offer with its rewards, for pages and the API."""

from django.db.models import Prefetch

from projects.models import Campaign, CampaignStatus, LatePledgeOffer, LatePledgeReward


def late_offer_for(*, campaign: Campaign) -> LatePledgeOffer | None:
    """Return the campaign's late-pledge offer with its rewards (cheapest first, each reward loaded), or None."""
    return (
        LatePledgeOffer.objects.filter(campaign_id=campaign.pk)
        .prefetch_related(Prefetch("rewards", queryset=LatePledgeReward.objects.select_related("reward")))
        .first()
    )


def late_offer_taking_pledges(*, campaign: Campaign) -> LatePledgeOffer | None:
    """Return the offer if backers may pledge late now (open, the campaign succeeded), else None."""
    offer = late_offer_for(campaign=campaign) if campaign.status == CampaignStatus.SUCCEEDED else None
    return offer if offer is not None and offer.takes_late_pledges(campaign) else None
