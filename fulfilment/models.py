"""Delivery of rewards: the holdback kept at success, each tier's shipment, each backer's delivery.

Money never moves here: ``settlement.holdback`` posts the holdback and settles it from these
rows. A ``Delivery`` is one reward pledge of a succeeded campaign with its fixed part of the
holdback (parts sum exactly to the holdback); its status says where delivery stands.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from pledges.models import Pledge
from projects.models import Campaign, RewardTier

# Bounds of what people type here: a report, an answer, a shipment's note.
TEXT_MAX_LENGTH = 2000
# Finance's permission (``DeliveryReport.Meta``) to decide reports and declare tiers not delivered.
DECIDE_PERMISSION = "fulfilment.decide_delivery_report"


class Holdback(models.Model):
    """What a succeeded campaign with reward pledges kept back from its release at success."""

    campaign = models.OneToOneField(Campaign, on_delete=models.PROTECT, related_name="holdback")
    bps = models.PositiveIntegerField(help_text="Share of the reward pledges kept, in basis points.")
    amount = models.BigIntegerField(help_text="Kept in minor units; the deliveries' parts sum to it.")
    reward_pledged = models.BigIntegerField(help_text="What the reward pledges paid, in minor units.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="holdback_amount_not_negative"),
            models.CheckConstraint(condition=Q(amount__lte=models.F("reward_pledged")), name="holdback_within_pledged"),
        ]

    def __str__(self) -> str:
        return f"holdback of campaign {self.campaign_id}"


class Shipment(models.Model):
    """A reward tier marked shipped by its initiator (once), and how its holdback was settled."""

    tier = models.OneToOneField(RewardTier, on_delete=models.PROTECT, related_name="shipment")
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="shipments")
    shipped_on = models.DateField()
    note = models.TextField(max_length=TEXT_MAX_LENGTH, blank=True)
    tracking_reference = models.CharField(max_length=120, blank=True)
    # Silence until this day counts as received (``FULFILMENT_SILENCE_DAYS`` after shipping).
    silence_until = models.DateField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    settled_at = models.DateTimeField(null=True, blank=True)
    released_amount = models.BigIntegerField(default=0)
    fee_amount = models.BigIntegerField(default=0)
    refunded_amount = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["silence_until"], name="shipment_silence_until")]

    def __str__(self) -> str:
        return f"shipment of reward {self.tier_id}"


class DeliveryStatus(models.TextChoices):
    WAITING = "waiting", "Waiting"
    RECEIVED = "received", "Received"
    REPORTED = "reported", "Problem reported"
    UPHELD = "upheld", "Report upheld (refunded)"
    DISMISSED = "dismissed", "Report dismissed"
    UNSHIPPED = "unshipped", "Never shipped (refunded)"


# A delivery in one of these counts as delivered when its tier's holdback is settled.
DELIVERED_STATUSES = (DeliveryStatus.RECEIVED, DeliveryStatus.DISMISSED)
OPEN_STATUSES = (DeliveryStatus.WAITING, DeliveryStatus.REPORTED)
# A delivery in one of these gets its part of the holdback back.
REFUNDED_STATUSES = (DeliveryStatus.UPHELD, DeliveryStatus.UNSHIPPED)


class NonDelivery(models.Model):
    """A reward tier staff declared not delivered: never marked shipped by its deadline.

    Declared once (``fulfilment.services.tier_declare_not_delivered``, audited with a reason);
    every backer of the tier then gets their part of the holdback back, and settlement records
    here when it is all refunded.
    """

    tier = models.OneToOneField(RewardTier, on_delete=models.PROTECT, related_name="non_delivery")
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="non_deliveries")
    reason = models.TextField(max_length=TEXT_MAX_LENGTH)
    declared_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    declared_at = models.DateTimeField(default=timezone.now)
    settled_at = models.DateTimeField(null=True, blank=True)
    refunded_amount = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"reward {self.tier_id} not delivered"


class OverdueTier(RewardTier):
    """Reward tiers whose holdback waits on a shipment past its deadline: staff's list (admin)."""

    class Meta:
        proxy = True
        verbose_name = "reward tier overdue for delivery"
        verbose_name_plural = "reward tiers overdue for delivery"


