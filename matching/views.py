"""Public matching pages: the index of pools, a pool with its rules and results, and the live estimate."""

import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crowdfund_site.exceptions import ApplicationError, InvalidInput
from crowdfund_site.money import format_amount, parse_amount
from projects.selectors import campaign_page_get

from .selectors import (
    match_estimates,
    pool_balance,
    pool_balances,
    pool_dashboard,
    pool_public_get,
    pool_rounds_with_results,
    pools_index,
    round_inputs,
    round_published_get,
)
from .services import pool_choose_leftover
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
    return render(request, "matching/pool_list.html", {"page_obj": page_obj})


def pool_detail(request, slug: str):
    pool = pool_public_get(slug=slug)
    if pool is None:
        raise Http404("No such pool")
    return render(
        request,
        "matching/pool_detail.html",
        {"pool": pool, "left": pool_balance(pool=pool), "rounds": pool_rounds_with_results(pool=pool)},
    )


@login_required
def pool_dashboard_view(request, slug: str):
    """The sponsor's dashboard of their pool (staff may look too; anyone else gets a 404)."""
    pool = pool_public_get(slug=slug)
    if pool is None or not (request.user.pk == pool.sponsor_id or request.user.is_staff):
        raise Http404("No such pool")
    return render(request, "matching/pool_dashboard.html", {"pool": pool, "dashboard": pool_dashboard(pool=pool)})


@login_required
@require_POST
def pool_leftover_choose(request, slug: str):
    """The sponsor's choice, from the dashboard, for what the pool leaves: back to them, or on."""
    pool = pool_public_get(slug=slug)
    if pool is None or not (request.user.pk == pool.sponsor_id or request.user.is_staff):
        raise Http404("No such pool")
    next_slug = request.POST.get("next_pool", "")
    next_pool = pool_public_get(slug=next_slug) if next_slug else None
    try:
        pool_choose_leftover(pool=pool, actor=request.user, choice=request.POST.get("choice", ""), next_pool=next_pool)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Saved: what the pool leaves at its end will go where you chose."))
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
