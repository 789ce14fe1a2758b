"""The review risk model's features, its documented prior, and its reasons in words.

A campaign is described by ``FEATURES`` (one number each, computed by
``risk.selectors.campaign_review_features``). The model is a logistic regression of "the campaign
failed" on these numbers, fitted on the platform's own closed campaigns. Until there are
``MIN_TRAINING_CAMPAIGNS`` of them (with at least ``MIN_PER_CLASS`` of each outcome), it uses the
prior below: weights chosen by hand from what is commonly reported about reward crowdfunding
(ambitious goals, long campaigns and first-time initiators without a track record fail more;
a detailed story and several reward tiers go with success), on features standardised with typical
values instead of training statistics. Every weight is per standard unit, so the numbers compare.

Nothing here touches the database.
"""

from dataclasses import dataclass

import numpy as np

from .algorithms import LogisticModel

MIN_TRAINING_CAMPAIGNS = 30
# Used for a campaign whose rewards give no delivery date, so that it counts as typical.
NEUTRAL_DELIVERY_MONTHS = 3.0
MIN_PER_CLASS = 5
L2_PENALTY = 1.0
TOP_REASONS = 3
# A contribution to the log-odds smaller than this is not worth mentioning.
REASON_MIN_CONTRIBUTION = 0.05


@dataclass(frozen=True)
class Feature:
    name: str
    label: str
    prior_mean: float  # a typical value
    prior_scale: float  # a typical spread around it
    prior_weight: float  # change in log-odds of failure per prior_scale above prior_mean


# Order matters: it is the column order of the feature matrix and of stored weights.
FEATURES: tuple[Feature, ...] = (
    Feature("log_account_age_days", "initiator account age", np.log1p(60), 1.5, -0.35),
    Feature("email_verified", "verified e-mail", 0.5, 0.5, -0.30),
    Feature("log_previous_succeeded", "previous successful campaigns", 0.2, 0.5, -0.50),
    Feature("log_previous_failed", "previous failed campaigns", 0.2, 0.5, 0.45),
    Feature("log_goal_vs_category", "goal relative to its category", 0.0, 1.0, 0.65),
    Feature("duration_days", "campaign length", 30.0, 12.0, 0.25),
    Feature("log_story_length", "story length", np.log1p(1500), 1.0, -0.30),
    Feature("reward_tiers", "number of reward tiers", 4.0, 3.0, -0.30),
    Feature("delivery_months", "delivery distance", 3.0, 3.0, 0.20),
)
FEATURE_NAMES = tuple(f.name for f in FEATURES)
# Roughly 60 % of reward campaigns miss their goal.
PRIOR_INTERCEPT = float(np.log(0.6 / 0.4))


def prior_model() -> LogisticModel:
    """Return the hand-set model used before there are enough closed campaigns to fit one."""
    return LogisticModel(
        weights=np.array([f.prior_weight for f in FEATURES]),
        intercept=PRIOR_INTERCEPT,
        means=np.array([f.prior_mean for f in FEATURES]),
        scales=np.array([f.prior_scale for f in FEATURES]),
    )


def _plural(n: float, word: str) -> str:
    n = round(n)
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def describe(name: str, value: float, context: dict) -> str:
    """Return a feature's value in words, e.g. "the goal is 4.2 times the Games median"."""
    if name == "log_account_age_days":
        return f"the initiator's account is {_plural(np.expm1(value), 'day')} old"
    if name == "email_verified":
        return "the initiator's e-mail is verified" if value >= 0.5 else "the initiator's e-mail is not verified"
    if name == "log_previous_succeeded":
        n = round(np.expm1(value))
        return f"the initiator has {_plural(n, 'successful campaign') if n else 'no successful campaigns'} before"
    if name == "log_previous_failed":
        n = round(np.expm1(value))
        return f"the initiator has {_plural(n, 'failed campaign') if n else 'no failed campaigns'} before"
    if name == "log_goal_vs_category":
        ratio = float(np.exp(value))
        category = context.get("category") or "its category"
        if 0.9 <= ratio <= 1.1:
            return f"the goal is about the median of {category} campaigns"
        if ratio > 1:
            return f"the goal is {ratio:.1f} times the median of {category} campaigns"
        return f"the goal is {1 / ratio:.1f} times below the median of {category} campaigns"
    if name == "duration_days":
        return f"the campaign runs for {_plural(value, 'day')}"
    if name == "log_story_length":
        return f"the story is {_plural(np.expm1(value), 'character')} long"
    if name == "reward_tiers":
        return f"it offers {_plural(value, 'reward tier')}" if value else "it offers no reward tiers"
    if name == "delivery_months":
        if not context.get("has_delivery", True):
            return "no reward gives a delivery date"
        return f"rewards are promised {value:.1f} months after the deadline on average"
    raise ValueError(f"unknown feature {name!r}")


def reasons(row: np.ndarray, contributions: np.ndarray, context: dict) -> list[str]:
    """Return the top factors of one score in words, strongest first.

    ``contributions`` are the features' shares of the log-odds of failure: positive ones raise
    the risk, negative ones lower it.
    """
    order = np.argsort(-np.abs(contributions), kind="stable")[:TOP_REASONS]
    found = []
    for i in order:
        if abs(contributions[i]) < REASON_MIN_CONTRIBUTION:
            continue
        effect = "raises the risk" if contributions[i] > 0 else "lowers the risk"
        text = describe(FEATURE_NAMES[i], float(row[i]), context)
        found.append(f"{text[0].upper()}{text[1:]} ({effect}).")
    return found or ["Nothing stands out: the campaign looks like a typical one."]
