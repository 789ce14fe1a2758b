"""What the risk app records: model versions, campaign assessments, pledge checks and fraud alerts.

Rows are written only by ``risk.services`` and never changed afterwards, except a fraud alert's
review status. A new assessment or model version is a new row, so every score shown to a
reviewer can be traced to the model and the numbers that produced it.
"""

import numpy as np
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from pledges.models import Pledge
from projects.models import Campaign

from .algorithms import LogisticModel


class RiskModelVersion(models.Model):
    """One version of the review risk model: a logistic regression, or the documented prior."""

    version = models.PositiveIntegerField(unique=True)
    is_prior = models.BooleanField(default=False, help_text="Hand-set prior weights, not fitted.")
    feature_names = models.JSONField(help_text="Column order of the weights, means and scales.")
    weights = models.JSONField(help_text="Change in log-odds of failure per standard unit of each feature.")
    intercept = models.FloatField()
    feature_means = models.JSONField()
    feature_scales = models.JSONField()
    trained_on = models.PositiveIntegerField(default=0, help_text="Closed campaigns it was fitted on.")
    failed_share = models.FloatField(null=True, blank=True, help_text="Share of failed campaigns in training.")
    log_loss = models.FloatField(null=True, blank=True, help_text="Mean cross-entropy on the training data.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        kind = "prior" if self.is_prior else f"fitted on {self.trained_on}"
        return f"risk model v{self.version} ({kind})"

    def as_model(self) -> LogisticModel:
        return LogisticModel(
            weights=np.asarray(self.weights, dtype=float),
            intercept=float(self.intercept),
            means=np.asarray(self.feature_means, dtype=float),
            scales=np.asarray(self.feature_scales, dtype=float),
        )


class RiskAssessment(models.Model):
    """A campaign's review risk score at one moment: probability of failure and why."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="risk_assessments")
    model_version = models.ForeignKey(RiskModelVersion, on_delete=models.PROTECT, related_name="assessments")
    features = models.JSONField(help_text="The feature values the score was computed from.")
    probability = models.FloatField(help_text="Estimated probability that the campaign fails, 0 to 1.")
    reasons = models.JSONField(help_text="The strongest factors, in words.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["campaign", "-created_at", "-id"], name="risk_assessment_latest")]
        constraints = [
            models.CheckConstraint(
                condition=Q(probability__gte=0) & Q(probability__lte=1), name="risk_assessment_probability_range"
            )
        ]

    def __str__(self) -> str:
        return f"campaign {self.campaign_id}: {self.probability:.0%} risk of failure"


class PledgeRiskCheck(models.Model):
    """The fraud evaluation of one pledge: every signal's value and the combined probability.

    One per pledge (checking again returns this one). It also keeps the IP address the pledge
    came from, when the caller knows it, for the per-IP signals of later pledges.
    """

    pledge = models.OneToOneField(Pledge, on_delete=models.CASCADE, related_name="risk_check")
    ip = models.GenericIPAddressField(null=True, blank=True)
    probability = models.FloatField(help_text="Estimated probability that the pledge is fraudulent, 0 to 1.")
    signals = models.JSONField(help_text="Each signal's value, log-likelihood ratio and description.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["ip"], name="risk_check_ip")]
        constraints = [
            models.CheckConstraint(
                condition=Q(probability__gte=0) & Q(probability__lte=1), name="risk_check_probability_range"
            )
        ]

    def __str__(self) -> str:
        return f"pledge {self.pledge_id}: {self.probability:.1%} fraud"


class FraudAlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    DISMISSED = "dismissed", "Dismissed (legitimate)"
    CONFIRMED = "confirmed", "Confirmed fraud"


class FraudAlert(models.Model):
    """A pledge check above the alert threshold, for admins to look at."""

    risk_check = models.OneToOneField(PledgeRiskCheck, on_delete=models.CASCADE, related_name="alert")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="fraud_alerts")
    backer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="fraud_alerts")
    probability = models.FloatField()
    reasons = models.JSONField(help_text="The signals that raised it, in words.")
    campaign_suspended = models.BooleanField(default=False, help_text="The campaign was suspended automatically.")
    status = models.CharField(max_length=10, choices=FraudAlertStatus.choices, default=FraudAlertStatus.OPEN)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "-created_at"], name="fraud_alert_status")]

    def __str__(self) -> str:
        return f"fraud alert on campaign {self.campaign_id} ({self.probability:.0%})"
