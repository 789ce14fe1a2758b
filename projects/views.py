from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST

from crowdfund_site.exceptions import ApplicationError, InvalidInput
from crowdfund_site.money import currency_exponent
from crowdfund_site.page_cache import (
    DISCOVER_GROUP,
    cache_page_for_visitors,
    campaign_page_group,
    page_cache_expires_at,
)
from fulfilment.selectors import holdback_bps_of
from lending.selectors import loan_terms_of, loan_terms_preview
from lending.services import campaign_funding_update
from matching.selectors import campaigns_matched_by
from pledges.selectors import backer_state_on_campaign
from promotion.content import campaign_share, site_base
from risk.selectors import live_campaign_pool_cached, recommendations_for
from risk.tasks import enqueue_campaign_assessment

from .forms import (
    CampaignBasicsForm,
    CampaignFundingForm,
    CampaignStoryForm,
    CampaignUpdateForm,
    CommentForm,
    CommentReportForm,
    DiscoverForm,
    PictureForm,
    RewardAvailabilityForm,
    RewardForm,
    RewardPriceStepsForm,
)
from .markdown import markdown_render
from .models import EDITABLE_STATUSES, CampaignStatus, Comment, FundingModel
from .selectors import (
    COMMENT_THREADS_PER_PAGE,
    DiscoverSort,
    campaign_comment_threads,
    campaign_comments,
    campaign_of_initiator_get,
    campaign_page_get,
    campaign_page_render_get,
    campaign_reward_tiers,
    campaign_stretch_goals,
    campaign_updates,
    campaigns_discover,
    campaigns_ending_soon,
    campaigns_new,
    campaigns_of_initiator,
    categories_all,
    reward_shipping_rules,
    rewards_shipping_rules,
    user_is_backer,
)
from .services import (
    campaign_create,
    campaign_launch,
    campaign_submit_for_review,
    campaign_update,
    campaign_update_create,
    comment_create,
    comment_hide,
    comment_report,
    reward_tier_create,
    reward_tier_delete,
    reward_tier_update,
)
from .shipping import destination_name

SECTION_SIZE = 3


def amount_text(minor: int, currency: str) -> str:
    """Return minor units as a plain number for an input: 500000 USD -> "5000.00"."""
    exponent = currency_exponent(currency)
    if exponent == 0:
        return str(minor)
    return f"{minor // 10**exponent}.{minor % 10**exponent:0{exponent}d}"


@cache_page_for_visitors(lambda: DISCOVER_GROUP)
def home(request):
    """The discover page: ending soon and new campaigns, then every live one, searchable."""
    form = DiscoverForm(request.GET or None, categories=categories_all())
    filters = form.filters() if form.is_bound else {"query": "", "category": None, "sort": ""}
    if not filters["sort"]:
        # Show the order actually used: best match for a search, otherwise ending soonest.
        form.data = form.data.copy()
        form.data["sort"] = DiscoverSort.RELEVANCE if filters["query"] else DiscoverSort.ENDING
        form.is_bound = True
    page_obj = Paginator(campaigns_discover(**filters), settings.DISCOVER_PAGE_SIZE).get_page(request.GET.get("page"))
    page_obj.object_list = list(page_obj.object_list)
    kept = {key: request.GET[key] for key in ("q", "category", "sort") if request.GET.get(key)}
    show_sections = not kept and page_obj.number == 1
    sections = {
        "ending_soon": list(campaigns_ending_soon()[:SECTION_SIZE]) if show_sections else [],
        "new_campaigns": list(campaigns_new()[:SECTION_SIZE]) if show_sections else [],
        "recommended": _recommended(request.user) if show_sections else [],
    }
    _attach_matches(page_obj.object_list, *sections.values())
    context = {
        "form": form,
        "categories": list(form.categories.values()),
        "category": filters["category"],
        "query": filters["query"],
        "page_obj": page_obj,
        "page_query": urlencode(kept) + "&" if kept else "",
        "show_sections": show_sections,
        **sections,
    }
    return render(request, "projects/home.html", context)


def _attach_matches(*card_lists) -> None:
    """Give each campaign on the cards its ``matches`` (who matched it, how much) for the card's badge, in one query."""
    campaigns = [campaign for cards in card_lists for campaign in cards]
    matches = campaigns_matched_by(campaign_ids={campaign.pk for campaign in campaigns})
    for campaign in campaigns:
        campaign.matches = matches.get(campaign.pk, [])


