"""Campaign writes: creation, editing, review workflow and launch.

Every function locks the campaign row (``select_for_update``), checks the transition against
CAMPAIGN_TRANSITIONS and records a CampaignStatusChange; a staff decision (approve, request
changes, reject, suspend, reinstate) is also recorded in the audit log, in the same transaction,
whichever interface took it. Refusals raise ApplicationError subclasses and change nothing.
Money-moving transitions (close, cancel) live in ``settlement.services``, the one place that
orchestrates campaigns, pledges and the ledger.
"""

from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connections, router, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.text import slugify
from django.utils.translation import gettext

from accounts.services import audit_record
from crowdfund_site.bounds import field_max_length
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed
from crowdfund_site.money import check_amount, currency_exponent, format_amount
from crowdfund_site.page_cache import (
    DISCOVER_GROUP,
    campaign_page_group,
    page_cache_figures_changed,
    page_cache_invalidate,
)
from crowdfund_site.transitions import ensure_transition_allowed

from .markdown import markdown_render
from .milestones.selectors import campaign_has_milestones
from .milestones.services import milestone_plan_required_check, milestones_holdback_check
from .models import (
    CAMPAIGN_FAQ_MAX_LENGTH,
    CAMPAIGN_RISKS_MAX_LENGTH,
    CAMPAIGN_STORY_MAX_LENGTH,
    CAMPAIGN_TRANSITIONS,
    COMMENT_MAX_LENGTH,
    EDITABLE_STATUSES,
    MAX_DELIVERY_HOLDBACK_BPS,
    OFFERED_FUNDING_MODELS,
    REWARD_DESCRIPTION_MAX_LENGTH,
    REWARD_QUANTITY_LIMIT_MAX,
    UPDATE_BODY_MAX_LENGTH,
    Campaign,
    CampaignStatus,
    CampaignStatusChange,
    CampaignUpdate,
    Category,
    Comment,
    CommentReport,
    FundingModel,
    RewardShippingRule,
    RewardTier,
    RewardTierChange,
)
from .pricing import price_steps_clean
from .selectors import BACKER_PLEDGE_STATUSES, reward_shipping_agreed, reward_shipping_rules, user_is_backer
from .shipping import shipping_agreed_kept, shipping_rules_clean, shipping_rules_diff
from .stretch_goals import stretch_goals_campaign_change_check

MIN_DURATION_DAYS = 1
MAX_DURATION_DAYS = 60
CAMPAIGN_EDITABLE_FIELDS = {
    "delivery_holdback_bps",
    "title",
    "summary",
    "description",
    "faq",
    "risks",
    "category",
    "currency",
    "goal",
    "funding_model",
    "duration_days",
    "launch_on_approval",
}


def campaign_lock(*, campaign_id: int) -> Campaign:
    """Return the campaign with its row locked until the surrounding transaction ends."""
    return Campaign.objects.select_for_update().get(pk=campaign_id)


def campaign_lock_beside_pledges(*, campaign_id: int) -> Campaign:
    """Lock the campaign as ``campaign_lock`` does, but FOR NO KEY UPDATE: for changes to its rewards.

    A pledge holding a tier's row (its slot claim) inserts its pledge row next, which takes a KEY
    SHARE lock on the campaign; FOR UPDATE would wait on that pledge while it waits on the tier
    the change locks next (a deadlock, met in pledges' concurrency test). Status changes still
    wait for this lock, so the campaign keeps its state until the change commits.
    """
    return Campaign.objects.select_for_update(no_key=True).get(pk=campaign_id)


def campaign_set_status(*, campaign: Campaign, to_status: str, actor=None, reason: str = "") -> Campaign:
    """Move a locked campaign to ``to_status`` if allowed, and record who, when and why.

    The caller must hold the row lock (``campaign_lock``) inside a transaction.
    Raises Conflict for a move the transitions table does not allow.
    """
    ensure_transition_allowed(
        transitions=CAMPAIGN_TRANSITIONS, current=campaign.status, target=to_status, what="campaign"
    )
    CampaignStatusChange.objects.create(
        campaign=campaign,
        from_status=campaign.status,
        to_status=to_status,
        actor=actor,
        reason=reason,
    )
    campaign.status = to_status
    campaign.save(update_fields=["status", "updated_at"])
    # Visitors must see a new state (live, succeeded, cancelled...) at once, not after the cache's timer.
    page_cache_invalidate(campaign_page_group(campaign.slug), DISCOVER_GROUP)
    return campaign


def campaign_figures_changed(*, campaign_id: int, slug: str | None = None) -> None:
    """Note, once the current transaction commits, that the campaign's totals or reward counts moved.

    Copies of its page are then served only while younger than ``PAGE_CACHE_SECONDS``. The page
    is known by its slug: pass it if already loaded; otherwise it is read after commit, so the
    pledge services that call this keep the hot campaign row locked for as short a time as they
    can. A slug passed stale by a rename (``promotion.services.campaign_slug_change``) committed
    in between leaves the new address's copy unmarked: its figures are then at most
    ``PAGE_CACHE_MAX_SECONDS`` old, the bound every copy has anyway.
    """

    def page_group() -> str | None:
        known = slug or Campaign.objects.filter(pk=campaign_id).values_list("slug", flat=True).first()
        return None if known is None else campaign_page_group(known)

    page_cache_figures_changed(page_group)


def _unique_slug(title: str) -> str:
    base = slugify(title, allow_unicode=False)[:120] or "campaign"
    slug, n = base, 1
    while Campaign.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def _check_length(value: str, *, field: str, limit: int) -> None:
    """Refuse ``value`` with InvalidInput ``too_long`` if it has more than ``limit`` characters."""
    if len(value) > limit:
        raise InvalidInput(
            gettext("This may be at most %(limit)s characters (it has %(length)s).")
            % {"limit": f"{limit:,}", "length": f"{len(value):,}"},
            code="too_long",
            field=field,
        )


