"""A campaign's milestones, their recorded state changes and the backers' votes on them."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class MilestoneStatus(models.TextChoices):
    PLANNED = "planned", _("Planned")
    SUBMITTED = "submitted", _("Proof submitted")
    RESUBMITTED = "resubmitted", _("Proof resubmitted")
    VOTING = "voting", _("Backers voting")
    APPROVED = "approved", _("Approved by backers")
    RELEASED = "released", _("Released")
    REJECTED = "rejected", _("Rejected")
    OVERDUE = "overdue", _("Overdue")
    FAILED = "failed", _("Failed")


# Every allowed move of a milestone; anything else is refused by the services.
MILESTONE_TRANSITIONS: dict[str, set[str]] = {
    # The first milestone's tranche is released at success, without proof or vote.
    MilestoneStatus.PLANNED: {
        MilestoneStatus.SUBMITTED,
        MilestoneStatus.RELEASED,
        MilestoneStatus.OVERDUE,
        MilestoneStatus.FAILED,
    },
    MilestoneStatus.SUBMITTED: {MilestoneStatus.VOTING, MilestoneStatus.FAILED},
    MilestoneStatus.RESUBMITTED: {MilestoneStatus.VOTING, MilestoneStatus.FAILED},
    MilestoneStatus.VOTING: {MilestoneStatus.APPROVED, MilestoneStatus.REJECTED, MilestoneStatus.FAILED},
    # Approved by the backers; Finance signs off (then settlement releases) or rejects.
    MilestoneStatus.APPROVED: {MilestoneStatus.RELEASED, MilestoneStatus.REJECTED, MilestoneStatus.FAILED},
    MilestoneStatus.REJECTED: {MilestoneStatus.RESUBMITTED, MilestoneStatus.OVERDUE, MilestoneStatus.FAILED},
    # An overdue milestone comes back to planned once, with its extension.
    MilestoneStatus.OVERDUE: {MilestoneStatus.PLANNED, MilestoneStatus.FAILED},
}
OPEN_MILESTONE_STATUSES = set(MILESTONE_TRANSITIONS) - {MilestoneStatus.APPROVED}


class Milestone(models.Model):
    campaign = models.ForeignKey("projects.Campaign", on_delete=models.CASCADE, related_name="milestones")
    position = models.PositiveSmallIntegerField(help_text="1 for the first tranche, released at success.")
    title = models.CharField(max_length=120)
    proof_required = models.TextField(help_text="What the initiator will show as proof.")
    target_date = models.DateField()
    share_bps = models.PositiveIntegerField(help_text="Share of what is raised, in basis points.")
    status = models.CharField(max_length=20, choices=MilestoneStatus.choices, default=MilestoneStatus.PLANNED)
    # Fixed when the campaign succeeds: its share of what was pledged (largest remainder).
    amount = models.BigIntegerField(null=True, blank=True, help_text="In minor units, fixed at success.")
    proof_text = models.TextField(blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    resubmissions = models.PositiveSmallIntegerField(default=0)
    extended_to = models.DateField(null=True, blank=True)
    vote_round = models.PositiveSmallIntegerField(default=0)
    vote_closes_at = models.DateTimeField(null=True, blank=True)
    vote_basis = models.BigIntegerField(default=0, help_text="Pledged amount the turnout is measured against.")
    approve_amount = models.BigIntegerField(default=0)
    reject_amount = models.BigIntegerField(default=0)
    decision_reason = models.TextField(blank=True)
    signed_off_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    signed_off_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["campaign", "position"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "position"], name="milestone_campaign_position_unique"),
            models.CheckConstraint(
                condition=Q(share_bps__gt=0, share_bps__lte=10_000), name="milestone_share_in_range"
            ),
            models.CheckConstraint(
                condition=Q(amount__isnull=True) | Q(amount__gte=0), name="milestone_amount_not_negative"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "vote_closes_at"], name="milestone_vote_due_idx"),
            models.Index(fields=["status", "target_date"], name="milestone_target_idx"),
        ]
        permissions = [
            ("sign_off_milestone", "Can sign off or reject a milestone backers approved"),
            ("declare_milestone_failure", "Can declare a campaign's milestones failed (refunds the rest)"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} #{self.position} {self.title}"

    @property
    def due_date(self):
        """Return the date proof is due: the target, or its extension."""
        return self.extended_to or self.target_date

    @property
    def votes_amount(self) -> int:
        return self.approve_amount + self.reject_amount


class MilestoneStatusChange(models.Model):
    """One recorded move of a milestone: who, when, from, to and why."""

    milestone = models.ForeignKey(Milestone, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=20, choices=MilestoneStatus.choices)
    to_status = models.CharField(max_length=20, choices=MilestoneStatus.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.milestone_id}: {self.from_status} -> {self.to_status}"


class MilestoneVote(models.Model):
    """A backer's vote on one round of a milestone's proof, weighted by what they pledged."""

    milestone = models.ForeignKey(Milestone, on_delete=models.CASCADE, related_name="votes")
    vote_round = models.PositiveSmallIntegerField()
    backer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="milestone_votes")
    approve = models.BooleanField()
    weight = models.BigIntegerField(help_text="What the backer pledged, in minor units.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["milestone", "vote_round", "backer"], name="milestone_vote_once_per_round"),
        ]

    def __str__(self) -> str:
        return f"{self.backer_id} on {self.milestone_id}/{self.vote_round}: {self.approve}"