class Resolution(models.TextChoices):
    BACKER = "backer", "Confirmed by the backer"
    SILENCE = "silence", "No answer after shipping"
    STAFF = "staff", "Decided by staff"


class Delivery(models.Model):
    """One reward pledge of a succeeded campaign: its part of the holdback and its delivery."""

    pledge = models.OneToOneField(Pledge, on_delete=models.PROTECT, related_name="delivery")
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="deliveries")
    tier = models.ForeignKey(RewardTier, on_delete=models.PROTECT, related_name="deliveries")
    backer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deliveries")
    paid = models.BigIntegerField()
    part = models.BigIntegerField(help_text="This pledge's part of the holdback, in minor units.")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.WAITING)
    resolution = models.CharField(max_length=10, choices=Resolution.choices, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    refunded_amount = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["tier", "status"], name="delivery_tier_status")]
        constraints = [
            models.CheckConstraint(
                condition=Q(part__gte=0) & Q(part__lte=models.F("paid")), name="delivery_part_within_paid"
            ),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=models.F("part")),
                name="delivery_refund_within_part",
            ),
        ]

    def __str__(self) -> str:
        return f"delivery of pledge {self.pledge_id}"


class ReportDecision(models.TextChoices):
    UPHELD = "upheld", "Upheld: refund the backer's part"
    DISMISSED = "dismissed", "Dismissed: counts as delivered"


class DeliveryReport(models.Model):
    """A backer's report that a reward did not arrive: answered by the initiator, decided by staff."""

    delivery = models.OneToOneField(Delivery, on_delete=models.PROTECT, related_name="report")
    message = models.TextField(max_length=TEXT_MAX_LENGTH)
    created_at = models.DateTimeField(default=timezone.now)
    answer = models.TextField(max_length=TEXT_MAX_LENGTH, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    decision = models.CharField(max_length=10, choices=ReportDecision.choices, blank=True)
    decision_reason = models.TextField(max_length=TEXT_MAX_LENGTH, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [("decide_delivery_report", "Can uphold or dismiss non-delivery reports")]

    def __str__(self) -> str:
        return f"report on pledge delivery {self.delivery_id}"


# Bounds of a survey: questions and what a backer types in answer.
SURVEY_MAX_QUESTIONS = 20
SURVEY_QUESTION_MAX_LENGTH = 200
SURVEY_ANSWER_MAX_LENGTH = 1000


class Survey(models.Model):
    """The backer survey an initiator sends once after success: a shipping address and questions."""

    campaign = models.OneToOneField(Campaign, on_delete=models.PROTECT, related_name="survey")
    asks_address = models.BooleanField(default=True)
    sent_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"survey of campaign {self.campaign_id}"


class SurveyQuestion(models.Model):
    """One question, asked of every backer or only of one reward's (e.g. a shirt's size)."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="questions")
    tier = models.ForeignKey(RewardTier, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    prompt = models.CharField(max_length=SURVEY_QUESTION_MAX_LENGTH)
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return self.prompt


class SurveyAnswer(models.Model):
    """A backer's answer for one reward pledge. The address is seen by the initiator only and
    erased ``SURVEY_ADDRESS_KEEP_DAYS`` after the reward shipped."""

    survey = models.ForeignKey(Survey, on_delete=models.PROTECT, related_name="answers")
    pledge = models.OneToOneField(Pledge, on_delete=models.PROTECT, related_name="survey_answer")
    address = models.TextField(max_length=SURVEY_ANSWER_MAX_LENGTH, blank=True)
    address_erased_at = models.DateTimeField(null=True, blank=True)
    # {question id (as text): answer}
    answers = models.JSONField(default=dict, blank=True)
    answered_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"survey answer of pledge {self.pledge_id}"
