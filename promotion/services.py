"""Writes of the promotion app: slugs, referral links, follows and the notices they lead to."""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from accounts.services import audit_record
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed
from crowdfund_site.page_cache import DISCOVER_GROUP, campaign_page_group, page_cache_invalidate
from projects.models import Campaign, CampaignStatus
from projects.services import campaign_lock

from .models import (
    CAMPAIGN_SLUG_CHANGES_MAX,
    CAMPAIGN_SLUG_MAX_LENGTH,
    CAMPAIGN_SLUG_MIN_LENGTH,
    CAMPAIGN_SLUG_PATTERN,
    REFERRAL_TAG_MAX_LENGTH,
    CampaignSlugChange,
    CampaignSlugHistory,
    Follow,
    Notice,
    NoticeKind,
    ReferralLink,
    referral_tag_is_valid,
)
from .selectors import campaign_slug_changes_left

# "Remind me" e-mails go this long before the deadline.
REMIND_BEFORE_END = timedelta(hours=48)
# A followed creator's launch is announced to followers only this long after it; a follower
# added later is not told about a launch long past.
FOLLOW_LAUNCH_ANNOUNCE_WITHIN = timedelta(days=1)
LABEL_MAX_LENGTH = 120


def _ensure_initiator(campaign: Campaign, actor) -> None:
    if actor is None or actor.pk != campaign.initiator_id:
        raise NotAllowed(gettext("Only the campaign's initiator can do this."), code="not_initiator")


def referral_tag_clean(tag: str) -> str:
    """Return ``tag`` stripped if it may be a referral tag; raise InvalidInput saying why not."""
    tag = (tag or "").strip()
    if len(tag) > REFERRAL_TAG_MAX_LENGTH:
        raise InvalidInput(
            gettext("A tag has at most %(limit)d characters.") % {"limit": REFERRAL_TAG_MAX_LENGTH},
            code="tag_too_long",
            field="tag",
        )
    if not referral_tag_is_valid(tag):
        raise InvalidInput(
            gettext("A tag may only use letters, digits, “-” and “_” (for example: newsletter-march)."),
            code="invalid_tag",
            field="tag",
        )
    return tag


@transaction.atomic
def referral_link_create(*, campaign: Campaign, actor, tag: str, label: str = "") -> ReferralLink:
    """Make a tagged link (``?ref=<tag>``) for the initiator's campaign; any number per campaign.

    Raises NotAllowed (not the initiator), InvalidInput (tag or label) or Conflict (the tag is
    taken on this campaign); on refusal nothing is stored.
    """
    _ensure_initiator(campaign, actor)
    tag = referral_tag_clean(tag)
    label = (label or "").strip()
    if len(label) > LABEL_MAX_LENGTH:
        raise InvalidInput(
            gettext("A label has at most %(limit)d characters.") % {"limit": LABEL_MAX_LENGTH},
            code="label_too_long",
            field="label",
        )
    try:
        with transaction.atomic():
            return ReferralLink.objects.create(campaign=campaign, tag=tag, label=label, created_by=actor)
    except IntegrityError:
        raise Conflict(
            gettext("This campaign already has a link tagged “%(tag)s”.") % {"tag": tag}, code="tag_taken", field="tag"
        ) from None


CAMPAIGN_SLUG_FORMAT_MESSAGE = gettext_lazy(
    "A web address may only use lower-case letters, digits and single “-” between them (for example: solar-lamps-2027)."
)


def campaign_slug_clean(slug: str) -> str:
    """Return ``slug`` stripped if it may be a campaign's web address; raise InvalidInput saying why not."""
    slug = (slug or "").strip()
    if not CAMPAIGN_SLUG_MIN_LENGTH <= len(slug) <= CAMPAIGN_SLUG_MAX_LENGTH:
        raise InvalidInput(
            gettext("A web address has %(low)d to %(high)d characters.")
            % {"low": CAMPAIGN_SLUG_MIN_LENGTH, "high": CAMPAIGN_SLUG_MAX_LENGTH},
            code="invalid_slug",
            field="slug",
        )
    if not CAMPAIGN_SLUG_PATTERN.match(slug):
        raise InvalidInput(str(CAMPAIGN_SLUG_FORMAT_MESSAGE), code="invalid_slug", field="slug")
    return slug