def _recommended(user) -> list:
    """Return "Recommended for you" for a signed-in user, each campaign with its reason attached.

    The live campaigns come from the risk app's cached pool, so ranking costs two queries (the
    user's pledges and the chosen campaigns) however many campaigns are live.
    """
    if not user.is_authenticated:
        return []
    ranked = recommendations_for(user, SECTION_SIZE, pool=live_campaign_pool_cached())
    campaigns = []
    for item in ranked:
        if item.campaign is not None:
            item.campaign.recommendation_reason = item.reason
            campaigns.append(item.campaign)
    return campaigns


@cache_page_for_visitors(campaign_page_group, shows_campaign_figures=True)
def campaign_detail(request, slug: str):
    """The campaign's page, for whoever may see it (``campaigns_visible_to``); staff see every stage."""
    campaign = campaign_page_render_get(slug=slug, viewer=request.user)
    if campaign is None:
        raise Http404("No such campaign")
    response = render(request, "projects/campaign_detail.html", _campaign_page_context(request, campaign))
    if campaign.is_open_for_pledges:
        page_cache_expires_at(response, campaign.deadline)
    return response


def _campaign_page_context(request, campaign, *, comment_form=None) -> dict:
    is_initiator = request.user.is_authenticated and request.user.pk == campaign.initiator_id
    launched = campaign.launched_at is not None
    is_backer, open_pledge_id = False, None
    if launched and not is_initiator:
        # One query for both: the button becomes "Manage your pledge" on an open pledge. Only a
        # signed-in render asks; the cached anonymous copy is the same for everyone.
        is_backer, open_pledge_id = backer_state_on_campaign(backer=request.user, campaign_id=campaign.pk)
    rewards = campaign_reward_tiers(campaign=campaign)
    return {
        "campaign": campaign,
        "open_pledge_id": open_pledge_id,
        "rewards": rewards,
        # The head's description, cards and JSON-LD and the share box, from one page URL.
        "share": campaign_share(campaign=campaign, rewards=rewards, base=site_base(request)),
        "is_initiator": is_initiator,
        "is_backer": is_backer,
        "can_read_backer_updates": is_initiator or is_backer,
        # The counts on the row (kept by the services that post them) spare the query of an empty section.
        "updates": campaign_updates(campaign=campaign) if launched and campaign.update_count else [],
        "comments": campaign_comments(campaign=campaign) if launched and campaign.comment_count else [],
        "stretch_goals": campaign_stretch_goals(campaign=campaign, viewer=request.user),
        "can_comment": launched and (is_initiator or is_backer),
        "comment_form": comment_form or CommentForm(),
    }


@login_required
@require_POST
def comment_create_view(request, slug: str):
    """Post a comment, or a reply, as a backer or the initiator; the page shows why anyone else cannot."""
    campaign = campaign_page_get(slug=slug, viewer=request.user)
    if campaign is None:
        raise Http404("No such campaign")
    form = CommentForm(request.POST)
    if form.is_valid():
        parent = None
        if form.cleaned_data.get("parent"):
            parent = Comment.objects.filter(campaign=campaign, pk=form.cleaned_data["parent"]).first()
        try:
            if form.cleaned_data.get("parent") and parent is None:
                raise InvalidInput(gettext("That comment is not on this campaign."), code="invalid_parent")
            comment = comment_create(
                campaign=campaign, actor=request.user, body=form.cleaned_data["body"], parent=parent
            )
        except ApplicationError as error:
            _apply_error(form, error)
        else:
            messages.success(request, gettext("Comment posted."))
            if parent is not None:
                return redirect(reverse("projects:comment_list", kwargs={"slug": slug}) + f"#comment-{comment.pk}")
            return redirect(campaign.get_absolute_url() + "#comments")
    context = _campaign_page_context(request, campaign, comment_form=form)
    return render(request, "projects/campaign_detail.html", context, status=400)


