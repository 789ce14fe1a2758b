"""Writes of the risk app: model versions, campaign assessments, pledge checks and fraud alerts.

Also ``risk_allocate``, the platform's proportional split in exact minor units (it writes
nothing; it lives here so that callers find every risk operation in one place).

All scoring runs before the short transaction that stores its result, so no row is locked while
numpy works. Re-running any of these is harmless: an identical assessment, or a second check of
the same pledge, returns what is already stored.
"""

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

import numpy as np
from django.db import IntegrityError, transaction
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone

from accounts.services import audit_record
from crowdfund_site.exceptions import Conflict, InvalidInput
from crowdfund_site.money import allocate, check_amount
from pledges.models import Pledge
from projects.models import CAMPAIGN_TRANSITIONS, Campaign, CampaignStatus
from projects.services import campaign_lock, campaign_set_status

from . import fraud, review
from .algorithms import LogisticModel, fit_logistic
from .models import FraudAlert, FraudAlertStatus, PledgeRiskCheck, RiskAssessment, RiskModelVersion
from .selectors import (
    CLOSED_STATUSES,
    campaign_review_features,
    campaign_risk_scores,
    pledge_fraud_evaluation,
    risk_latest_assessment_for,
    risk_model_current,
)

logger = logging.getLogger(__name__)

VERSION_ATTEMPTS = 3
# Pledges the periodic sweep looks back over, and how many it checks per run.
RECENT_PLEDGES_WINDOW = timedelta(days=1)
RECENT_PLEDGES_LIMIT = 1_000


# --- Review risk model ---------------------------------------------------------------------------


def _store_version(*, model: LogisticModel, is_prior: bool, **fields) -> RiskModelVersion:
    """Store ``model`` as the next version number (retrying if a concurrent refit took it)."""
    for attempt in range(VERSION_ATTEMPTS):
        number = (RiskModelVersion.objects.aggregate(n=Max("version"))["n"] or 0) + 1
        try:
            with transaction.atomic():
                return RiskModelVersion.objects.create(
                    version=number,
                    is_prior=is_prior,
                    feature_names=list(review.FEATURE_NAMES),
                    weights=[float(w) for w in model.weights],
                    intercept=float(model.intercept),
                    feature_means=[float(m) for m in model.means],
                    feature_scales=[float(s) for s in model.scales],
                    **fields,
                )
        except IntegrityError:
            if attempt == VERSION_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def risk_model_ensure() -> RiskModelVersion:
    """Return the current review model, storing the documented prior if there is none.

    A stored version made for a different list of features (the code changed since) is not
    used; the prior is stored as a new version until the next refit.
    """
    current = risk_model_current()
    if current is not None and current.feature_names == list(review.FEATURE_NAMES):
        return current
    return _store_version(model=review.prior_model(), is_prior=True, trained_on=0)


def risk_model_refit(*, now: datetime | None = None) -> RiskModelVersion:
    """Fit the review model on every closed campaign and store it as a new version; return it.

    With fewer than ``review.MIN_TRAINING_CAMPAIGNS`` closed campaigns (or fewer than
    ``review.MIN_PER_CLASS`` succeeded or failed ones) nothing is fitted and the current version
    is returned: the prior until the platform has enough history.
    """
    closed = dict(Campaign.objects.filter(status__in=CLOSED_STATUSES).values_list("id", "status"))
    failed = sum(1 for status in closed.values() if status == CampaignStatus.FAILED)
    if len(closed) < review.MIN_TRAINING_CAMPAIGNS or min(failed, len(closed) - failed) < review.MIN_PER_CLASS:
        return risk_model_ensure()
    features = campaign_review_features(closed, now=now)
    y = np.array([closed[int(i)] == CampaignStatus.FAILED for i in features.campaign_ids], dtype=float)
    fit = fit_logistic(features.matrix, y, l2=review.L2_PENALTY)
    if not fit.converged:
        logger.warning("Review risk model did not converge in %s iterations", fit.iterations)
    version = _store_version(
        model=fit.model, is_prior=False, trained_on=len(y), failed_share=float(y.mean()), log_loss=fit.log_loss
    )
    logger.info("Stored %s (log loss %.3f)", version, fit.log_loss)
    return version


