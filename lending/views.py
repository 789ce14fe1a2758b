"""Pages of the lending app: a debt campaign's schedule preview and the lender's "My loans"."""

import csv
from decimal import Decimal

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from crowdfund_site.exceptions import ApplicationError
from crowdfund_site.money import currency_exponent, parse_amount
from projects.selectors import campaigns_visible_to

from .selectors import lender_loan_summaries, lender_statement, loan_schedule_preview, loan_terms_of

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
def loan_statement(request, year: int):
    """The signed-in lender's payouts received in ``year``, as CSV for their tax return."""
    if not 2000 <= year <= 2100:
        raise Http404("No such year")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="loan-statement-{year}.csv"'
    writer = csv.writer(response)
    writer.writerow(["date", "campaign", "loan", "currency", "principal", "interest_and_fees"])
    for row in lender_statement(user=request.user, year=year):
        writer.writerow(
            [
                row.day.isoformat(),
                _csv_text(row.campaign),
                row.loan_id,
                row.currency,
                _decimal(row.principal, row.currency),
                _decimal(row.income, row.currency),
            ]
        )
    return response


def _decimal(minor: int, currency: str) -> str:
    """Return minor units as a plain decimal string of the currency ("12.50"), for spreadsheets."""
    return f"{Decimal(minor).scaleb(-currency_exponent(currency)):f}"


def _csv_text(text: str) -> str:
    # A cell starting with = + - @ is a formula to spreadsheets: a title must not run as one.
    return f"'{text}" if text[:1] in {"=", "+", "-", "@"} else text


@login_required
def loan_list(request):
    """The loans the signed-in user lent to, with what they have received so far."""
    context = {"loans": lender_loan_summaries(user=request.user), "year": timezone.localdate().year}
    return render(request, "lending/loan_list.html", context)
