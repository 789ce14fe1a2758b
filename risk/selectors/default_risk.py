"""Default risk of debt campaigns: the default model's features from the database, and its grade."""

from dataclasses import dataclass

import numpy as np
from django.db.models import Count, Q
from django.utils import timezone

from lending.models import Loan, LoanStatus, LoanTerms, RepaymentType
from projects.models import Campaign

from .. import default

BAD_STATUSES = (LoanStatus.DEFAULTED, LoanStatus.WRITTEN_OFF)


@dataclass(frozen=True)
class DefaultRisk:
    """A debt campaign's probability of default, its grade A to E and the reasons in words."""

    probability: float
    grade: str
    reasons: list[str]

    @property
    def percent(self) -> str:
        return f"{self.probability * 100:.1f}"


def campaign_default_features(*, campaign: Campaign, terms: LoanTerms) -> np.ndarray:
    """Return the default model's inputs for one debt campaign, columns in ``default.FEATURE_NAMES``."""
    initiator = campaign.initiator
    history = Loan.objects.filter(borrower_id=campaign.initiator_id).aggregate(
        repaid=Count("id", filter=Q(status=LoanStatus.REPAID)),
        bad=Count("id", filter=Q(status__in=BAD_STATUSES)),
    )
    age_days = max((timezone.now() - initiator.date_joined).total_seconds() / 86_400, 0.0)
    values = {
        "rate_percent": terms.rate_bps / 100,
        "term_months": float(terms.term_months),
        "bullet": 1.0 if terms.repayment_type == RepaymentType.BULLET else 0.0,
        "grace_months": float(terms.grace_months),
        "log_account_age_days": float(np.log1p(age_days)),
        "email_verified": 1.0 if initiator.email_verified else 0.0,
        "log_loans_repaid": float(np.log1p(history["repaid"])),
        "log_loans_bad": float(np.log1p(history["bad"])),
    }
    return np.array([values[name] for name in default.FEATURE_NAMES], dtype=float)


def campaign_default_risk(*, campaign: Campaign) -> DefaultRisk | None:
    """Return a debt campaign's default risk under the prior model, or None if it has no loan terms."""
    terms = LoanTerms.objects.filter(campaign=campaign).first()
    if terms is None:
        return None
    model = default.prior_model()
    row = campaign_default_features(campaign=campaign, terms=terms)
    probability = float(model.predict(row[None, :])[0])
    reasons = default.reasons(row, model.contributions(row[None, :])[0])
    return DefaultRisk(probability=probability, grade=default.grade_of(probability), reasons=reasons)