@transaction.atomic
def campaign_slug_change(*, campaign: Campaign, actor, slug: str) -> Campaign:
    """Give the campaign a new slug; the old one keeps answering with a 301 to the new one.

    The initiator or campaign staff may. A slug is never reused by another campaign (current
    or old); a campaign may take back one of its own old slugs. The initiator may rename a
    campaign at most ``CAMPAIGN_SLUG_CHANGES_MAX`` times (staff renames are not counted); each
    rename is recorded (``CampaignSlugChange``) and audited. The same slug again is a no-op.
    Locks the campaign row, so two renames of one campaign are counted one after the other.
    Raises NotAllowed, InvalidInput or Conflict; on refusal nothing changes.
    """
    campaign = campaign_lock(campaign_id=campaign.pk)
    by_initiator = actor is not None and actor.pk == campaign.initiator_id
    if actor is None or (not by_initiator and not actor.has_perm("projects.review_campaign")):
        raise NotAllowed(gettext("Only the campaign's initiator can do this."), code="not_initiator")
    new = campaign_slug_clean(slug)
    if new == campaign.slug:
        return campaign
    if by_initiator and campaign_slug_changes_left(campaign=campaign) <= 0:
        raise Conflict(
            gettext("This campaign's web address has been changed %(limit)d times, the most allowed.")
            % {"limit": CAMPAIGN_SLUG_CHANGES_MAX},
            code="slug_change_limit",
            field="slug",
        )
    taken = Campaign.objects.filter(slug=new).exists() or (
        CampaignSlugHistory.objects.filter(slug=new).exclude(campaign=campaign).exists()
    )
    if taken:
        raise Conflict(
            gettext("The web address “%(slug)s” is taken by another campaign.") % {"slug": new},
            code="slug_taken",
            field="slug",
        )
    old = campaign.slug
    try:
        # Savepoint: a campaign made or renamed in between (after the checks above) meets the
        # unique constraints instead, and is refused the same way with nothing changed.
        with transaction.atomic():
            CampaignSlugHistory.objects.filter(campaign=campaign, slug=new).delete()
            CampaignSlugHistory.objects.create(campaign=campaign, slug=old)
            campaign.slug = new
            campaign.save(update_fields=["slug", "updated_at"])
    except IntegrityError:
        campaign.slug = old
        raise Conflict(
            gettext("The web address “%(slug)s” is taken by another campaign.") % {"slug": new},
            code="slug_taken",
            field="slug",
        ) from None
    CampaignSlugChange.objects.create(
        campaign=campaign, from_slug=old, to_slug=new, actor=actor, by_initiator=by_initiator
    )
    audit_record(actor=actor, action="campaign_slug_change", obj=campaign, details={"from": old, "to": new})
    page_cache_invalidate(campaign_page_group(old), campaign_page_group(new), DISCOVER_GROUP)
    return campaign


@transaction.atomic
def follow_create(*, follower, creator) -> Follow:
    """Follow ``creator``: an e-mail when they next launch a campaign. Idempotent."""
    if follower.pk == creator.pk:
        raise InvalidInput(gettext("You cannot follow yourself."), code="follow_self")
    follow, _created = Follow.objects.get_or_create(follower=follower, creator=creator)
    return follow


@transaction.atomic
def follow_delete(*, follower, creator) -> None:
    """Stop following ``creator``; launch e-mails already owed are left to go. Idempotent."""
    Follow.objects.filter(follower=follower, creator=creator).delete()