def _clean_campaign_fields(fields: dict) -> dict:
    """Validate campaign fields; return them normalised. Raises InvalidInput."""
    cleaned = dict(fields)
    if "title" in cleaned:
        cleaned["title"] = (cleaned["title"] or "").strip()
        if not cleaned["title"]:
            raise InvalidInput(gettext("A campaign needs a title."), code="title_required", field="title")
        _check_length(cleaned["title"], field="title", limit=field_max_length(Campaign, "title"))
    if "summary" in cleaned:
        cleaned["summary"] = (cleaned["summary"] or "").strip()
        _check_length(cleaned["summary"], field="summary", limit=field_max_length(Campaign, "summary"))
    if "description" in cleaned:
        cleaned["description"] = cleaned["description"] or ""
        _check_length(cleaned["description"], field="description", limit=CAMPAIGN_STORY_MAX_LENGTH)
    for name, limit in (("faq", CAMPAIGN_FAQ_MAX_LENGTH), ("risks", CAMPAIGN_RISKS_MAX_LENGTH)):
        if name in cleaned:
            cleaned[name] = cleaned[name] or ""
            _check_length(cleaned[name], field=name, limit=limit)
    if "currency" in cleaned:
        currency_exponent(cleaned["currency"])
    if "goal" in cleaned:
        check_amount(cleaned["goal"], cleaned.get("currency", "USD"))
    if "funding_model" in cleaned and cleaned["funding_model"] not in OFFERED_FUNDING_MODELS:
        raise InvalidInput("Unknown funding model.", code="invalid_funding_model", field="funding_model")
    if "duration_days" in cleaned:
        days = cleaned["duration_days"]
        if not isinstance(days, int) or not MIN_DURATION_DAYS <= days <= MAX_DURATION_DAYS:
            raise InvalidInput(
                gettext("A campaign runs for %(min)d to %(max)d days.")
                % {"min": MIN_DURATION_DAYS, "max": MAX_DURATION_DAYS},
                code="invalid_duration",
                field="duration_days",
            )
    if cleaned.get("delivery_holdback_bps") is not None:
        bps = cleaned["delivery_holdback_bps"]
        if not isinstance(bps, int) or isinstance(bps, bool) or not 0 <= bps <= MAX_DELIVERY_HOLDBACK_BPS:
            raise InvalidInput(
                gettext("The delivery holdback is 0 to %(max)d %% of the reward pledges.")
                % {"max": MAX_DELIVERY_HOLDBACK_BPS // 100},
                code="invalid_holdback",
                field="delivery_holdback_bps",
            )
    if "category" in cleaned and not isinstance(cleaned["category"], Category):
        raise InvalidInput(gettext("Choose a category."), code="category_required", field="category")
    return cleaned


# Each Markdown field and the column its sanitised HTML is stored in.
MARKDOWN_FIELDS = {"description": "description_html", "faq": "faq_html", "risks": "risks_html"}


def _render_markdown_fields(fields: dict) -> dict:
    """Return the HTML columns for the Markdown fields in ``fields``: rendered once, on save."""
    return {html: markdown_render(fields[source]) for source, html in MARKDOWN_FIELDS.items() if source in fields}


@transaction.atomic
def campaign_create(
    *,
    initiator,
    title: str,
    summary: str,
    category: Category,
    goal: int,
    currency: str = "USD",
    description: str = "",
    faq: str = "",
    risks: str = "",
    funding_model: str = FundingModel.ALL_OR_NOTHING,
    duration_days: int = 30,
    launch_on_approval: bool = True,
    delivery_holdback_bps: int | None = None,
) -> Campaign:
    """Create and return a draft campaign owned by ``initiator``. Raises InvalidInput.

    ``delivery_holdback_bps``: the share of reward pledges kept until delivery (None: the setting).

    The story, FAQ and risks are Markdown; their sanitised HTML is stored beside them.
    """
    fields = _clean_campaign_fields(
        {
            "title": title,
            "summary": summary,
            "description": description,
            "faq": faq,
            "risks": risks,
            "category": category,
            "currency": currency,
            "goal": goal,
            "funding_model": funding_model,
            "duration_days": duration_days,
            "delivery_holdback_bps": delivery_holdback_bps,
        }
    )
    campaign = Campaign.objects.create(
        initiator=initiator,
        slug=_unique_slug(fields["title"]),
        launch_on_approval=bool(launch_on_approval),
        **fields,
        **_render_markdown_fields(fields),
    )
    return campaign


def _ensure_initiator(campaign: Campaign, actor) -> None:
    if actor is None or actor.pk != campaign.initiator_id:
        raise NotAllowed("Only the campaign's initiator can do this.", code="not_initiator")


def _ensure_editable(campaign: Campaign) -> None:
    if campaign.status not in EDITABLE_STATUSES:
        raise Conflict(
            gettext("A campaign can only be edited while it is a draft or changes are requested."),
            code="not_editable",
        )


def _ensure_status(campaign: Campaign, allowed: set[str], refusal: str) -> None:
    """Refuse with ``refusal`` (a sentence with ``%(status)s``) unless the campaign is in ``allowed``."""
    # Several services lead to the same status (live, in review), so each also checks where
    # the campaign comes from: launching must not lift a suspension, for one.
    if campaign.status not in allowed:
        raise Conflict(refusal % {"status": campaign.get_status_display().lower()}, code="invalid_state")


def _ensure_reviewer(reviewer) -> None:
    if reviewer is None or not reviewer.has_perm("projects.review_campaign"):
        raise NotAllowed("Only platform reviewers can review campaigns.", code="not_reviewer")


def _ensure_moderator(actor) -> None:
    if actor is None or not actor.has_perm("projects.suspend_campaign"):
        raise NotAllowed("Only platform moderators can suspend or reinstate campaigns.", code="not_moderator")


@transaction.atomic
def campaign_update(*, campaign: Campaign, actor, **fields) -> Campaign:
    """Change a draft (or changes-requested) campaign's fields; only its initiator may.

    Raises NotAllowed, Conflict (not editable, or a currency change while reward tiers exist)
    or InvalidInput; on refusal nothing changes.
    """
    unknown = set(fields) - CAMPAIGN_EDITABLE_FIELDS
    if unknown:
        raise InvalidInput(f"Cannot change {', '.join(sorted(unknown))}.", code="invalid_field")
    campaign = campaign_lock(campaign_id=campaign.pk)
    _ensure_initiator(campaign, actor)
    _ensure_editable(campaign)
    merged_currency = fields.get("currency", campaign.currency)
    if merged_currency != campaign.currency and campaign.rewards.exists():
        # Reward minimums are minor units of the old currency: switching would silently
        # re-price them (100x between USD and JPY).
        raise Conflict(
            gettext("Remove the reward tiers before changing the currency, then add them again in the new one."),
            code="currency_locked",
            field="currency",
        )
    cleaned = _clean_campaign_fields({**fields, "currency": merged_currency})
    if cleaned.get("delivery_holdback_bps"):
        milestones_holdback_check(
            has_plan=campaign_has_milestones(campaign_id=campaign.pk),
            delivery_holdback_bps=cleaned["delivery_holdback_bps"],
        )
    if "goal" not in fields and "currency" in fields:
        check_amount(campaign.goal, merged_currency)
    stretch_goals_campaign_change_check(
        campaign=campaign, goal=cleaned.get("goal", campaign.goal), currency=merged_currency
    )
    cleaned.update(_render_markdown_fields(cleaned))
    for name, value in cleaned.items():
        setattr(campaign, name, value)
    campaign.save()
    return campaign


def _clean_reward_fields(campaign: Campaign, fields: dict) -> dict:
    cleaned = dict(fields)
    if "title" in cleaned:
        cleaned["title"] = (cleaned["title"] or "").strip()
        if not cleaned["title"]:
            raise InvalidInput(gettext("A reward needs a title."), code="title_required", field="title")
        _check_length(cleaned["title"], field="title", limit=field_max_length(RewardTier, "title"))
    if "description" in cleaned:
        cleaned["description"] = cleaned["description"] or ""
        _check_length(cleaned["description"], field="description", limit=REWARD_DESCRIPTION_MAX_LENGTH)
    if "minimum_amount" in cleaned:
        check_amount(cleaned["minimum_amount"], campaign.currency)
    limit = cleaned.get("quantity_limit")
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= REWARD_QUANTITY_LIMIT_MAX
    ):
        raise InvalidInput(
            gettext("The quantity limit must be from 1 to %(max)s, or empty for unlimited.")
            % {"max": f"{REWARD_QUANTITY_LIMIT_MAX:,}"},
            code="invalid_quantity",
            field="quantity_limit",
        )
    delivery = cleaned.get("estimated_delivery")
    if delivery is not None and not isinstance(delivery, date):
        raise InvalidInput("The estimated delivery must be a date.", field="estimated_delivery")
    for name in ("available_from", "available_until"):
        value = cleaned.get(name)
        if value is not None and (not isinstance(value, datetime) or timezone.is_naive(value)):
            raise InvalidInput(f"{name} must be a date and time with its time zone.", field=name)
    return cleaned


