"""Matching reads: pools' balances, rounds' contributions and allocations, a campaign's matches.

The services freeze and pay what ``round_compute`` returns; pages and the API show the rest.
One module per subject; every name callers use is here, so they import ``matching.selectors``.
"""

from .applications import (
    NOT_APPLYING_STATUSES,
    applications_of_initiator,
    campaign_pools_for_applications,
    campaigns_that_may_apply,
    pool_takes_applications,
)
from .badges import (
    CampaignMatch,
    MatchingLine,
    campaign_matched_by,
    campaign_matching_line,
    campaigns_matched_by,
)
from .dashboards import ChartBar, PoolDashboard, pool_dashboard, pool_rounds_with_results
from .eligibility import CHALLENGE_WINDOW, eligible_campaigns
from .estimates import (
    LiveRound,
    LiveRow,
    MatchEstimate,
    gift_estimate,
    match_estimates,
    open_rounds_refresh_standing,
    round_live_table,
    round_standing,
    standing_of,
)
from .pools import (
    PUBLISHED_ROUND_STATUSES,
    pool_balance,
    pool_balances,
    pool_public_get,
    pools_index,
    pools_public,
    sponsor_get,
    user_may_act_for,
    user_may_sponsor,
)
from .review import ReviewContribution, review_contributions_of, round_contributions_for_review
from .rounds import (
    CHARGED_STATUSES,
    allocation_earned,
    campaign_matched_to_release,
    round_budget,
    round_compute,
    round_contributions,
    round_inputs,
    round_public_get,
    round_published_get,
)

__all__ = [
    "CHALLENGE_WINDOW",
    "CHARGED_STATUSES",
    "NOT_APPLYING_STATUSES",
    "PUBLISHED_ROUND_STATUSES",
    "CampaignMatch",
    "ChartBar",
    "LiveRound",
    "LiveRow",
    "MatchEstimate",
    "MatchingLine",
    "PoolDashboard",
    "ReviewContribution",
    "allocation_earned",
    "applications_of_initiator",
    "campaign_matched_by",
    "campaign_matched_to_release",
    "campaign_matching_line",
    "campaign_pools_for_applications",
    "campaigns_matched_by",
    "campaigns_that_may_apply",
    "eligible_campaigns",
    "gift_estimate",
    "match_estimates",
    "open_rounds_refresh_standing",
    "pool_balance",
    "pool_balances",
    "pool_dashboard",
    "pool_public_get",
    "pool_rounds_with_results",
    "pool_takes_applications",
    "pools_index",
    "pools_public",
    "review_contributions_of",
    "round_budget",
    "round_compute",
    "round_contributions",
    "round_contributions_for_review",
    "round_inputs",
    "round_live_table",
    "round_public_get",
    "round_published_get",
    "round_standing",
    "sponsor_get",
    "standing_of",
    "user_may_act_for",
    "user_may_sponsor",
]
