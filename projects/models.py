from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from crowdfund_site.money import CURRENCY_CHOICES
from crowdfund_site.urls_memo import reverse_memo

# The categories the platform starts with (migration 0004), named here so that their names get
# translations; a category staff add later shows its name as written.
DEFAULT_CATEGORY_NAMES = [
    gettext_noop("Art"),
    gettext_noop("Community"),
    gettext_noop("Design"),
    gettext_noop("Film"),
    gettext_noop("Food"),
    gettext_noop("Games"),
    gettext_noop("Music"),
    gettext_noop("Publishing"),
    gettext_noop("Technology"),
]


# Limits of what initiators and backers write, one definition each: the services refuse more,
# and the web forms and the API take their max_length / max_value from here (or, for a
# CharField, from its max_length). Text columns have no length of their own.
CAMPAIGN_STORY_MAX_LENGTH = 20_000
CAMPAIGN_FAQ_MAX_LENGTH = 10_000
CAMPAIGN_RISKS_MAX_LENGTH = 5_000
REWARD_DESCRIPTION_MAX_LENGTH = 5_000
UPDATE_BODY_MAX_LENGTH = 10_000
COMMENT_MAX_LENGTH = 2_000
REVIEW_NOTE_MAX_LENGTH = 2_000
# What the discover page and the API's campaign list search for.
SEARCH_QUERY_MAX_LENGTH = 100
# A reward's quantity limit: far inside its column (PositiveIntegerField, at most 2**31 - 1).
REWARD_QUANTITY_LIMIT_MAX = 1_000_000_000
# Pictures (projects/media.py): the gallery's size and the longest text describing one picture.
GALLERY_MAX_IMAGES = 10
# The largest delivery holdback a campaign may choose (basis points of its reward pledges).
MAX_DELIVERY_HOLDBACK_BPS = 5_000
IMAGE_ALT_MAX_LENGTH = 200