def _check_reward_window(campaign: Campaign, *, available_from, available_until, changed: set) -> None:
    """Refuse a window that ends before it starts, after the deadline, or (newly set) in the past.

    Before launch the deadline is not known yet: a window past it simply closes with the campaign.
    """
    if available_from is not None and available_until is not None and available_until <= available_from:
        raise InvalidInput(
            gettext("The reward's availability must end after it starts."),
            code="window_ends_before_start",
            field="available_until",
        )
    if available_until is None:
        return
    if campaign.deadline is not None and available_until > campaign.deadline:
        raise InvalidInput(
            gettext("The reward's availability cannot end after the campaign's deadline (%(deadline)s).")
            % {"deadline": date_format(timezone.localtime(campaign.deadline), "DATETIME_FORMAT")},
            code="window_after_deadline",
            field="available_until",
        )
    if "available_until" in changed and available_until <= timezone.now():
        raise InvalidInput(
            gettext("The reward's availability must end in the future."),
            code="window_in_past",
            field="available_until",
        )


@transaction.atomic
def reward_tier_create(
    *,
    campaign: Campaign,
    actor,
    title: str,
    minimum_amount: int,
    description: str = "",
    quantity_limit: int | None = None,
    estimated_delivery: date | None = None,
    ships: bool = False,
    shipping_rules: list | None = None,
    available_from: datetime | None = None,
    available_until: datetime | None = None,
    price_steps: list | None = None,
) -> RewardTier:
    """Add a reward tier to an editable campaign; only its initiator may.

    A physical reward (``ships``) needs ``shipping_rules``: [{"destination": "DE" | "eu" |
    "anywhere", "cost": minor units}], checked by ``shipping_rules_clean``.
    ``available_from``/``available_until`` bound when it takes claims (both optional);
    ``price_steps`` are early prices before ``minimum_amount`` (projects.pricing). Raises
    NotAllowed, Conflict or InvalidInput; on refusal nothing is stored.
    """
    campaign = campaign_lock(campaign_id=campaign.pk)
    _ensure_initiator(campaign, actor)
    _ensure_editable(campaign)
    rules = shipping_rules_clean(shipping_rules, ships=bool(ships))
    fields = _clean_reward_fields(
        campaign,
        {
            "title": title,
            "description": description,
            "minimum_amount": minimum_amount,
            "quantity_limit": quantity_limit,
            "estimated_delivery": estimated_delivery,
            "available_from": available_from,
            "available_until": available_until,
        },
    )
    _check_reward_window(
        campaign, available_from=available_from, available_until=available_until, changed={"available_until"}
    )
    fields["price_steps"] = price_steps_clean(
        steps=price_steps or [],
        minimum_amount=fields["minimum_amount"],
        currency=campaign.currency,
        launched_at=campaign.launched_at,
    )
    reward = RewardTier.objects.create(campaign=campaign, ships=bool(ships), **fields)
    _reward_shipping_rules_replace(reward=reward, rules=rules)
    return reward


