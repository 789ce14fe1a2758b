"""Matching pages: the index of pools, a pool with its rules and results, the live estimate, sponsors' pages.

A pool that does not exist or is not public (not funded) is a 404; a public pool the user may not
manage (``user_may_act_for``) is a 403, as in the API: that it exists is no secret.
"""

import csv
import uuid
from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crowdfund_site.exceptions import ApplicationError, InvalidInput, NotAllowed, PaymentDeclined
from crowdfund_site.money import format_amount, parse_amount
from projects.selectors import campaign_page_get, campaigns_visible_to

from .forms import PoolForm
from .selectors import (
    applications_of_initiator,
    campaigns_that_may_apply,
    match_estimates,
    pool_balance,
    pool_balances,
    pool_dashboard,
    pool_public_get,
    pool_rounds_with_results,
    pool_takes_applications,
    pools_index,
    round_inputs,
    round_published_get,
    user_may_act_for,
    user_may_sponsor,
)
from .services import pool_application_submit, pool_choose_leftover, pool_create_and_fund, pool_logo_set
from .templatetags.matching import render_match_estimate

POOLS_PER_PAGE = 20


@require_GET
def pool_list(request):
    """The public index of funded pools: running first, then upcoming, then ended or closed."""
    page_obj = Paginator(pools_index(), POOLS_PER_PAGE).get_page(request.GET.get("page"))
    page_obj.object_list = list(page_obj.object_list)
    balances = pool_balances(pools=page_obj.object_list)
    for pool in page_obj.object_list:
        pool.left = balances[pool.pk]
    # Anonymous visitors (most of them) cost no query for the sponsors' link.
    can_sponsor = request.user.is_authenticated and user_may_sponsor(user=request.user)
    return render(request, "matching/pool_list.html", {"page_obj": page_obj, "can_sponsor": can_sponsor})


def new_pool_form(data=None) -> PoolForm:
    """Return the pool form, bound to ``data`` or blank with a fresh idempotency key and a month's dates."""
    if data is not None:
        return PoolForm(data)
    now = timezone.localtime().replace(second=0, microsecond=0)
    return PoolForm(
        initial={"idempotency_key": uuid.uuid4().hex, "starts_at": now, "ends_at": now + timedelta(days=30)}
    )


def pool_form_submit(*, form: PoolForm, actor, sponsor):
    """Create and fund the pool a valid ``form`` describes; return it, or None with the refusal on the form.

    A declined card used up the form's idempotency key (its pool is made, unfunded): the form gets a
    fresh one, so that another card is a new request rather than a reuse of the key.
    """
    try:
        return pool_create_and_fund(
            actor=actor,
            sponsor=sponsor,
            idempotency_key=form.cleaned_data["idempotency_key"],
            payment_token=form.cleaned_data["card_number"],
            **form.pool_fields(),
        )
    except PaymentDeclined:
        form.data = form.data.copy()
        form.data["idempotency_key"] = uuid.uuid4().hex
        form.add_error("card_number", _("The card was declined: nothing was charged. Try another card."))
    except ApplicationError as error:
        form.show_error(error)
    return None


@login_required
def pool_create(request):
    """A sponsor puts up a pool: the form, the charge through the gateway, then the pool's dashboard."""
    if not user_may_sponsor(user=request.user):
        raise PermissionDenied(_("Only members of the Sponsors group can put up a matching pool."))
    form = new_pool_form(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        pool = pool_form_submit(form=form, actor=request.user, sponsor=request.user)
        if pool is not None:
            messages.success(request, _("Your pool is funded and public. Here is its dashboard."))
            return redirect("matching:pool_dashboard", slug=pool.slug)
    return render(request, "matching/pool_create.html", {"form": form})


def pool_detail(request, slug: str):
    pool = pool_public_get(slug=slug)
    if pool is None:
        raise Http404("No such pool")
    context = {"pool": pool, "left": pool_balance(pool=pool), "rounds": pool_rounds_with_results(pool=pool)}
    if pool.accepts_applications:
        context |= {
            "takes_applications": pool_takes_applications(pool=pool),
            "may_apply": campaigns_that_may_apply(pool=pool, user=request.user),
            "my_applications": applications_of_initiator(pool=pool, user=request.user),
            "chosen_campaign": request.GET.get("campaign", ""),
        }
    return render(request, "matching/pool_detail.html", context)


@login_required
@require_POST
def pool_apply(request, slug: str):
    """An initiator applies with one of their campaigns, from the pool page, with a short statement."""
    pool = pool_public_get(slug=slug)
    if pool is None:
        raise Http404("No such pool")
    campaign_id = request.POST.get("campaign", "")
    campaign = (
        campaigns_visible_to(user=request.user).filter(pk=int(campaign_id)).first() if campaign_id.isdigit() else None
    )
    if campaign is None:
        messages.error(request, _("Choose one of your campaigns."))
        return redirect("matching:pool_detail", slug=pool.slug)
    try:
        pool_application_submit(
            pool=pool, campaign=campaign, actor=request.user, statement=request.POST.get("statement", "")
        )
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request, _("Applied: staff will look at %(title)s and you will hear from us.") % {"title": campaign.title}
        )
    return redirect("matching:pool_detail", slug=pool.slug)


def _pool_to_manage(request, slug: str):
    """Return the public pool ``slug`` if the signed-in user may manage it: 404 if there is none, 403 if not theirs."""
    pool = pool_public_get(slug=slug)
    if pool is None:
        raise Http404("No such pool")
    if not user_may_act_for(user=request.user, sponsor_id=pool.sponsor_id):
        raise PermissionDenied(_("Only the sponsor or platform staff can manage this pool."))
    return pool