def risk_assess_campaigns(
    *, campaign_ids: Iterable[int], now: datetime | None = None, force: bool = False
) -> list[RiskAssessment]:
    """Score campaigns with the current model and store an assessment for each; return them.

    Vectorised: a few queries and one matrix product for any number of campaigns. Idempotent:
    a campaign whose latest assessment has the same model version and features keeps it,
    unless ``force`` (a new row records that it was scored again, e.g. for a new submission).
    """
    version = risk_model_ensure()
    scores = campaign_risk_scores(campaign_ids, model=version.as_model(), now=now)
    ids = [int(i) for i in scores.features.campaign_ids]
    latest = risk_latest_assessment_for(ids)
    created_at = timezone.now()
    results, new = [], []
    for i, campaign_id in enumerate(ids):
        features = scores.features.as_json(i)
        previous = latest.get(campaign_id)
        unchanged = previous is not None and previous.model_version_id == version.pk and previous.features == features
        if unchanged and not force:
            results.append(previous)
            continue
        assessment = RiskAssessment(
            campaign_id=campaign_id,
            model_version=version,
            features=features,
            probability=float(np.clip(scores.probabilities[i], 0.0, 1.0)),
            reasons=scores.reasons(i),
            created_at=created_at,
        )
        new.append(assessment)
        results.append(assessment)
    with transaction.atomic():
        RiskAssessment.objects.bulk_create(new, batch_size=2_000)
    return results


def risk_assess_campaign(*, campaign: Campaign) -> RiskAssessment:
    """Score one campaign for review and store the assessment (see ``risk_assess_campaigns``)."""
    return risk_assess_campaigns(campaign_ids=[campaign.pk])[0]


def risk_assess_unscored_in_review() -> int:
    """Score the campaigns in review that have no assessment since their latest submission.

    The safety net behind the prompt scoring the submit page and API ask for: a lost message,
    or a campaign submitted by some other path, is scored within one beat period. Return how many.
    """
    scored_since_submission = RiskAssessment.objects.filter(
        campaign=OuterRef("pk"), created_at__gte=OuterRef("submitted_at")
    )
    ids = list(
        Campaign.objects.filter(status=CampaignStatus.IN_REVIEW)
        .exclude(Exists(scored_since_submission))
        .order_by("submitted_at", "id")
        .values_list("id", flat=True)[:RECENT_PLEDGES_LIMIT]
    )
    # Forced: a campaign resubmitted unchanged still gets an assessment dated after its submission.
    return len(risk_assess_campaigns(campaign_ids=ids, force=True)) if ids else 0


def risk_assess_campaigns_in_review() -> int:
    """Re-score every campaign waiting for review (after a refit); return how many were scored."""
    ids = list(Campaign.objects.filter(status=CampaignStatus.IN_REVIEW).values_list("id", flat=True))
    return len(risk_assess_campaigns(campaign_ids=ids)) if ids else 0


# --- Fraud ---------------------------------------------------------------------------------------


def _campaign_suspend_by_system(*, campaign_id: int, reason: str) -> bool:
    """Suspend a campaign on the platform's own authority (no staff actor); return whether it was.

    Uses the projects services' guarded transition, recorded with ``actor=None``. A campaign
    that cannot be suspended from its current state (already suspended, closed) is left alone.
    """
    campaign = campaign_lock(campaign_id=campaign_id)
    if CampaignStatus.SUSPENDED not in CAMPAIGN_TRANSITIONS.get(campaign.status, set()):
        return False
    campaign_set_status(campaign=campaign, to_status=CampaignStatus.SUSPENDED, actor=None, reason=reason)
    return True


def risk_check_pledge(*, pledge: Pledge, ip: str | None = None) -> PledgeRiskCheck:
    """Evaluate the fraud signals of ``pledge`` and store the check; return it.

    Above ``fraud.ALERT_THRESHOLD`` a FraudAlert is stored; at ``fraud.SUSPEND_THRESHOLD`` with a
    signal that implicates the campaign, the campaign is also suspended pending review (in the
    same transaction, under its row lock). One check per pledge: checking again returns the
    stored one, also when two workers race. ``ip`` is optional; without it the IP signals are
    skipped.
    """
    existing = PledgeRiskCheck.objects.filter(pledge_id=pledge.pk).first()
    if existing is not None:
        return existing
    evaluation = pledge_fraud_evaluation(pledge=pledge, ip=ip)
    try:
        with transaction.atomic():
            check = PledgeRiskCheck.objects.create(
                pledge=pledge, ip=ip or None, probability=evaluation.probability, signals=evaluation.signals_json()
            )
            if evaluation.level != fraud.FraudLevel.NONE:
                suspended = evaluation.level == fraud.FraudLevel.SUSPEND and _campaign_suspend_by_system(
                    campaign_id=pledge.campaign_id,
                    reason=(
                        f"Suspended automatically pending review: pledge {pledge.pk} looks fraudulent "
                        f"({evaluation.probability:.0%}). {' '.join(evaluation.reasons)}"
                    ),
                )
                FraudAlert.objects.create(
                    risk_check=check,
                    campaign_id=pledge.campaign_id,
                    backer_id=pledge.backer_id,
                    probability=evaluation.probability,
                    reasons=evaluation.reasons,
                    campaign_suspended=suspended,
                )
                logger.warning(
                    "Fraud alert on pledge %s (%.0f%%)%s",
                    pledge.pk,
                    evaluation.probability * 100,
                    "; campaign suspended" if suspended else "",
                )
    except IntegrityError:
        # Another worker checked this pledge first; its check stands.
        return PledgeRiskCheck.objects.get(pledge_id=pledge.pk)
    return check