def _reward_shipping_rules_replace(*, reward: RewardTier, rules: list[tuple[str, int]]) -> None:
    """Make ``rules`` (checked pairs) the reward's whole set of shipping rules; call inside a transaction."""
    RewardShippingRule.objects.filter(reward=reward).delete()
    RewardShippingRule.objects.bulk_create(
        RewardShippingRule(reward=reward, destination=destination, cost=cost) for destination, cost in rules
    )


# What an initiator may still change on a reward tier once the campaign has launched: backers chose
# it for its price and title, so those stay; the limit may move, never below what is claimed.
# The availability window may move too: it only decides who may claim from now on.
REWARD_FIELDS_AFTER_LAUNCH = {
    "description",
    "estimated_delivery",
    "quantity_limit",
    "available_from",
    "available_until",
}
REWARD_EDITABLE_AFTER_LAUNCH_STATUSES = {CampaignStatus.LIVE, CampaignStatus.CLOSING, CampaignStatus.SUCCEEDED}
# Changes its backers are e-mailed about.
REWARD_FIELDS_BACKERS_ARE_TOLD = {"description", "estimated_delivery"}


@transaction.atomic
def reward_tier_update(*, reward: RewardTier, actor, **fields) -> RewardTier:
    """Change a reward tier; only its campaign's initiator may.

    Before launch (draft, changes requested) anything may change. After launch (live, and after
    success for the delivery date) only the description, the estimated delivery and the quantity
    limit, which may never go below what is already claimed: the reward row is locked, so a pledge
    claiming a slot at the same moment waits and the check sees its count. The price and the title
    never change after launch (Conflict ``reward_locked``), nor whether it ships (``ships``).
    While the campaign is live its ``shipping_rules`` (which replace the rules as a whole, checked
    as ``reward_tier_create`` does) may change: a destination added or a cost lowered serves new
    pledges, and a cost raised or a destination removed too, while every backer who already chose
    the reward keeps the shipping they agreed to (stored on their pledge). Such a change is
    recorded (RewardTierChange) and audited, with how many backers keep better terms than the new
    rules (``reward.shipping_kept_by`` on the returned reward). A change of description or delivery
    date is recorded (RewardTierChange) and e-mailed to the tier's backers after commit. Raises
    NotAllowed, Conflict or InvalidInput; on refusal nothing changes.
    """
    campaign = campaign_lock_beside_pledges(campaign_id=reward.campaign_id)
    _ensure_initiator(campaign, actor)
    allowed = {
        "title",
        "description",
        "minimum_amount",
        "quantity_limit",
        "estimated_delivery",
        "ships",
        "available_from",
        "available_until",
        "price_steps",
    }
    unknown = set(fields) - allowed - {"shipping_rules"}
    if unknown:
        raise InvalidInput(f"Cannot change {', '.join(sorted(unknown))}.", code="invalid_field")
    reward = RewardTier.objects.select_for_update().get(pk=reward.pk)
    shipping_rules = fields.pop("shipping_rules", None)
    new_rules = None
    if "ships" in fields or shipping_rules is not None:
        fields["ships"] = bool(fields.get("ships", reward.ships))
        if shipping_rules is None and fields["ships"]:
            shipping_rules = [{"destination": d, "cost": c} for d, c in reward_shipping_rules(reward=reward)]
        new_rules = shipping_rules_clean(shipping_rules, ships=fields["ships"])
    cleaned = _clean_reward_fields(campaign, fields)
    if "price_steps" in cleaned or ("minimum_amount" in cleaned and reward.price_steps):
        cleaned["price_steps"] = price_steps_clean(
            steps=cleaned.get("price_steps", reward.price_steps),
            minimum_amount=cleaned.get("minimum_amount", reward.minimum_amount),
            currency=campaign.currency,
            launched_at=campaign.launched_at,
        )
    changed = {name: value for name, value in cleaned.items() if getattr(reward, name) != value}
    old_rules = reward_shipping_rules(reward=reward) if new_rules is not None else []
    rules_changed = new_rules is not None and sorted(new_rules) != sorted(old_rules)
    launched = campaign.status not in EDITABLE_STATUSES
    if launched:
        if rules_changed and campaign.status != CampaignStatus.LIVE:
            raise Conflict(
                gettext("Shipping destinations and costs can change only while the campaign is live."),
                code="reward_locked",
                field="shipping_rules",
            )
        if changed or not rules_changed:
            _check_reward_change_after_launch(campaign, reward, changed)
    if rules_changed:
        _reward_shipping_rules_replace(reward=reward, rules=new_rules)
        if launched and "ships" not in changed:
            _reward_shipping_change_record(reward=reward, actor=actor, before=old_rules, after=new_rules)
            page_cache_invalidate(campaign_page_group(campaign.slug))
    if {"available_from", "available_until"} & set(changed):
        _check_reward_window(
            campaign,
            available_from=cleaned.get("available_from", reward.available_from),
            available_until=cleaned.get("available_until", reward.available_until),
            changed=set(changed),
        )
    if not changed:
        return reward
    before = {name: getattr(reward, name) for name in changed}
    for name, value in changed.items():
        setattr(reward, name, value)
    reward.save()
    told = {name: [_json_value(before[name]), _json_value(changed[name])] for name in changed}
    if campaign.launched_at is not None and told:
        change = RewardTierChange.objects.create(reward=reward, actor=actor, changes=told)
        if REWARD_FIELDS_BACKERS_ARE_TOLD & set(changed):
            change_id = change.pk
            transaction.on_commit(lambda: _enqueue_reward_change_email(change_id))
        page_cache_invalidate(campaign_page_group(campaign.slug))
    return reward