def comment_list(request, slug: str):
    """Every comment on a campaign as threads (one level of replies), 20 threads a page."""
    campaign = campaign_page_get(slug=slug, viewer=request.user)
    if campaign is None or campaign.launched_at is None:
        raise Http404("No such campaign")
    page_obj = Paginator(campaign_comment_threads(campaign=campaign), COMMENT_THREADS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    is_initiator = request.user.is_authenticated and request.user.pk == campaign.initiator_id
    can_comment = is_initiator or user_is_backer(campaign=campaign, user=request.user)
    context = {
        "campaign": campaign,
        "page_obj": page_obj,
        "can_comment": can_comment,
        "can_hide": is_initiator
        or (request.user.is_authenticated and request.user.has_perm("projects.change_comment")),
    }
    return render(request, "projects/comment_list.html", context)


def _campaign_comment_or_404(request, slug: str, comment_id: int):
    campaign = campaign_page_get(slug=slug, viewer=request.user)
    comment = None if campaign is None else Comment.objects.filter(campaign=campaign, pk=comment_id).first()
    if comment is None:
        raise Http404("No such comment")
    comment.campaign = campaign
    return comment


@login_required
@require_POST
def comment_report_view(request, slug: str, comment_id: int):
    comment = _campaign_comment_or_404(request, slug, comment_id)
    form = CommentReportForm(request.POST)
    try:
        if not form.is_valid():
            raise InvalidInput(gettext("The reason may be at most 500 characters."), code="too_long")
        comment_report(comment=comment, actor=request.user, reason=form.cleaned_data["reason"])
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, gettext("Thank you. Our team will look at this comment."))
    return redirect(reverse("projects:comment_list", kwargs={"slug": slug}) + f"#comment-{comment.pk}")


@login_required
@require_POST
def comment_hide_view(request, slug: str, comment_id: int):
    comment = _campaign_comment_or_404(request, slug, comment_id)
    try:
        comment_hide(comment=comment, actor=request.user, reason=request.POST.get("reason", "")[:500])
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, gettext("The comment is hidden."))
    return redirect(reverse("projects:comment_list", kwargs={"slug": slug}) + f"#comment-{comment.pk}")


@login_required
@require_http_methods(["GET", "POST"])
def campaign_update_new(request, slug: str):
    """The initiator writes an update (GET shows the form); backers are e-mailed once it is posted."""
    campaign = _initiator_campaign_or_404(request, slug)
    form = CampaignUpdateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            campaign_update_create(campaign=campaign, actor=request.user, **form.cleaned_data)
        except ApplicationError as error:
            _apply_error(form, error)
        else:
            messages.success(request, gettext("Update posted. Your backers are getting it by e-mail."))
            return redirect(campaign.get_absolute_url() + "#updates")
    return render(request, "projects/campaign_update_form.html", {"campaign": campaign, "form": form})


# --- Initiator: create a campaign in steps, add rewards, submit for review --------------------

STEPS = [
    ("basics", _("Basics")),
    ("story", _("Story")),
    ("pictures", _("Pictures")),
    ("funding", _("Funding")),
    ("rewards", _("Rewards")),
    ("review", _("Preview and submit")),
]
STEP_FORMS = {"basics": CampaignBasicsForm, "story": CampaignStoryForm, "funding": CampaignFundingForm}


def _apply_error(form, error: ApplicationError) -> None:
    form.add_error(error.field if error.field in form.fields else None, error.message)


def _all_valid(*forms) -> bool:
    results = [form.is_valid() for form in forms]  # every form validated, so each shows its errors
    return all(results)


def _apply_reward_error(form, availability_form, error: ApplicationError, steps_form) -> None:
    """Show a reward service's refusal on the section that holds its field."""
    section = next((f for f in (availability_form, steps_form) if error.field in f.fields), form)
    _apply_error(section, error)


def _price_steps_text(reward, currency: str) -> str:
    """A tier's price steps as the editor writes them, one a line."""
    lines = []
    for step in reward.price_step_list:
        end = step["until_claimed"] or timezone.localtime(step["until"]).strftime("%Y-%m-%d %H:%M")
        lines.append(f"{amount_text(step['price'], currency)} until {end}")
    return "\n".join(lines)


def _initiator_campaign_or_404(request, slug: str):
    campaign = campaign_of_initiator_get(slug=slug, initiator=request.user)
    if campaign is None:
        raise Http404("No such campaign")
    return campaign


