"""Pages of the lending app: a debt campaign's schedule preview and the lender's "My loans"."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from crowdfund_site.exceptions import ApplicationError
from crowdfund_site.money import parse_amount
from projects.selectors import campaigns_visible_to

from .selectors import lender_loan_summaries, loan_schedule_preview, loan_terms_of

DEFAULT_PREVIEW_UNITS = 100  # whole units of the currency shown before a visitor picks an amount


@require_GET
def schedule_preview(request, slug: str):
    """What lending an amount to a debt campaign pays back, month by month; 404 if it is no loan."""
    campaign = campaigns_visible_to(user=request.user).filter(slug=slug).first()
    terms = loan_terms_of(campaign=campaign) if campaign else None
    if terms is None:
        raise Http404("No such loan")
    raw = request.GET.get("amount", "").strip()
    error, preview = "", None
    try:
        amount = parse_amount(raw or str(DEFAULT_PREVIEW_UNITS), campaign.currency)
        preview = loan_schedule_preview(campaign=campaign, amount=amount)
    except ApplicationError as refusal:
        error = refusal.message
    context = {
        "campaign": campaign,
        "terms": terms,
        "apr": f"{terms.rate_bps / 100:g}",
        "amount_text": raw or str(DEFAULT_PREVIEW_UNITS),
        "preview": preview,
        "error": error,
    }
    return render(request, "lending/schedule_preview.html", context, status=400 if error else 200)


@login_required
def loan_list(request):
    """The loans the signed-in user lent to, with what they have received so far."""
    return render(request, "lending/loan_list.html", {"loans": lender_loan_summaries(user=request.user)})