@transaction.atomic
def reward_price_step_open(*, reward: RewardTier, actor, price: int, slots: int) -> RewardTier:
    """Open a next price step on a limited tier of a live campaign: ``slots`` more at ``price``.

    The tier's slots so far keep their price: its price after its steps (``minimum_amount``)
    becomes a last step until the current limit is claimed, the limit grows by ``slots``, and
    ``price``, higher, is the price after it. Nobody who holds the tier pays more or is e-mailed
    (nothing they chose changes); a backer quoted the old price is asked again and, while slots
    at it remain, gets it (the step's count bounds the claim as any step's does). The one change
    of price a launched campaign allows, since it only adds slots. Locks the campaign, then the
    reward row, so a claim at the same moment waits and the new step starts at the right count;
    a claim made on a copy of the tier loaded before is refused past the old price's slots by
    its conditional UPDATE (``pledges.services._reward_claim_slot``).
    Recorded as a RewardTierChange. Raises NotAllowed, Conflict (not live, unlimited tier, too
    many steps) or InvalidInput (price not higher, slots out of range); on refusal nothing changes.
    """
    campaign = campaign_lock_beside_pledges(campaign_id=reward.campaign_id)
    _ensure_initiator(campaign, actor)
    if campaign.status != CampaignStatus.LIVE:
        raise Conflict(
            gettext("A next price step can be opened only while the campaign is live."), code="invalid_state"
        )
    reward = RewardTier.objects.select_for_update().get(pk=reward.pk)
    if reward.quantity_limit is None:
        raise Conflict(
            gettext("“%(reward)s” has no limit: it has no next step to open.") % {"reward": reward.title},
            code="reward_unlimited",
        )
    check_amount(price, campaign.currency)
    if price <= reward.minimum_amount:
        raise InvalidInput(
            gettext("The next step's price must be higher than the price now (%(price)s).")
            % {"price": format_amount(reward.minimum_amount, campaign.currency)},
            code="price_step_below_previous",
            field="price",
        )
    most = REWARD_QUANTITY_LIMIT_MAX - reward.quantity_limit
    if isinstance(slots, bool) or not isinstance(slots, int) or not 1 <= slots <= most:
        raise InvalidInput(
            gettext("The next step has from 1 to %(max)s slots.") % {"max": f"{max(most, 1):,}"},
            code="invalid_quantity",
            field="slots",
        )
    steps = [*reward.price_steps, {"price": reward.minimum_amount, "until_claimed": reward.quantity_limit}]
    try:
        steps = price_steps_clean(
            steps=steps, minimum_amount=price, currency=campaign.currency, launched_at=campaign.launched_at
        )
    except InvalidInput as refused:
        raise Conflict(refused.message, code=refused.code, field="price") from None
    before = {
        "price_steps": reward.price_steps,
        "minimum_amount": reward.minimum_amount,
        "quantity_limit": reward.quantity_limit,
    }
    reward.price_steps = steps
    reward.minimum_amount = price
    reward.quantity_limit += slots
    reward.save(update_fields=["price_steps", "minimum_amount", "quantity_limit"])
    RewardTierChange.objects.create(
        reward=reward, actor=actor, changes={name: [value, getattr(reward, name)] for name, value in before.items()}
    )
    page_cache_invalidate(campaign_page_group(campaign.slug))
    return reward


def _reward_shipping_change_record(
    *, reward: RewardTier, actor, before: list[tuple[str, int]], after: list[tuple[str, int]]
) -> None:
    """Record and audit a launched reward's new shipping rules; set ``reward.shipping_kept_by``.

    Nobody is e-mailed: a backer who already chose the reward keeps the shipping on their pledge.
    """
    kept = shipping_agreed_kept(reward_shipping_agreed(reward=reward), after)
    RewardTierChange.objects.create(
        reward=reward,
        actor=actor,
        changes={"shipping_rules": [[list(rule) for rule in before], [list(rule) for rule in after]]},
    )
    audit_record(
        actor=actor,
        action="reward_shipping_change",
        obj=reward,
        details={**shipping_rules_diff(before, after), "backers_keeping_agreed_shipping": kept},
    )
    reward.shipping_kept_by = kept


def _check_reward_change_after_launch(campaign: Campaign, reward: RewardTier, changed: dict) -> None:
    if campaign.status not in REWARD_EDITABLE_AFTER_LAUNCH_STATUSES:
        raise Conflict(
            gettext("Reward tiers cannot be changed while the campaign is %(status)s.")
            % {"status": campaign.get_status_display().lower()},
            code="not_editable",
        )
    if "minimum_amount" in changed:
        raise Conflict(
            gettext("The price of a reward cannot change once the campaign has launched."),
            code="reward_locked",
            field="minimum_amount",
        )
    locked = set(changed) - REWARD_FIELDS_AFTER_LAUNCH
    if locked:
        raise Conflict(
            gettext("After launch you can change a reward's description, delivery date, limit and availability only."),
            code="reward_locked",
            field=sorted(locked)[0],
        )
    if campaign.status != CampaignStatus.LIVE and set(changed) != {"estimated_delivery"}:
        raise Conflict(
            gettext("Once the campaign has ended, only the estimated delivery can change."),
            code="reward_locked",
            field=sorted(set(changed) - {"estimated_delivery"})[0],
        )
    if "quantity_limit" in changed:
        limit = changed["quantity_limit"]
        if limit is not None and limit < reward.claimed_count:
            raise Conflict(
                gettext("%(claimed)s backers already chose this reward: the limit cannot be lower.")
                % {"claimed": f"{reward.claimed_count:,}"},
                code="limit_below_claimed",
                field="quantity_limit",
            )


def _json_value(value):
    return value.isoformat() if isinstance(value, date) else value


def _enqueue_reward_change_email(change_id: int) -> None:
    from .tasks import send_reward_change_email

    send_reward_change_email.delay(change_id)


@transaction.atomic
def reward_tier_delete(*, reward: RewardTier, actor) -> None:
    """Remove a reward tier from an editable campaign; only its initiator may."""
    campaign = campaign_lock(campaign_id=reward.campaign_id)
    _ensure_initiator(campaign, actor)
    _ensure_editable(campaign)
    RewardTier.objects.filter(pk=reward.pk).delete()