def _step_context(campaign, step: str, **extra) -> dict:
    return {
        "campaign": campaign,
        "steps": STEPS,
        "step": step,
        "editable": campaign is None or campaign.status in EDITABLE_STATUSES,
        **extra,
    }


@login_required
@require_http_methods(["GET", "POST"])
def campaign_start(request):
    """Step 1 for a new campaign: saves a draft, then goes on to the story."""
    form = CampaignBasicsForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            campaign = campaign_create(initiator=request.user, **form.cleaned_data)
        except ApplicationError as error:
            _apply_error(form, error)
        else:
            messages.success(request, gettext("Draft saved. Now tell backers your story."))
            return redirect("projects:campaign_edit", slug=campaign.slug, step="story")
    return render(request, "projects/campaign_form.html", _step_context(None, "basics", form=form))


@login_required
@require_http_methods(["GET", "POST"])
def campaign_edit(request, slug: str, step: str):
    """Steps 1 to 3 of an existing draft: each saves and moves on to the next."""
    campaign = _initiator_campaign_or_404(request, slug)
    form_class = STEP_FORMS.get(step)
    if form_class is None:
        raise Http404("No such step")
    if form_class is CampaignFundingForm:
        return _campaign_edit_funding(request, campaign)
    initial = {name: getattr(campaign, name) for name in form_class.base_fields}
    if "goal" in initial:
        initial["goal"] = amount_text(campaign.goal, campaign.currency)
    form = form_class(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and "preview" in request.POST and form_class is CampaignStoryForm:
        # The preview without JavaScript: the same page, the text kept in the form, nothing saved.
        previews = _markdown_previews(form)
        return render(
            request, "projects/campaign_form.html", _step_context(campaign, step, form=form, previews=previews)
        )
    if request.method == "POST" and form.is_valid():
        try:
            campaign_update(campaign=campaign, actor=request.user, **form.cleaned_data)
        except ApplicationError as error:
            _apply_error(form, error)
        else:
            names = [name for name, _label in STEPS]
            messages.success(request, gettext("Saved."))
            return redirect(_step_url(campaign, names[names.index(step) + 1]))
    return render(request, "projects/campaign_form.html", _step_context(campaign, step, form=form))


def _campaign_edit_funding(request, campaign):
    """Step 3, with a debt campaign's loan terms and the schedule they give the whole goal."""
    initial = {name: getattr(campaign, name) for name in ("funding_model", "duration_days", "launch_on_approval")}
    initial.update(CampaignFundingForm.initial_loan_fields(loan_terms_of(campaign=campaign)))
    # What it will keep: none with milestones (or a loan), whatever was chosen before the plan.
    initial["delivery_holdback_percent"] = holdback_bps_of(campaign) // 100
    form = CampaignFundingForm(request.POST if request.method == "POST" else None, initial=initial)
    preview = None
    if request.method == "POST" and form.is_valid():
        terms = form.cleaned_data["loan_terms"]
        if "preview_schedule" in request.POST:
            # Shows what the typed terms give, saving nothing.
            if terms is not None:
                preview = loan_terms_preview(currency=campaign.currency, amount=campaign.goal, **terms)
        else:
            try:
                campaign_funding_update(
                    campaign=campaign, actor=request.user, loan_terms=terms, **form.campaign_fields()
                )
            except ApplicationError as error:
                _apply_error(form, error)
            else:
                messages.success(request, gettext("Saved."))
                return redirect(_step_url(campaign, "rewards"))
    elif request.method == "GET" and campaign.funding_model == FundingModel.DEBT:
        terms = loan_terms_of(campaign=campaign)
        if terms is not None:
            preview = loan_terms_preview(
                currency=campaign.currency,
                amount=campaign.goal,
                rate_bps=terms.rate_bps,
                term_months=terms.term_months,
                repayment_type=terms.repayment_type,
                grace_months=terms.grace_months,
            )
    context = _step_context(campaign, "funding", form=form, loan_preview=preview)
    return render(request, "projects/campaign_form.html", context)


def _markdown_previews(form) -> list[dict]:
    """Return each Markdown field of ``form`` with its label and the HTML the page would show."""
    previews = []
    for name in ("description", "faq", "risks"):
        field = form.fields.get(name)
        if field is None:
            continue
        source = form.data.get(name, "")[: field.max_length]
        previews.append({"name": name, "label": field.label, "html": markdown_render(source)})
    return previews


@login_required
@require_POST
def campaign_story_preview(request, slug: str):
    """Return the preview of the story step's Markdown as an HTML fragment (the editor's Preview button).

    Renders what was sent, saves nothing; the text is cut at each field's limit, so an oversized
    post costs no more than a full one.
    """
    campaign = _initiator_campaign_or_404(request, slug)
    form = CampaignStoryForm(request.POST)
    return render(
        request, "projects/_markdown_preview.html", {"campaign": campaign, "previews": _markdown_previews(form)}
    )


def _step_url(campaign, step: str) -> str:
    if step == "pictures":
        return reverse("projects:campaign_pictures", kwargs={"slug": campaign.slug})
    if step == "rewards":
        return reverse("projects:campaign_rewards", kwargs={"slug": campaign.slug})
    if step == "review":
        return reverse("projects:campaign_review", kwargs={"slug": campaign.slug})
    return reverse("projects:campaign_edit", kwargs={"slug": campaign.slug, "step": step})


@login_required
@require_http_methods(["GET", "POST"])
def campaign_rewards(request, slug: str):
    """Step 4: the reward tiers, with a form to add one."""
    campaign = _initiator_campaign_or_404(request, slug)
    form = RewardForm(request.POST if request.method == "POST" else None, currency=campaign.currency)
    availability_form = RewardAvailabilityForm(request.POST if request.method == "POST" else None)
    steps_form = RewardPriceStepsForm(request.POST if request.method == "POST" else None, currency=campaign.currency)
    if request.method == "POST" and _all_valid(form, availability_form, steps_form):
        try:
            reward_tier_create(
                campaign=campaign,
                actor=request.user,
                **form.cleaned_data,
                **availability_form.cleaned_data,
                **steps_form.cleaned_data,
            )
        except ApplicationError as error:
            _apply_reward_error(form, availability_form, error, steps_form)
        else:
            messages.success(request, gettext("Reward “%(title)s” added.") % {"title": form.cleaned_data["title"]})
            return redirect("projects:campaign_rewards", slug=campaign.slug)
    rewards = list(campaign.rewards.all())
    shipping = rewards_shipping_rules(rewards=rewards)
    for reward in rewards:
        reward.picture_form = PictureForm(prefix=f"reward-{reward.pk}")
        reward.shipping_display = [(destination_name(d), cost) for d, cost in shipping.get(reward.pk, [])]
    return render(
        request,
        "projects/campaign_rewards.html",
        _step_context(
            campaign,
            "rewards",
            form=form,
            availability_form=availability_form,
            steps_form=steps_form,
            rewards=rewards,
        ),
    )


@login_required
@require_http_methods(["GET", "POST"])
def campaign_reward_edit(request, slug: str, reward_id: int):
    """Change one reward tier: anything before launch; after it, the description, delivery and limit."""
    campaign = _initiator_campaign_or_404(request, slug)
    reward = next((r for r in campaign.rewards.all() if r.pk == reward_id), None)
    if reward is None:
        raise Http404("No such reward")
    initial = {
        "title": reward.title,
        "description": reward.description,
        "minimum_amount": amount_text(reward.minimum_amount, campaign.currency),
        "quantity_limit": reward.quantity_limit,
        "estimated_delivery": reward.estimated_delivery,
        "ships": reward.ships,
        "shipping_rules": "\n".join(
            f"{destination} {amount_text(cost, campaign.currency)}"
            for destination, cost in reward_shipping_rules(reward=reward)
        ),
    }
    form = RewardForm(request.POST if request.method == "POST" else None, initial=initial, currency=campaign.currency)
    availability_form = RewardAvailabilityForm(
        request.POST if request.method == "POST" else None,
        initial={"available_from": reward.available_from, "available_until": reward.available_until},
    )
    steps_form = RewardPriceStepsForm(
        request.POST if request.method == "POST" else None,
        initial={"price_steps": _price_steps_text(reward, campaign.currency)},
        currency=campaign.currency,
    )
    launched = campaign.status not in EDITABLE_STATUSES
    if launched:
        steps_form.fields["price_steps"].disabled = True
        # Shown, but not taken from the post: backers chose the tier for its title and price.
        form.fields["title"].disabled = True
        form.fields["minimum_amount"].disabled = True
        # Whether it ships stays. Where to and at what cost may change while it is live: backers
        # who chose it keep the shipping they agreed to, new pledges get the new rules.
        form.fields["ships"].disabled = True
        if reward.ships and campaign.status == CampaignStatus.LIVE:
            form.fields["shipping_rules"].help_text = gettext(
                "%(rules)s Adding a destination or lowering a cost applies to new pledges. Raising a cost or "
                "removing a destination applies to new pledges only: backers who already chose this reward "
                "keep the shipping they agreed to, and nobody is charged more."
            ) % {"rules": form.fields["shipping_rules"].help_text}
        else:
            form.fields["shipping_rules"].disabled = True
    if request.method == "POST" and _all_valid(form, availability_form, steps_form):
        try:
            steps = {} if launched else steps_form.cleaned_data
            saved = reward_tier_update(
                reward=reward, actor=request.user, **form.cleaned_data, **availability_form.cleaned_data, **steps
            )
        except ApplicationError as error:
            _apply_reward_error(form, availability_form, error, steps_form)
        else:
            messages.success(request, gettext("Reward “%(title)s” saved.") % {"title": reward.title})
            kept = getattr(saved, "shipping_kept_by", 0)
            if kept:
                messages.info(
                    request,
                    ngettext(
                        "%(count)s backer who chose it before keeps the shipping they agreed to.",
                        "%(count)s backers who chose it before keep the shipping they agreed to.",
                        kept,
                    )
                    % {"count": f"{kept:,}"},
                )
            if launched:
                return redirect(campaign.get_absolute_url() + "#rewards-title")
            return redirect("projects:campaign_rewards", slug=campaign.slug)
    context = {
        "campaign": campaign,
        "reward": reward,
        "form": form,
        "availability_form": availability_form,
        "steps_form": steps_form,
        "launched": launched,
    }
    errors = form.errors or availability_form.errors or steps_form.errors
    return render(request, "projects/reward_edit.html", context, status=400 if errors else 200)


@login_required
@require_POST
def campaign_reward_delete(request, slug: str, reward_id: int):
    campaign = _initiator_campaign_or_404(request, slug)
    reward = next((r for r in campaign.rewards.all() if r.pk == reward_id), None)
    if reward is None:
        raise Http404("No such reward")
    try:
        reward_tier_delete(reward=reward, actor=request.user)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, gettext("Reward “%(title)s” removed.") % {"title": reward.title})
    return redirect("projects:campaign_rewards", slug=campaign.slug)