class Category(models.Model):
    name = models.CharField(max_length=60, unique=True)
    slug = models.SlugField(max_length=60, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name

    @property
    def display_name(self) -> str:
        """The name in the reader's language, where the catalogue has it."""
        return gettext(self.name)


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    IN_REVIEW = "in_review", _("In review")
    CHANGES_REQUESTED = "changes_requested", _("Changes requested")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    LIVE = "live", _("Live")
    CLOSING = "closing", _("Closing")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")
    SUSPENDED = "suspended", _("Suspended")


# Every allowed move of a campaign; anything else is refused by the services.
CAMPAIGN_TRANSITIONS: dict[str, set[str]] = {
    CampaignStatus.DRAFT: {CampaignStatus.IN_REVIEW, CampaignStatus.CANCELLED},
    CampaignStatus.IN_REVIEW: {
        CampaignStatus.APPROVED,
        CampaignStatus.CHANGES_REQUESTED,
        CampaignStatus.REJECTED,
        CampaignStatus.CANCELLED,
        CampaignStatus.SUSPENDED,
    },
    CampaignStatus.CHANGES_REQUESTED: {
        CampaignStatus.IN_REVIEW,
        CampaignStatus.CANCELLED,
        CampaignStatus.SUSPENDED,
    },
    CampaignStatus.APPROVED: {CampaignStatus.LIVE, CampaignStatus.CANCELLED, CampaignStatus.SUSPENDED},
    CampaignStatus.LIVE: {CampaignStatus.CLOSING, CampaignStatus.CANCELLED, CampaignStatus.SUSPENDED},
    # Reinstating returns a campaign to the status it was suspended from.
    CampaignStatus.SUSPENDED: {
        CampaignStatus.LIVE,
        CampaignStatus.IN_REVIEW,
        CampaignStatus.CHANGES_REQUESTED,
        CampaignStatus.APPROVED,
        CampaignStatus.CANCELLED,
    },
    CampaignStatus.CLOSING: {CampaignStatus.SUCCEEDED, CampaignStatus.FAILED},
}
EDITABLE_STATUSES = {CampaignStatus.DRAFT, CampaignStatus.CHANGES_REQUESTED}
FINAL_STATUSES = {
    CampaignStatus.SUCCEEDED,
    CampaignStatus.FAILED,
    CampaignStatus.CANCELLED,
    CampaignStatus.REJECTED,
}


class FundingModel(models.TextChoices):
    ALL_OR_NOTHING = "all_or_nothing", _("All or nothing")
    FLEXIBLE = "flexible", _("Flexible")
    # Backers lend; all-or-nothing while raising, then repaid on a schedule (the lending app).
    DEBT = "debt", _("Debt (loan)")


# What initiators may choose when they create or edit a campaign. A debt campaign also needs loan
# terms (the funding step's loan fields, or the lending API) before it is submitted for review.
OFFERED_FUNDING_MODELS = (FundingModel.ALL_OR_NOTHING, FundingModel.FLEXIBLE, FundingModel.DEBT)


class SettlementOutcome(models.TextChoices):
    """What settlement does with the held pledges; decided once, when closing starts."""

    RELEASE = "release", "Release to initiator"
    REFUND = "refund", "Refund backers"


class CampaignQuerySet(models.QuerySet):
    def open_for_pledges(self, now=None) -> "CampaignQuerySet":
        """Return the campaigns taking pledges at ``now`` (default: now): live, before their deadline.

        The one statement of the rule; ``Campaign.is_open_for_pledges`` says the same of one
        loaded campaign. A pledge, a change of amount or reward, and a backer's cancellation
        are accepted only while it holds.
        """
        return self.filter(status=CampaignStatus.LIVE, deadline__gt=now or timezone.now())


class Campaign(models.Model):
    initiator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="campaigns")
    title = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140, unique=True)
    summary = models.CharField(max_length=280)
    # The story, FAQ and risks as the initiator wrote them (Markdown), each with its HTML rendered
    # and sanitised on save (projects/markdown.py), so the page shows it without rendering.
    description = models.TextField(blank=True, help_text="The story, in Markdown.")
    description_html = models.TextField(blank=True, editable=False)
    faq = models.TextField(blank=True, help_text="Questions and answers, in Markdown.")
    faq_html = models.TextField(blank=True, editable=False)
    risks = models.TextField(blank=True, help_text="Risks and challenges, in Markdown (required to submit).")
    risks_html = models.TextField(blank=True, editable=False)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="campaigns")
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, default="USD")
    goal = models.BigIntegerField(help_text="In minor units of the currency.")
    funding_model = models.CharField(max_length=20, choices=FundingModel.choices, default=FundingModel.ALL_OR_NOTHING)
    status = models.CharField(
        max_length=20, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT, db_index=True
    )
    duration_days = models.PositiveSmallIntegerField(default=30, help_text="Days from launch to deadline (1 to 60).")
    launch_on_approval = models.BooleanField(
        default=True, help_text="Go live as soon as a reviewer approves; otherwise the initiator launches it."
    )
    launched_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reviewed_campaigns",
    )
    review_feedback = models.TextField(blank=True)
    # Running totals of held (and later released) pledges, kept by the pledge services in the
    # same transaction as each pledge, so pages never sum pledges to show progress.
    pledged_amount = models.BigIntegerField(default=0)
    backer_count = models.PositiveIntegerField(default=0)
    # The fee rate agreed when the campaign went live; later changes to the setting do not
    # apply to it.
    platform_fee_bps = models.PositiveIntegerField(null=True, blank=True)
    # The delivery holdback chosen at creation, in basis points of the reward pledges kept until
    # rewards are delivered (fulfilment); 0 keeps none, empty takes DELIVERY_HOLDBACK_BPS.
    delivery_holdback_bps = models.PositiveIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(MAX_DELIVERY_HOLDBACK_BPS)]
    )
    settlement_outcome = models.CharField(max_length=10, choices=SettlementOutcome.choices, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    last_settlement_progress_at = models.DateTimeField(null=True, blank=True)
    # The cover picture's descriptor (crowdfund_site.images.image_store: key, widths, width,
    # height, alt), kept on the row so that cards and pages show it without another query.
    # Empty: no cover yet (required to submit for review).
    cover = models.JSONField(default=dict, blank=True)
    # The gallery: up to GALLERY_MAX_IMAGES such descriptors in the initiator's order, on the row
    # for the same reason. A picture is named by its ``token`` (the last part of its key).
    gallery = models.JSONField(default=list, blank=True)
    # What the campaign page's sections have to show, kept on the row by the services that write
    # those rows (campaign_update_create, comment_create, milestones_plan_replace), so the page
    # skips the query of a section that is empty. Updates and comments are never deleted (a hidden
    # comment still shows as hidden), so a count only goes up.
    update_count = models.PositiveIntegerField(default=0, db_default=0)
    comment_count = models.PositiveIntegerField(default=0, db_default=0)
    has_milestone_plan = models.BooleanField(default=False, db_default=False)
    # Kept by projects.stretch_goals (add and remove), so a campaign without any reads none.
    stretch_goal_count = models.PositiveSmallIntegerField(default=0, db_default=0)
    # Kept by projects.addons (add and remove), so pages and pledges of a campaign without any read none.
    addon_count = models.PositiveSmallIntegerField(default=0, db_default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CampaignQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "deadline"]),
            # The discover page's "new" section: live campaigns, most recently launched first.
            models.Index(fields=["status", "launched_at"], name="campaign_status_launched"),
        ]
        permissions = [
            ("review_campaign", "Can approve, reject or request changes to campaigns"),
            ("suspend_campaign", "Can suspend and reinstate campaigns"),
            ("cancel_campaign", "Can cancel campaigns (refunds every backer)"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(goal__gt=0), name="campaign_goal_positive"),
            models.CheckConstraint(condition=Q(pledged_amount__gte=0), name="campaign_pledged_not_negative"),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse_memo("projects:campaign_detail", self.slug)

    @property
    def percent_funded(self) -> int:
        return self.pledged_amount * 100 // self.goal if self.goal else 0

    @property
    def goal_reached(self) -> bool:
        return self.pledged_amount >= self.goal

    @property
    def is_open_for_pledges(self) -> bool:
        """Return True if the campaign takes pledges now: ``CampaignQuerySet.open_for_pledges`` for one row."""
        return self.status == CampaignStatus.LIVE and self.deadline is not None and self.deadline > timezone.now()


class RewardTier(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="rewards")
    title = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    minimum_amount = models.BigIntegerField(help_text="In minor units of the campaign's currency.")
    quantity_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: unlimited.")
    claimed_count = models.PositiveIntegerField(default=0)
    estimated_delivery = models.DateField(null=True, blank=True)
    # Its picture's descriptor (as Campaign.cover); empty for none.
    image = models.JSONField(default=dict, blank=True)
    # A physical reward is shipped: a pledge for it names a country its shipping rules cover and
    # pays that rule's cost on top. The database default lets bulk inserts leave it out.
    ships = models.BooleanField(default=False, db_default=False, help_text="Physical: shipped to backers.")
    # An optional availability window: outside it the tier takes no new claims (a slot freed after
    # the window closed stays free), while pledges that already hold it keep it.
    available_from = models.DateTimeField(null=True, blank=True, help_text="Empty: from launch.")
    available_until = models.DateTimeField(null=True, blank=True, help_text="Empty: until the deadline.")
    # Early prices before minimum_amount, in order (see projects.pricing): on the row itself, so a
    # page listing the tiers reads them with no extra query.
    price_steps = models.JSONField(
        default=list, blank=True, help_text='[{"price": minor units, "until_claimed": N or null, "until": ISO or null}]'
    )

    class Meta:
        ordering = ["minimum_amount", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(minimum_amount__gt=0), name="reward_minimum_positive"),
            # The database itself refuses to oversell a limited tier.
            models.CheckConstraint(
                condition=Q(quantity_limit__isnull=True) | Q(claimed_count__lte=F("quantity_limit")),
                name="reward_not_oversold",
            ),
            models.CheckConstraint(
                condition=Q(available_from__isnull=True)
                | Q(available_until__isnull=True)
                | Q(available_until__gt=F("available_from")),
                name="reward_window_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def remaining(self) -> int | None:
        if self.quantity_limit is None:
            return None
        return max(self.quantity_limit - self.claimed_count, 0)

    @property
    def sold_out(self) -> bool:
        return self.quantity_limit is not None and self.claimed_count >= self.quantity_limit

    def window_state(self, now=None) -> str:
        """Return "upcoming", "ended" or "open": where ``now`` falls in the availability window."""
        now = now or timezone.now()
        if self.available_from is not None and now < self.available_from:
            return "upcoming"
        if self.available_until is not None and now >= self.available_until:
            return "ended"
        return "open"

    @property
    def price_step_list(self) -> list[dict]:
        """The price steps with their dates parsed, for pages."""
        from datetime import datetime

        return [
            {**step, "until": datetime.fromisoformat(step["until"]) if step["until"] else None}
            for step in self.price_steps or ()
        ]

    @property
    def price_now_amount(self) -> int:
        from .pricing import price_now

        return price_now(self).amount

    @property
    def has_window(self) -> bool:
        return self.available_from is not None or self.available_until is not None

    @property
    def available_now(self) -> bool:
        return self.window_state() == "open"


class RewardShippingRule(models.Model):
    """Where a physical reward ships and what it costs there (``projects.shipping`` resolves them).

    ``destination`` is an ISO 3166-1 alpha-2 country code, a region key or ``anywhere``; the most
    specific rule covering a backer's country applies. Written only by ``reward_tier_create`` and
    ``reward_tier_update``, which replace a reward's rules as a whole.
    """

    reward = models.ForeignKey(RewardTier, on_delete=models.CASCADE, related_name="shipping_rules")
    destination = models.CharField(max_length=20)
    cost = models.BigIntegerField(help_text="In minor units of the campaign's currency; 0 ships free.")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["reward", "destination"], name="shipping_rule_once_per_destination"),
            models.CheckConstraint(condition=Q(cost__gte=0), name="shipping_cost_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.destination}: {self.cost}"


class CampaignStatusChange(models.Model):
    """An append-only record of one campaign transition: who, when, from, to, why."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=20, choices=CampaignStatus.choices)
    to_status = models.CharField(max_length=20, choices=CampaignStatus.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.campaign_id}: {self.from_status} -> {self.to_status}"


class CampaignReviewQueue(Campaign):
    """The campaigns waiting for a reviewer, as their own page in the admin."""

    class Meta:
        proxy = True
        verbose_name = "campaign in review"
        verbose_name_plural = "review queue"


class CampaignUpdate(models.Model):
    """News the initiator posts on their campaign, for everyone or only for its backers."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="updates")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    title = models.CharField(max_length=140)
    body = models.TextField()
    backers_only = models.BooleanField(default=False, help_text="Only backers (and you) can read it.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["campaign", "-created_at"], name="update_campaign_created")]

    def __str__(self) -> str:
        return self.title


class Comment(models.Model):
    """A backer's or the initiator's comment on a campaign, or a reply to one (one level deep)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="replies", help_text="Empty: not a reply."
    )
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    # Hidden by the initiator or staff (audited): the page says so instead of showing the text.
    hidden_at = models.DateTimeField(null=True, blank=True)
    hidden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["campaign", "created_at"], name="comment_campaign_created")]

    def __str__(self) -> str:
        return f"{self.author_id} on {self.campaign_id}"


class SilentCampaign(Campaign):
    """Succeeded campaigns with no update for a long while, as their own list in the admin."""

    class Meta:
        proxy = True
        verbose_name = "silent campaign"
        verbose_name_plural = "silent campaigns"


class SilenceReminderKind(models.TextChoices):
    INITIATOR = "initiator", "The initiator, to post an update"
    BACKERS = "backers", "The backers, that there has been no news"


class SilenceReminderStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Being sent"
    SENT = "sent", "Sent"
    SKIPPED = "skipped", "Skipped (news came first)"


class SilenceReminder(models.Model):
    """One reminder that a succeeded campaign has gone quiet, due once per silence.

    A silence is counted from the campaign's last news (its success or its latest update,
    ``silent_since``): the unique constraint gives each kind of reminder one row per silence,
    and a new update starts a new silence. ``projects.reminders`` creates the rows that fell due
    and sends them, claiming each with ``select_for_update(skip_locked=True)``.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="silence_reminders")
    kind = models.CharField(max_length=10, choices=SilenceReminderKind.choices)
    silent_since = models.DateTimeField()
    due_at = models.DateTimeField()
    status = models.CharField(
        max_length=10, choices=SilenceReminderStatus.choices, default=SilenceReminderStatus.PENDING
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    recipients = models.PositiveIntegerField(default=0, help_text="E-mails sent.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-due_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "kind", "silent_since"], name="silence_reminder_once_per_silence"
            )
        ]
        indexes = [models.Index(fields=["status", "due_at"], name="silence_reminder_due")]

    def __str__(self) -> str:
        return f"{self.kind} reminder for campaign {self.campaign_id} ({self.status})"


STRETCH_GOAL_TITLE_MAX_LENGTH = 120
STRETCH_GOAL_DESCRIPTION_MAX_LENGTH = 1_000
MAX_STRETCH_GOALS = 10


class StretchGoal(models.Model):
    """An amount above the goal with what the initiator promises once the campaign raises it.

    ``unlocked_at`` is set once, by beat's task (``projects.stretch_goals``), when the campaign's
    total first reaches the amount, and never cleared: a later cancellation does not lock it again.
    The e-mail to the backers is owed from then until ``email_sent_at``; a worker claims it with
    ``select_for_update(skip_locked=True)`` and ``email_claimed_at``.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="stretch_goals")
    amount = models.BigIntegerField(help_text="In minor units of the campaign's currency.")
    title = models.CharField(max_length=STRETCH_GOAL_TITLE_MAX_LENGTH)
    description = models.TextField(blank=True)
    unlocked_at = models.DateTimeField(null=True, blank=True)
    email_claimed_at = models.DateTimeField(null=True, blank=True)
    email_sent_at = models.DateTimeField(null=True, blank=True)
    recipients = models.PositiveIntegerField(default=0, help_text="E-mails sent.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["campaign", "amount"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "amount"], name="stretch_goal_unique_amount"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="stretch_goal_amount_positive"),
        ]
        indexes = [
            models.Index(
                fields=["unlocked_at"], name="stretch_goal_email_owed", condition=Q(email_sent_at__isnull=True)
            )
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.amount}) of campaign {self.campaign_id}"


ADDON_TITLE_MAX_LENGTH = 120
ADDON_DESCRIPTION_MAX_LENGTH = 1_000
MAX_ADDONS = 20


class AddOn(models.Model):
    """An item a backer adds to any pledge of the campaign, with its own price and optional limit.

    ``claimed_count`` counts the units taken by pledges being paid or held (and kept by pledges
    settled), claimed and freed by ``pledges.addons`` with the same conditional UPDATE that keeps a
    limited reward tier from being oversold; the check constraint is the database's own guard.
    The price is fixed once the campaign launches (``projects.addons``), so every backer of it
    pays the price the page showed.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="addons")
    title = models.CharField(max_length=ADDON_TITLE_MAX_LENGTH)
    description = models.TextField(blank=True)
    price = models.BigIntegerField(help_text="In minor units of the campaign's currency.")
    quantity_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Units in all; empty: unlimited.")
    claimed_count = models.PositiveIntegerField(default=0, db_default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["price", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gt=0), name="addon_price_positive"),
            models.CheckConstraint(
                condition=Q(quantity_limit__isnull=True) | Q(claimed_count__lte=F("quantity_limit")),
                name="addon_not_oversold",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def remaining(self) -> int | None:
        if self.quantity_limit is None:
            return None
        return max(self.quantity_limit - self.claimed_count, 0)

    @property
    def sold_out(self) -> bool:
        return self.quantity_limit is not None and self.claimed_count >= self.quantity_limit


# Milestones are a package of their own; imported here so Django registers their models.
from projects.milestones.models import Milestone, MilestoneStatusChange, MilestoneVote  # noqa: E402, F401


class RewardTierChange(models.Model):
    """An append-only record of a reward tier changed after launch: what changed, by whom, when.

    Its backers are e-mailed about it once (its id keys ``emails_send_once``).
    """

    reward = models.ForeignKey(RewardTier, on_delete=models.CASCADE, related_name="changes")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    changes = models.JSONField(help_text='What changed: {"field": [before, after]}, dates as ISO text.')
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"reward {self.reward_id} changed at {self.created_at:%Y-%m-%d %H:%M}"


class CampaignDeadlineExtension(models.Model):
    """The one time a live campaign's deadline was moved later: by whom, when, from and to.

    At most one per campaign (the one-to-one key): backers pledged for a stated end, and a
    deadline that moved again and again would never be one. Its backers are e-mailed once (its
    id keys ``emails_send_once``).
    """

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="deadline_extension")
    from_deadline = models.DateTimeField()
    to_deadline = models.DateTimeField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(to_deadline__gt=F("from_deadline")), name="deadline_extension_later"),
        ]

    def __str__(self) -> str:
        return f"campaign {self.campaign_id}: {self.from_deadline:%Y-%m-%d} -> {self.to_deadline:%Y-%m-%d}"