def risk_check_recent_pledges(*, now: datetime | None = None, limit: int = RECENT_PLEDGES_LIMIT) -> int:
    """Check charged pledges of the last day that have no check yet, oldest first; return how many."""
    since = (now or timezone.now()) - RECENT_PLEDGES_WINDOW
    pledges = Pledge.objects.filter(created_at__gte=since, held_at__isnull=False, risk_check__isnull=True).order_by(
        "id"
    )[:limit]
    count = 0
    for pledge in pledges:
        risk_check_pledge(pledge=pledge)
        count += 1
    return count


def _fraud_alert_decide(*, alert: FraudAlert, to_status: str, actor, reason: str, action: str) -> FraudAlert:
    with transaction.atomic():
        alert = FraudAlert.objects.select_for_update().get(pk=alert.pk)
        if alert.status != FraudAlertStatus.OPEN:
            raise Conflict(
                f"This alert was already decided ({alert.get_status_display().lower()}).", code="alert_decided"
            )
        from_status = alert.status
        alert.status = to_status
        alert.save(update_fields=["status"])
        audit_record(
            actor=actor, action=action, obj=alert, reason=reason, details={"from": from_status, "to": to_status}
        )
    return alert


def risk_fraud_alert_dismiss(*, alert: FraudAlert, actor, reason: str = "") -> FraudAlert:
    """Mark an open fraud alert as a false alarm on ``actor``'s decision; return it.

    Locks the alert row; raises Conflict (``alert_decided``) if it is no longer open. Records the
    decision (who, why, from, to) in the audit log in the same transaction. The campaign is left
    as it is: a campaign suspended automatically is reinstated by a reviewer through the
    campaign admin, so that decision is recorded on the campaign.
    """
    return _fraud_alert_decide(
        alert=alert, to_status=FraudAlertStatus.DISMISSED, actor=actor, reason=reason, action="fraud_alert_dismiss"
    )


def risk_fraud_alert_confirm(*, alert: FraudAlert, actor, reason: str = "") -> FraudAlert:
    """Mark an open fraud alert as confirmed fraud on ``actor``'s decision; return it.

    See ``risk_fraud_alert_dismiss``: the same lock, refusal and audit row.
    """
    return _fraud_alert_decide(
        alert=alert, to_status=FraudAlertStatus.CONFIRMED, actor=actor, reason=reason, action="fraud_alert_confirm"
    )


# --- Allocation ----------------------------------------------------------------------------------


def risk_allocate(*, total: int, currency: str, weights: Mapping[int, int]) -> dict[int, int]:
    """Split ``total`` minor units across the keys of ``weights`` (e.g. campaign ids) in proportion.

    Exact: the parts are whole minor units and always add up to ``total`` (largest remainder,
    ``crowdfund_site.money.allocate``). Raises InvalidInput for a bad total (zero, negative,
    absurd) or weights that are not non-negative integers with a positive sum. Writes nothing.
    """
    check_amount(total, currency)
    values = list(weights.values())
    if not values or any(isinstance(w, bool) or not isinstance(w, int) or w < 0 for w in values) or sum(values) == 0:
        raise InvalidInput(
            "Weights must be whole numbers, none negative, and at least one above zero.",
            code="invalid_weights",
            field="weights",
        )
    return dict(zip(weights, allocate(total, values), strict=True))


# Pricing advice applied (the dashboard's one-click suggestions) lives in its own module.
from .pricing_services import (  # noqa: E402, F401
    pricing_advice_add_tier,
    pricing_advice_apply,
    pricing_advice_extend_deadline,
    pricing_advice_lower_price,
)