@login_required
@require_http_methods(["GET", "POST"])
def campaign_review(request, slug: str):
    """Step 5: a checklist and the submit button; POST sends the campaign to the reviewers."""
    campaign = _initiator_campaign_or_404(request, slug)
    if request.method == "POST":
        try:
            campaign_submit_for_review(campaign=campaign, actor=request.user)
        except ApplicationError as error:
            messages.error(request, error.message)
            return redirect("projects:campaign_review", slug=campaign.slug)
        enqueue_campaign_assessment(campaign.pk)
        messages.success(
            request, gettext("“%(title)s” is submitted. A reviewer will look at it soon.") % {"title": campaign.title}
        )
        return redirect("projects:my_campaigns")
    return render(
        request,
        "projects/campaign_review.html",
        _step_context(campaign, "review", rewards=list(campaign.rewards.all())),
    )


@login_required
def my_campaigns(request):
    """The campaigns the user started, with their status and the reviewer's feedback."""
    return render(
        request, "projects/campaign_list_mine.html", {"campaigns": list(campaigns_of_initiator(user=request.user))}
    )


@login_required
@require_POST
def campaign_launch_view(request, slug: str):
    """Put an approved campaign live now (for initiators who chose to launch it themselves)."""
    campaign = _initiator_campaign_or_404(request, slug)
    try:
        campaign_launch(campaign=campaign, actor=request.user)
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("projects:my_campaigns")
    messages.success(request, gettext("“%(title)s” is live. Share it!") % {"title": campaign.title})
    return redirect(campaign.get_absolute_url())
