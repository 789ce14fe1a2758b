"""Promotion: old slugs, referral links and visits, follows, and the notices beat sends.

Every e-mail this app sends is a ``Notice`` row with a due time, claimed by beat's task with
``SKIP LOCKED`` and marked sent in the same transaction (``promotion.notifications``): the
database is the record of what is owed and what went, never a broker's far-future task.
"""

import re
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from projects.models import Campaign

# A referral tag: what an initiator puts after ?ref=. Short, URL-safe, and nothing a page could
# mistake for markup; anything else is refused when a link is made and ignored on a visit.
REFERRAL_TAG_MAX_LENGTH = 40
REFERRAL_TAG_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
# UTM values kept per visit; a longer one is dropped (not cut), so no half-values are counted.
UTM_VALUE_MAX_LENGTH = 100
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
REFERRER_HOST_MAX_LENGTH = 255


def referral_tag_is_valid(tag: str) -> bool:
    """Return True if ``tag`` may be a referral tag: 1 to 40 letters, digits, '-' or '_'."""
    return bool(REFERRAL_TAG_PATTERN.match(tag))


class CampaignSlugHistory(models.Model):
    """A slug a campaign answered to before; its pages answer 301 to the current one."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="old_slugs")
    slug = models.SlugField(max_length=140, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "campaign slug history"

    def __str__(self) -> str:
        return f"{self.slug} -> {self.campaign_id}"


# A campaign's web address: lower-case letters and digits in words joined by single hyphens.
CAMPAIGN_SLUG_MIN_LENGTH = 3
CAMPAIGN_SLUG_MAX_LENGTH = 140  # Campaign.slug's max_length
CAMPAIGN_SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# Renames an initiator may make per campaign: each keeps an old address answering 301 for ever,
# so the cap bounds how many addresses one campaign can hold (staff renames are not counted).
CAMPAIGN_SLUG_CHANGES_MAX = 5


class CampaignSlugChange(models.Model):
    """One rename of a campaign's web address: who, when, from and to (the cap counts these)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="slug_changes")
    from_slug = models.SlugField(max_length=CAMPAIGN_SLUG_MAX_LENGTH)
    to_slug = models.SlugField(max_length=CAMPAIGN_SLUG_MAX_LENGTH)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    by_initiator = models.BooleanField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.campaign_id}: {self.from_slug} -> {self.to_slug}"


class ReferralLink(models.Model):
    """A tagged link an initiator made for their campaign (``?ref=<tag>``)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="referral_links")
    tag = models.CharField(max_length=REFERRAL_TAG_MAX_LENGTH)
    label = models.CharField(max_length=120, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["campaign", "tag"], name="referral_link_unique_tag")]

    def __str__(self) -> str:
        return f"{self.campaign_id}?ref={self.tag}"


class VisitKind(models.TextChoices):
    # Someone arrived at the campaign page with a tag or from another site.
    CLICK = "click", "Click"
    # A signed-in visitor opened the pledge form (a pledge started; finished if a pledge follows).
    START = "start", "Pledge started"


def _new_visit_key() -> str:
    return secrets.token_hex(16)


class ReferralVisit(models.Model):
    """One arrival or pledge start, written by ``ReferralMiddleware`` (through ``promotion.visit_buffer``).

    The campaign is named by the slug of the URL, not a foreign key, so recording a click reads
    nothing; the report resolves slugs (current and old) when an initiator reads it.
    ``visitor`` is the random id of the ``cf_visitor`` cookie: one per browser, kept 30 days.
    """

    # Random, given when recorded: copying the Redis buffer twice inserts a row once.
    key = models.CharField(max_length=32, unique=True, default=_new_visit_key)
    campaign_slug = models.CharField(max_length=140)
    kind = models.CharField(max_length=5, choices=VisitKind.choices, default=VisitKind.CLICK)
    tag = models.CharField(max_length=REFERRAL_TAG_MAX_LENGTH, blank=True)
    referrer_host = models.CharField(max_length=REFERRER_HOST_MAX_LENGTH, blank=True)
    utm_source = models.CharField(max_length=UTM_VALUE_MAX_LENGTH, blank=True)
    utm_medium = models.CharField(max_length=UTM_VALUE_MAX_LENGTH, blank=True)
    utm_campaign = models.CharField(max_length=UTM_VALUE_MAX_LENGTH, blank=True)
    utm_term = models.CharField(max_length=UTM_VALUE_MAX_LENGTH, blank=True)
    utm_content = models.CharField(max_length=UTM_VALUE_MAX_LENGTH, blank=True)
    visitor = models.CharField(max_length=32)
    # Who, when signed in; no constraint to check on the hot INSERT.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["campaign_slug", "created_at"], name="referral_visit_slug_created")]

    def __str__(self) -> str:
        return f"{self.kind} {self.campaign_slug} {self.tag or self.referrer_host or '-'}"


class Follow(models.Model):
    """A person following a creator: they are e-mailed when the creator launches a campaign."""

    follower = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="following")
    creator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="followers")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["follower", "creator"], name="follow_once"),
            models.CheckConstraint(condition=~Q(follower=models.F("creator")), name="follow_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.follower_id} follows {self.creator_id}"


class NoticeKind(models.TextChoices):
    # "Notify me on launch" on a pre-launch page, or a followed creator's launch.
    LAUNCH = "launch", "Launched"
    # "Remind me": 48 hours before the deadline, unless they backed it by then.
    ENDING = "ending", "Ending soon"


class NoticeOutcome(models.TextChoices):
    SENT = "sent", "Sent"
    # Nothing to say any more: they backed it, or the campaign is no longer taking pledges.
    SKIPPED = "skipped", "Skipped"


class Notice(models.Model):
    """An e-mail owed to one person about one campaign, due at ``due_at`` (None: not yet known).

    One per (kind, person, campaign): a follower who also asked to be notified gets one launch
    e-mail. ``done_at`` is set in the transaction that sent (or skipped) it.
    """

    kind = models.CharField(max_length=10, choices=NoticeKind.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="promotion_notices")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="promotion_notices")
    due_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=NoticeOutcome.choices, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "user", "campaign"], name="notice_once")]
        indexes = [
            models.Index(
                fields=["due_at"], name="notice_due_pending", condition=Q(done_at__isnull=True, due_at__isnull=False)
            ),
            models.Index(fields=["campaign", "kind"], name="notice_campaign_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.campaign_id} -> {self.user_id}"