@transaction.atomic
def campaign_submit_for_review(*, campaign: Campaign, actor) -> Campaign:
    """Send a draft (or a revised campaign) to the reviewers; only its initiator may.

    Refuses an incomplete campaign (no summary, story, risks or cover picture, or a loan without
    terms) with InvalidInput, and one that is not a draft or awaiting changes with Conflict.
    """
    campaign = campaign_lock(campaign_id=campaign.pk)
    _ensure_initiator(campaign, actor)
    _ensure_status(
        campaign, EDITABLE_STATUSES, gettext("This campaign is %(status)s and cannot be submitted for review.")
    )
    if not campaign.summary or not campaign.description.strip():
        raise InvalidInput(
            gettext("Add a summary and a story before submitting the campaign for review."),
            code="incomplete_campaign",
        )
    if not campaign.cover:
        raise InvalidInput(
            gettext("Add a cover picture before submitting the campaign for review."), code="cover_required"
        )
    milestone_plan_required_check(campaign=campaign)
    # The reverse accessor of lending's LoanTerms: projects sits below lending and imports none of it.
    if campaign.funding_model == FundingModel.DEBT and not hasattr(campaign, "loan_terms"):
        raise InvalidInput(
            gettext("Set the loan terms (interest rate, term, repayment) before submitting a loan for review."),
            code="loan_terms_required",
        )
    if not campaign.risks.strip():
        raise InvalidInput(
            gettext("Describe the risks and challenges before submitting the campaign for review."),
            code="incomplete_campaign",
            field="risks",
        )
    campaign_set_status(campaign=campaign, to_status=CampaignStatus.IN_REVIEW, actor=actor)
    campaign.submitted_at = timezone.now()
    campaign.save(update_fields=["submitted_at", "updated_at"])
    return campaign


def _review(*, campaign: Campaign, reviewer, to_status: str, reason: str, action: str) -> Campaign:
    _ensure_reviewer(reviewer)
    campaign = campaign_lock(campaign_id=campaign.pk)
    if campaign.initiator_id == reviewer.pk:
        raise NotAllowed("Reviewers cannot review their own campaigns.", code="own_campaign")
    _ensure_status(campaign, {CampaignStatus.IN_REVIEW}, gettext("This campaign is %(status)s and cannot be reviewed."))
    _decide(campaign=campaign, actor=reviewer, action=action, to_status=to_status, reason=reason)
    campaign.reviewed_by = reviewer
    campaign.reviewed_at = timezone.now()
    campaign.review_feedback = reason
    campaign.save(update_fields=["reviewed_by", "reviewed_at", "review_feedback", "updated_at"])
    campaign_id = campaign.pk
    transaction.on_commit(lambda: _enqueue_review_email(campaign_id, to_status))
    return campaign


def _decide(*, campaign: Campaign, actor, action: str, to_status: str, reason: str) -> Campaign:
    """Move a locked campaign on a staff member's decision, and record it in the audit log.

    The audit row (who, ``action``, from, to, why) is written in the same transaction, whichever
    interface took the decision: the admin and the API leave the same row.
    """
    from_status = campaign.status
    campaign_set_status(campaign=campaign, to_status=to_status, actor=actor, reason=reason)
    audit_record(
        actor=actor, action=action, obj=campaign, reason=reason, details={"from": from_status, "to": to_status}
    )
    return campaign


def _enqueue_review_email(campaign_id: int, decision: str) -> None:
    from .tasks import send_campaign_review_email

    send_campaign_review_email.delay(campaign_id, decision)


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Give the initiator a reason.", code="reason_required", field="reason")
    return reason


@transaction.atomic
def campaign_approve(*, campaign: Campaign, reviewer, note: str = "") -> Campaign:
    """Approve a campaign in review; it goes live at once if its initiator asked for that.

    Raises NotAllowed (not a reviewer, or their own campaign) or Conflict (not in review,
    e.g. approved twice or moved on meanwhile).
    """
    campaign = _review(
        campaign=campaign, reviewer=reviewer, to_status=CampaignStatus.APPROVED, reason=note, action="campaign_approve"
    )
    if campaign.launch_on_approval:
        _go_live(campaign=campaign, actor=reviewer, deadline=None)
    return campaign


@transaction.atomic
def campaign_request_changes(*, campaign: Campaign, reviewer, reason: str) -> Campaign:
    """Send a campaign back to its initiator with the changes wanted (reason required)."""
    return _review(
        campaign=campaign,
        reviewer=reviewer,
        to_status=CampaignStatus.CHANGES_REQUESTED,
        reason=_require_reason(reason),
        action="campaign_request_changes",
    )


@transaction.atomic
def campaign_reject(*, campaign: Campaign, reviewer, reason: str) -> Campaign:
    """Refuse a campaign for good (reason required)."""
    return _review(
        campaign=campaign,
        reviewer=reviewer,
        to_status=CampaignStatus.REJECTED,
        reason=_require_reason(reason),
        action="campaign_reject",
    )


def _go_live(*, campaign: Campaign, actor, deadline: datetime | None) -> None:
    _ensure_status(campaign, {CampaignStatus.APPROVED}, gettext("This campaign is %(status)s and cannot be launched."))
    now = timezone.now()
    if deadline is None:
        deadline = now + timedelta(days=campaign.duration_days)
    if not now + timedelta(days=MIN_DURATION_DAYS) <= deadline <= now + timedelta(days=MAX_DURATION_DAYS):
        raise InvalidInput(
            f"The deadline must be {MIN_DURATION_DAYS} to {MAX_DURATION_DAYS} days from now.",
            code="invalid_deadline",
            field="deadline",
        )
    campaign_set_status(campaign=campaign, to_status=CampaignStatus.LIVE, actor=actor)
    campaign.launched_at = now
    campaign.deadline = deadline
    campaign.platform_fee_bps = settings.PLATFORM_FEE_BPS
    campaign.save(update_fields=["launched_at", "deadline", "platform_fee_bps", "updated_at"])