@login_required
def pool_dashboard_view(request, slug: str):
    """The sponsor's dashboard of their pool (staff may look too; anyone else gets a 403: the pool is public)."""
    pool = _pool_to_manage(request, slug)
    return render(request, "matching/pool_dashboard.html", {"pool": pool, "dashboard": pool_dashboard(pool=pool)})


@login_required
@require_POST
def pool_leftover_choose(request, slug: str):
    """The sponsor's choice, from the dashboard, for what the pool leaves: back to them, or on."""
    pool = _pool_to_manage(request, slug)
    next_slug = request.POST.get("next_pool", "")
    next_pool = pool_public_get(slug=next_slug) if next_slug else None
    try:
        pool_choose_leftover(pool=pool, actor=request.user, choice=request.POST.get("choice", ""), next_pool=next_pool)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Saved: what the pool leaves at its end will go where you chose."))
    return redirect("matching:pool_dashboard", slug=pool.slug)


@login_required
@require_POST
def pool_logo_upload(request, slug: str):
    """The sponsor's logo upload, from the dashboard; a refused file is said in the service's words."""
    pool = pool_public_get(slug=slug)
    if pool is None:
        raise Http404("No such pool")
    upload = request.FILES.get("logo")
    if upload is None:
        messages.error(request, _("Choose a picture to upload."))
    else:
        try:
            pool_logo_set(pool=pool, actor=request.user, upload=upload)
        except NotAllowed as error:
            raise PermissionDenied(error.message) from None
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, _("The pool's logo is saved."))
    return redirect("matching:pool_dashboard", slug=pool.slug)


@require_GET
def match_estimate(request, slug: str):
    """Answer what ``?amount=`` given to the campaign now would add in each open round, as a range."""
    campaign = campaign_page_get(slug=slug, viewer=request.user)
    if campaign is None:
        raise Http404("No such campaign")
    try:
        amount = parse_amount(request.GET.get("amount", ""), campaign.currency)
    except InvalidInput as error:
        return JsonResponse({"code": error.code, "detail": error.message}, status=400)
    backer_id = request.user.pk if request.user.is_authenticated else None
    estimates = match_estimates(campaign=campaign, amount=amount, backer_id=backer_id)
    return JsonResponse(
        {
            "amount": amount,
            "currency": campaign.currency,
            "note": _("It can fall as others give: this is a range, not a promise."),
            # The block the campaign page and the pledge form show, for the form to put in place.
            "html": render_match_estimate(campaign=campaign, amount=amount, estimates=estimates) if estimates else "",
            "estimates": [
                {
                    "pool": e.pool.name,
                    "pool_url": reverse("matching:pool_detail", args=[e.pool.slug]),
                    "low": e.low,
                    "high": e.high,
                    "text": _estimate_text(estimate=e, amount=amount, currency=campaign.currency),
                }
                for e in estimates
            ],
        }
    )


def _estimate_text(*, estimate, amount: int, currency: str) -> str:
    # The same words as the block the page shows (matching/_match_estimate.html), without links.
    words = {
        "amount": format_amount(amount, currency),
        "low": format_amount(estimate.low, currency),
        "high": format_amount(estimate.high, currency),
        "pool": estimate.pool.name,
    }
    if not estimate.high:
        return _("Matched by %(pool)s: your %(amount)s would add no matching at the moment.") % words
    return _("Matched by %(pool)s: your %(amount)s adds about %(low)s to %(high)s of matching.") % words


def _pseudonym(round_id: int, backer_id: int) -> str:
    # Stable within a round, so a backer's gifts can be added up, and unlinkable across rounds.
    return salted_hmac("matching.round.backer", f"{round_id}:{backer_id}").hexdigest()[:16]


def _why_not_counted(*, by_initiator: bool, excluded: bool, below: bool) -> str:
    if by_initiator:
        return "initiator"
    if excluded:
        return "excluded"
    return "under the minimum" if below else ""


@require_GET
def round_csv(request, slug: str, round_id: int, part: str):
    """Return a published round's inputs (every contribution) or results (every allocation) as CSV."""
    pool = pool_public_get(slug=slug)
    matching_round = round_published_get(pool=pool, round_id=round_id) if pool else None
    if matching_round is None or part not in ("inputs", "results"):
        raise Http404("No such published round")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{pool.slug}-round-{round_id}-{part}.csv"'
    writer = csv.writer(response)
    if part == "inputs":
        writer.writerow(["pledge", "campaign", "backer", "amount_minor", "currency", "created_at", "counts", "why_not"])
        minimum = pool.minimum_contribution if pool.mode == "quadratic" else 0
        for pk, campaign_id, backer_id, amount, created_at, by_initiator, excluded in round_inputs(
            matching_round=matching_round
        ):
            why_not = _why_not_counted(by_initiator=by_initiator, excluded=excluded, below=amount < minimum)
            writer.writerow(
                [
                    pk,
                    campaign_id,
                    _pseudonym(round_id, backer_id),
                    amount,
                    pool.currency,
                    created_at.isoformat(),
                    "no" if why_not else "yes",
                    why_not,
                ]
            )
    else:
        writer.writerow(["campaign", "title", "contributions", "backers", "raised_minor", "matched_minor", "currency"])
        for allocation in matching_round.allocations.select_related("campaign").order_by("-amount", "campaign_id"):
            writer.writerow(
                [
                    allocation.campaign_id,
                    allocation.campaign.title,
                    allocation.contributions,
                    allocation.backers,
                    allocation.raised,
                    allocation.amount,
                    pool.currency,
                ]
            )
    return response