def _notice_request(*, kind: str, user, campaign: Campaign, due_at) -> Notice:
    notice, created = Notice.objects.get_or_create(kind=kind, user=user, campaign=campaign, defaults={"due_at": due_at})
    if not created and notice.done_at is None and notice.due_at != due_at:
        notice.due_at = due_at
        notice.save(update_fields=["due_at"])
    return notice


@transaction.atomic
def reminder_request(*, user, campaign: Campaign) -> Notice:
    """Ask for one e-mail 48 hours before the campaign ends (at once if it ends sooner). Idempotent.

    Only while it takes pledges, and not for its initiator. The e-mail is skipped if the person
    has backed the campaign by then. Raises Conflict or NotAllowed.
    """
    if not campaign.is_open_for_pledges:
        raise Conflict(gettext("This campaign is not taking pledges."), code="not_open")
    if user.pk == campaign.initiator_id:
        raise NotAllowed(gettext("This is your own campaign."), code="own_campaign")
    due_at = max(campaign.deadline - REMIND_BEFORE_END, timezone.now())
    return _notice_request(kind=NoticeKind.ENDING, user=user, campaign=campaign, due_at=due_at)


def ending_notices_follow_deadline(*, campaign: Campaign) -> int:
    """Move the "Remind me" e-mails not yet sent to REMIND_BEFORE_END before the campaign's deadline now.

    For a deadline that moved (``projects.live_changes.campaign_deadline_extend``): call it in the
    same transaction, so beat never sends a reminder timed for the old end. Return how many moved.
    """
    due_at = max(campaign.deadline - REMIND_BEFORE_END, timezone.now())
    return Notice.objects.filter(kind=NoticeKind.ENDING, campaign=campaign, done_at__isnull=True).update(due_at=due_at)


@transaction.atomic
def launch_notice_request(*, user, campaign: Campaign) -> Notice:
    """Ask for an e-mail when an approved campaign launches (within 5 minutes of it). Idempotent.

    Raises Conflict if the campaign is not waiting to launch.
    """
    if campaign.status != CampaignStatus.APPROVED:
        raise Conflict(gettext("This campaign is not waiting to launch."), code="not_prelaunch")
    if user.pk == campaign.initiator_id:
        raise NotAllowed(gettext("This is your own campaign."), code="own_campaign")
    return _notice_request(kind=NoticeKind.LAUNCH, user=user, campaign=campaign, due_at=None)


@transaction.atomic
def notice_cancel(*, user, campaign: Campaign, kind: str) -> None:
    """Withdraw a request for a notice not yet sent. Idempotent."""
    Notice.objects.filter(kind=kind, user=user, campaign=campaign, done_at__isnull=True).delete()


def notices_arm(*, now=None) -> int:
    """Make launch notices due: requested ones of campaigns that launched, and one per follower.

    Idempotent (the (kind, person, campaign) constraint): run by beat before sending, any number
    of times, by any number of workers. Return how many notices became due.
    """
    now = now or timezone.now()
    armed = Notice.objects.filter(
        kind=NoticeKind.LAUNCH, due_at__isnull=True, done_at__isnull=True, campaign__launched_at__isnull=False
    ).update(due_at=now)
    recent = Campaign.objects.filter(
        status=CampaignStatus.LIVE, launched_at__gte=now - FOLLOW_LAUNCH_ANNOUNCE_WITHIN
    ).values_list("pk", "initiator_id", "launched_at")
    for campaign_id, initiator_id, launched_at in recent:
        followers = Follow.objects.filter(creator_id=initiator_id, created_at__lte=launched_at).values_list(
            "follower_id", flat=True
        )
        rows = [
            Notice(kind=NoticeKind.LAUNCH, user_id=follower_id, campaign_id=campaign_id, due_at=now)
            for follower_id in followers.iterator(chunk_size=1_000)
        ]
        armed += len(Notice.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1_000)) if rows else 0
    return armed
