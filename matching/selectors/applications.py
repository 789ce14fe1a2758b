"""Campaigns' applications to pools that take them: who may apply, and what was asked and decided."""

from datetime import datetime

from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils import timezone

from projects.models import FINAL_STATUSES, Campaign, CampaignStatus, FundingModel

from ..models import Pool, PoolApplication
from .eligibility import eligible_campaigns

# A campaign in these states raises nothing more: matching it would be moot.
NOT_APPLYING_STATUSES = frozenset({*FINAL_STATUSES, CampaignStatus.CLOSING, CampaignStatus.SUSPENDED})


def pool_takes_applications(*, pool: Pool, now: datetime | None = None) -> bool:
    """Return whether campaigns may apply to ``pool`` now: it takes applications, is funded and has not ended."""
    now = now or timezone.now()
    return pool.accepts_applications and pool.funded_at is not None and pool.closed_at is None and now < pool.ends_at


def campaigns_that_may_apply(*, pool: Pool, user) -> list[Campaign]:
    """Return ``user``'s campaigns that could apply to ``pool`` now (``pool_application_submit`` decides).

    Theirs, in the pool's currency, not loans, not over, neither matched by the pool already nor
    applied; empty when the pool takes no applications now or ``user`` is its sponsor.
    """
    if user is None or not user.is_authenticated or user.pk == pool.sponsor_id:
        return []
    if not pool_takes_applications(pool=pool):
        return []
    return list(
        Campaign.objects.filter(initiator_id=user.pk, currency=pool.currency)
        .exclude(funding_model=FundingModel.DEBT)
        .exclude(status__in=NOT_APPLYING_STATUSES)
        .exclude(pk__in=eligible_campaigns(pool=pool).values("pk"))
        .exclude(pk__in=PoolApplication.objects.filter(pool=pool).values("campaign_id"))
        .order_by("title", "pk")
    )


def applications_of_initiator(*, pool: Pool, user) -> list[PoolApplication]:
    """Return the applications of ``user``'s campaigns to ``pool``, newest first (campaign loaded)."""
    if user is None or not user.is_authenticated:
        return []
    return list(PoolApplication.objects.filter(pool=pool, campaign__initiator_id=user.pk).select_related("campaign"))


def campaign_pools_for_applications(*, campaign: Campaign) -> list[Pool]:
    """Return, for a campaign's dashboard, the pools it applied to and those it could apply to now, in one query.

    Each pool has ``application_status`` and ``application_reason`` (None where it has not
    applied); soonest ending first. A pool it could apply to takes applications now, is in its
    currency, is not its initiator's and does not match it already (its list or category); a
    loan or a campaign that is over can apply to none.
    """
    applied = PoolApplication.objects.filter(pool=OuterRef("pk"), campaign_id=campaign.pk)
    pools = Pool.objects.annotate(
        application_status=Subquery(applied.values("status")[:1]),
        application_reason=Subquery(applied.values("reason")[:1]),
    )
    wanted = Q(application_status__isnull=False)
    if campaign.funding_model != FundingModel.DEBT and campaign.status not in NOT_APPLYING_STATUSES:
        listed = Pool.campaigns.through.objects.filter(pool_id=OuterRef("pk"), campaign_id=campaign.pk)
        by_category = Pool.categories.through.objects.filter(pool_id=OuterRef("pk"), category_id=campaign.category_id)
        wanted |= (
            Q(
                accepts_applications=True,
                funded_at__isnull=False,
                closed_at__isnull=True,
                ends_at__gt=timezone.now(),
                currency=campaign.currency,
            )
            & ~Q(sponsor_id=campaign.initiator_id)
            & ~Exists(listed)
            & ~Exists(by_category)
        )
    return list(pools.filter(wanted).order_by("ends_at", "pk"))
