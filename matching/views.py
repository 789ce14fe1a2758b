"""Public matching pages: a pool with its rules and results, and the live estimate for an amount."""

from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from crowdfund_site.exceptions import InvalidInput
from crowdfund_site.money import format_amount, parse_amount
from projects.selectors import campaign_page_get

from .selectors import match_estimates, pool_balance, pool_public_get, pool_rounds_with_results


def pool_detail(request, slug: str):
    pool = pool_public_get(slug=slug)
    if pool is None:
        raise Http404("No such pool")
    return render(
        request,
        "matching/pool_detail.html",
        {"pool": pool, "left": pool_balance(pool=pool), "rounds": pool_rounds_with_results(pool=pool)},
    )


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
            "note": _("Matching can fall as others give: this is a range, not a promise."),
            "estimates": [
                {
                    "pool": e.pool.name,
                    "pool_url": reverse("matching:pool_detail", args=[e.pool.slug]),
                    "low": e.low,
                    "high": e.high,
                    "text": _("Your %(amount)s adds about %(low)s to %(high)s of matching from %(pool)s.")
                    % {
                        "amount": format_amount(amount, campaign.currency),
                        "low": format_amount(e.low, campaign.currency),
                        "high": format_amount(e.high, campaign.currency),
                        "pool": e.pool.name,
                    },
                }
                for e in estimates
            ],
        }
    )