@transaction.atomic
def campaign_launch(*, campaign: Campaign, actor, deadline: datetime | None = None) -> Campaign:
    """Put an approved campaign live; only its initiator may.

    The deadline defaults to launch + ``duration_days``; an explicit one must be 1 to 60 days
    ahead. Raises NotAllowed, Conflict (not approved) or InvalidInput (deadline).
    """
    campaign = campaign_lock(campaign_id=campaign.pk)
    _ensure_initiator(campaign, actor)
    _go_live(campaign=campaign, actor=actor, deadline=deadline)
    return campaign


@transaction.atomic
def campaign_suspend(*, campaign: Campaign, actor, reason: str) -> Campaign:
    """Stop a campaign from taking pledges pending an investigation (moderators only)."""
    _ensure_moderator(actor)
    campaign = campaign_lock(campaign_id=campaign.pk)
    return _decide(
        campaign=campaign,
        actor=actor,
        action="campaign_suspend",
        to_status=CampaignStatus.SUSPENDED,
        reason=_require_reason(reason),
    )


@transaction.atomic
def campaign_reinstate(*, campaign: Campaign, actor, reason: str = "") -> Campaign:
    """Return a suspended campaign to the status it was suspended from (moderators only).

    A live campaign goes back live; one suspended during review goes back to that review
    stage, never straight live. Raises NotAllowed or Conflict (not suspended).
    """
    _ensure_moderator(actor)
    campaign = campaign_lock(campaign_id=campaign.pk)
    _ensure_status(
        campaign, {CampaignStatus.SUSPENDED}, gettext("This campaign is %(status)s and cannot be reinstated.")
    )
    suspension = (
        CampaignStatusChange.objects.filter(campaign=campaign, to_status=CampaignStatus.SUSPENDED)
        .order_by("-created_at", "-id")
        .first()
    )
    previous = suspension.from_status if suspension else CampaignStatus.LIVE
    return _decide(campaign=campaign, actor=actor, action="campaign_reinstate", to_status=previous, reason=reason)


# --- Running totals (kept by the pledge services in the same transaction as each pledge) -------

# The ORM expression this statement replaces (``campaign_add_to_totals``):
#     Campaign.objects.filter(pk=campaign_id).open_for_pledges(now).update(
#         pledged_amount=F("pledged_amount") + amount,
#         backer_count=F("backer_count")
#         + Case(When(Exists(<the backer's other held or released pledges there>), then=0), default=1),
#     )
# Written out because building that expression costs the pledge path more CPU than running it
# (measured in benchmarks/README.md, "Campaign totals"). Its condition is
# ``CampaignQuerySet.open_for_pledges`` in SQL; a test holds the two to the same answer for
# every status and both sides of the deadline. The pledges table is named through the
# campaign's ``pledges`` relation: projects does not import pledges.
_ADD_TO_TOTALS_SQL = """
    UPDATE projects_campaign
       SET pledged_amount = pledged_amount + %(amount)s,
           backer_count = backer_count + CASE WHEN EXISTS (
               SELECT 1 FROM {pledge_table}
                WHERE campaign_id = %(campaign)s AND backer_id = %(backer)s
                  AND status IN ({backer_statuses}) AND id <> %(pledge)s
           ) THEN 0 ELSE 1 END
     WHERE id = %(campaign)s AND status = %(live)s AND deadline > %(now)s
"""


def campaign_add_to_totals(*, campaign_id: int, pledge_id: int, backer_id: int, amount: int) -> bool:
    """Add a newly held pledge to the campaign's running totals if it is open for pledges; return whether it did.

    One UPDATE adds ``amount``, and the backer unless they already have another held or released
    pledge there (``BACKER_PLEDGE_STATUSES``). Its condition is the authoritative "open for
    pledges" check: live (so it serialises with closing and suspending, which change the status
    under the same row lock) and before the deadline (so nothing joins in the minute before the
    close task runs). Locks the campaign row until the caller's transaction ends: call it last
    there, so the hot row stays locked briefly. Raises nothing; False means refused.
    """
    connection = connections[router.db_for_write(Campaign)]
    pledge_table = connection.ops.quote_name(Campaign._meta.get_field("pledges").related_model._meta.db_table)
    params = {
        "amount": amount,
        "campaign": campaign_id,
        "backer": backer_id,
        **{f"backer_status_{i}": status for i, status in enumerate(BACKER_PLEDGE_STATUSES)},
        "pledge": pledge_id,
        "live": str(CampaignStatus.LIVE),
        "now": connection.ops.adapt_datetimefield_value(timezone.now()),
    }
    with connection.cursor() as cursor:
        statuses = ", ".join(f"%(backer_status_{i})s" for i in range(len(BACKER_PLEDGE_STATUSES)))
        cursor.execute(_ADD_TO_TOTALS_SQL.format(pledge_table=pledge_table, backer_statuses=statuses), params)
        return cursor.rowcount == 1


# A campaign whose held pledges staff may still refund one by one: settlement has not started.
REFUNDABLE_STATUSES = (CampaignStatus.LIVE, CampaignStatus.SUSPENDED)


def campaign_take_from_totals(*, campaign_id: int, amount: int, open_for_pledges_only: bool) -> bool:
    """Take a pledge returned to its backer off the campaign's raised amount; return whether it did.

    Refused (False, nothing written) when the campaign is past the point where the pledge could
    be returned: with ``open_for_pledges_only`` (a backer cancelling) unless it is open for
    pledges, otherwise (a staff refund) once settlement has started (``REFUNDABLE_STATUSES``).
    Locks the campaign row until the caller's transaction ends. The backer count is the
    caller's to adjust, since only it knows the backer's other pledges.
    """
    campaigns = Campaign.objects.filter(pk=campaign_id)
    if open_for_pledges_only:
        campaigns = campaigns.open_for_pledges()
    else:
        campaigns = campaigns.filter(status__in=REFUNDABLE_STATUSES)
    return campaigns.update(pledged_amount=F("pledged_amount") - amount) == 1


