"""Reads of the risk app: features, scores, fraud signals, forecasts and recommendations.

Nothing here writes. Each function loads what it needs in a few bulk queries and hands arrays
to the numpy models in ``risk.algorithms``, so many campaigns cost about as much as one. One module
per topic; everything public is importable from ``risk.selectors``.
"""

from .common import (
    CHUNK,
    CLOSED_STATUSES,
    DAY,
    EpochSeconds,
)
from .default_risk import DefaultRisk, campaign_default_features, campaign_default_risk
from .forecasts import (
    CONE_POINTS,
    DEFAULT_PRIOR_MEDIAN_RATIO,
    DEFAULT_PRIOR_SIGMA,
    FORECAST_BAND,
    FORECAST_BOOTSTRAP,
    FORECAST_MIN_ELAPSED,
    FORECAST_MIN_PLEDGES,
    FORECAST_POINTS,
    PRIOR_MAX,
    PRIOR_MIN_SIMILAR,
    ConePoint,
    Forecast,
    forecast_for_campaign,
)
from .fraud_signals import (
    pledge_fraud_evaluation,
)
from .recommendations import (
    DEFAULT_RISK_TOLERANCE,
    INTEREST_AFFINITY,
    MATCH_COMPONENTS,
    MATCH_WEIGHTS,
    POOL_CACHE_KEY,
    POOL_CACHE_SECONDS,
    UNASSESSED_RISK,
    URGENCY_DAYS,
    BackerProfile,
    CampaignPool,
    Recommendation,
    backer_profile_for,
    live_campaign_pool,
    live_campaign_pool_cached,
    recommendations_for,
    recommendations_rank,
)
from .review_risk import (
    CAMPAIGN_FEATURE_FIELDS,
    CampaignRiskScores,
    ReviewFeatures,
    campaign_review_features,
    campaign_risk_scores,
    risk_latest_assessment_for,
    risk_model_current,
)

__all__ = [
    "CAMPAIGN_FEATURE_FIELDS",
    "CHUNK",
    "CLOSED_STATUSES",
    "CONE_POINTS",
    "DAY",
    "DEFAULT_PRIOR_MEDIAN_RATIO",
    "DEFAULT_PRIOR_SIGMA",
    "DEFAULT_RISK_TOLERANCE",
    "FORECAST_BAND",
    "FORECAST_BOOTSTRAP",
    "FORECAST_MIN_ELAPSED",
    "FORECAST_MIN_PLEDGES",
    "FORECAST_POINTS",
    "INTEREST_AFFINITY",
    "MATCH_COMPONENTS",
    "MATCH_WEIGHTS",
    "POOL_CACHE_KEY",
    "POOL_CACHE_SECONDS",
    "PRIOR_MAX",
    "PRIOR_MIN_SIMILAR",
    "UNASSESSED_RISK",
    "URGENCY_DAYS",
    "BackerProfile",
    "CampaignPool",
    "CampaignRiskScores",
    "ConePoint",
    "DefaultRisk",
    "EpochSeconds",
    "Forecast",
    "Recommendation",
    "ReviewFeatures",
    "backer_profile_for",
    "campaign_default_features",
    "campaign_default_risk",
    "campaign_review_features",
    "campaign_risk_scores",
    "forecast_for_campaign",
    "live_campaign_pool",
    "live_campaign_pool_cached",
    "pledge_fraud_evaluation",
    "recommendations_for",
    "recommendations_rank",
    "risk_latest_assessment_for",
    "risk_model_current",
]