class CommentReport(models.Model):
    """Someone's report that a comment breaks the rules; staff see them in the admin."""

    comment = models.ForeignKey(Comment, on_delete=models.CASCADE, related_name="reports")
    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["comment", "reporter"], name="comment_reported_once_per_person")]

    def __str__(self) -> str:
        return f"report on comment {self.comment_id}"


class LatePledgeOfferStatus(models.TextChoices):
    OPEN = "open", _("Open")
    CLOSED = "closed", _("Closed")


class LatePledgeOffer(models.Model):
    """A campaign's late pledges: set up by the initiator before the deadline, taken after success.

    Written only by ``pledges.late_pledges``. Backers may pledge late while the offer is open and
    the campaign has succeeded (``takes_late_pledges``); closing is final (``closed_at`` once set
    is never cleared, and there is no move back to open).
    """

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="late_offer")
    status = models.CharField(max_length=10, choices=LatePledgeOfferStatus.choices, default=LatePledgeOfferStatus.OPEN)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    opened_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(status="open", closed_at__isnull=True) | Q(status="closed", closed_at__isnull=False),
                name="late_offer_closed_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"late pledges of campaign {self.campaign_id} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status == LatePledgeOfferStatus.OPEN

    def takes_late_pledges(self, campaign: Campaign) -> bool:
        """Return True if backers may pledge late now: the offer is open and ``campaign`` (its own) succeeded."""
        return self.is_open and campaign.status == CampaignStatus.SUCCEEDED


class LatePledgeReward(models.Model):
    """One reward offered to late backers, at ``price`` (never below the reward's campaign price)."""

    offer = models.ForeignKey(LatePledgeOffer, on_delete=models.CASCADE, related_name="rewards")
    reward = models.ForeignKey(RewardTier, on_delete=models.CASCADE, related_name="late_offers")
    price = models.BigIntegerField(help_text="In minor units of the campaign's currency.")

    class Meta:
        ordering = ["price", "reward_id"]
        constraints = [
            models.UniqueConstraint(fields=["offer", "reward"], name="late_reward_once_per_offer"),
            models.CheckConstraint(condition=Q(price__gt=0), name="late_reward_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.reward_id} at {self.price} late"