# --- Updates and comments ----------------------------------------------------------------------


def _clean_text(value: str, *, field: str, limit: int, empty: str, too_long: str) -> str:
    """Return ``value`` stripped; refuse it empty (``empty``) or over ``limit`` characters (``too_long``,
    a sentence with ``%(length)s`` and ``%(limit)s``)."""
    value = (value or "").strip()
    if not value:
        raise InvalidInput(empty, code="required", field=field)
    if len(value) > limit:
        raise InvalidInput(
            too_long % {"length": f"{len(value):,}", "limit": f"{limit:,}"}, code="too_long", field=field
        )
    return value


def _ensure_public(campaign: Campaign) -> None:
    if campaign.launched_at is None:
        raise Conflict(gettext("This campaign has not been launched yet."), code="not_launched")


@transaction.atomic
def campaign_update_create(
    *, campaign: Campaign, actor, title: str, body: str, backers_only: bool = False
) -> CampaignUpdate:
    """Post news on a launched campaign; only its initiator may. Backers are e-mailed after commit.

    ``backers_only`` updates are readable by backers and the initiator; everyone else sees the
    title only. Raises NotAllowed, Conflict (not launched yet) or InvalidInput (empty, too long).
    """
    _ensure_initiator(campaign, actor)
    _ensure_public(campaign)
    update = CampaignUpdate.objects.create(
        campaign=campaign,
        author=actor,
        title=_clean_text(
            title,
            field="title",
            limit=field_max_length(CampaignUpdate, "title"),
            empty=gettext("Write the title."),
            too_long=gettext("The title is too long (%(length)s of %(limit)s characters)."),
        ),
        body=_clean_text(
            body,
            field="body",
            limit=UPDATE_BODY_MAX_LENGTH,
            empty=gettext("Write the update."),
            too_long=gettext("The update is too long (%(length)s of %(limit)s characters)."),
        ),
        backers_only=bool(backers_only),
    )
    _section_count_add(campaign, "update_count")
    update_id = update.pk
    transaction.on_commit(lambda: _enqueue_update_email(update_id))
    page_cache_invalidate(campaign_page_group(campaign.slug))
    return update


def _section_count_add(campaign: Campaign, field: str) -> None:
    """Count one more update or comment on the campaign's row (the page skips the query of an empty section).

    An UPDATE with F() in the caller's transaction, so concurrent posts each count and a rolled-back
    post does not.
    """
    Campaign.objects.filter(pk=campaign.pk).update(**{field: F(field) + 1})
    setattr(campaign, field, getattr(campaign, field) + 1)


def _enqueue_update_email(update_id: int) -> None:
    from .tasks import send_campaign_update_email

    send_campaign_update_email.delay(update_id)


@transaction.atomic
def comment_create(*, campaign: Campaign, actor, body: str, parent: Comment | None = None) -> Comment:
    """Comment on a launched campaign, or reply to a comment there, as a backer or its initiator.

    Replies go one level deep: a reply to a reply is refused. Raises NotAllowed (anyone else),
    Conflict (not launched) or InvalidInput (empty, too long, a reply to a reply or to another
    campaign's comment).
    """
    if actor is None or not actor.is_authenticated:
        raise NotAllowed(gettext("Log in to comment."), code="login_required")
    _ensure_public(campaign)
    if actor.pk != campaign.initiator_id and not user_is_backer(campaign=campaign, user=actor):
        raise NotAllowed(gettext("Only backers and the initiator can comment on this campaign."), code="not_backer")
    if parent is not None and (parent.campaign_id != campaign.pk or parent.parent_id is not None):
        raise InvalidInput(
            gettext("You can reply to a comment, not to a reply."), code="invalid_parent", field="parent"
        )
    comment = Comment.objects.create(
        campaign=campaign,
        author=actor,
        parent=parent,
        body=_clean_text(
            body,
            field="body",
            limit=COMMENT_MAX_LENGTH,
            empty=gettext("Write the comment."),
            too_long=gettext("The comment is too long (%(length)s of %(limit)s characters)."),
        ),
    )
    _section_count_add(campaign, "comment_count")
    page_cache_invalidate(campaign_page_group(campaign.slug))
    return comment


def comment_report(*, comment: Comment, actor, reason: str = "") -> CommentReport:
    """Report ``comment`` to staff as ``actor`` (anyone logged in); return the report.

    Idempotent: reporting the same comment again returns the first report. Raises NotAllowed
    (not logged in) or InvalidInput (reason over 500 characters).
    """
    if actor is None or not actor.is_authenticated:
        raise NotAllowed(gettext("Log in to report a comment."), code="login_required")
    reason = (reason or "").strip()
    _check_length(reason, field="reason", limit=field_max_length(CommentReport, "reason"))
    try:
        with transaction.atomic():
            return CommentReport.objects.create(comment=comment, reporter=actor, reason=reason)
    except IntegrityError:
        return CommentReport.objects.get(comment=comment, reporter=actor)


@transaction.atomic
def comment_hide(*, comment: Comment, actor, reason: str = "") -> Comment:
    """Hide ``comment`` (and so its replies' context) from the page; the campaign's initiator or staff may.

    Audited (who, why). Idempotent: hiding a hidden comment changes nothing. Raises NotAllowed.
    """
    campaign = comment.campaign
    is_staff = actor is not None and actor.is_authenticated and actor.has_perm("projects.change_comment")
    if actor is None or not (is_staff or actor.pk == campaign.initiator_id):
        raise NotAllowed(gettext("Only the initiator and staff can hide comments."), code="not_allowed")
    comment = Comment.objects.select_for_update().get(pk=comment.pk)
    if comment.hidden_at is None:
        comment.hidden_at = timezone.now()
        comment.hidden_by = actor
        comment.save(update_fields=["hidden_at", "hidden_by"])
        audit_record(actor=actor, action="comment_hide", obj=comment, reason=(reason or "").strip())
        page_cache_invalidate(campaign_page_group(campaign.slug))
    return comment
