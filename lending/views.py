"""Pages of the lending app: a debt campaign's schedule preview, the lender's "My loans" and profile."""

import csv
from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crowdfund_site.exceptions import ApplicationError
from crowdfund_site.money import currency_exponent, format_amount, parse_amount
from projects.selectors import campaigns_visible_to

from .forms import AutopayForm, KnowledgeTestForm, LenderProfileForm, LendingConsentForm, WithdrawalForm
from .models import WithdrawalStatus
from .selectors import (
    borrower_loan_get,
    borrower_loans,
    lender_balances,
    lender_loan_history,
    lender_loan_summaries,
    lender_profile_of,
    lender_statement,
    lender_withdrawals,
    loan_schedule_preview,
    loan_terms_of,
    loans_raising,
)
from .services import (
    lender_knowledge_test_take,
    lender_profile_update,
    lender_withdraw,
    lending_consent_give,
    loan_autopay_set,
)
from .services.investor_limits import knowledge_test_valid

RECENT_WITHDRAWALS = 10  # shown on "My loans"; the API lists them all
RELEND_LOANS_SHOWN = 50  # loans offered per currency on "Re-lend", ending soonest first
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
        "consent_form": _consent_form(request, campaign),
    }
    return render(request, "lending/schedule_preview.html", context, status=400 if error else 200)


def _consent_form(request, campaign, data=None):
    """Return the ECSP consent form for a signed-in visitor, or None where no consent is asked."""
    if settings.LENDING_INVESTOR_POLICY != "ecsp" or not request.user.is_authenticated:
        return None
    return LendingConsentForm(data, currency=campaign.currency)


@login_required
@require_POST
def lending_consent(request, slug: str):
    """Record the lender's consent, after the warning, to lend an amount to this loan."""
    campaign = campaigns_visible_to(user=request.user).filter(slug=slug).first()
    if campaign is None or loan_terms_of(campaign=campaign) is None:
        raise Http404("No such loan")
    form = _consent_form(request, campaign, request.POST)
    if form is None:
        raise Http404("No consent is asked here")
    if form.is_valid():
        try:
            lending_consent_give(lender=request.user, campaign=campaign, amount=form.cleaned_data["amount"])
        except ApplicationError as refusal:
            form.add_error("amount", refusal.message)
        else:
            messages.success(request, gettext("Thank you. You can now lend up to that amount to this loan."))
            return redirect(campaign.get_absolute_url())
    terms = loan_terms_of(campaign=campaign)
    context = {"campaign": campaign, "terms": terms, "apr": f"{terms.rate_bps / 100:g}", "consent_form": form}
    context |= {"amount_text": "", "preview": None, "error": ""}
    return render(request, "lending/schedule_preview.html", context, status=400)


@login_required
@require_http_methods(["GET", "POST"])
def lender_profile(request):
    """The lender's declarations for the investor limits, and the knowledge test."""
    profile, declarations = lender_profile_of(user=request.user)
    posted = request.POST if request.method == "POST" else None
    which = request.POST.get("form") if posted else None
    profile_form = LenderProfileForm(
        posted if which == "profile" else None, initial={"accredited": bool(profile and profile.accredited)}
    )
    test_form = KnowledgeTestForm(posted if which == "test" else None)
    if which == "profile" and profile_form.is_valid():
        try:
            lender_profile_update(user=request.user, **profile_form.cleaned_data)
        except ApplicationError as refusal:
            profile_form.add_error(refusal.field if refusal.field in profile_form.fields else None, refusal.message)
        else:
            messages.success(request, gettext("Saved."))
            return redirect("lending:profile")
    if which == "test" and test_form.is_valid():
        if lender_knowledge_test_take(user=request.user, answers=test_form.cleaned_data):
            messages.success(request, gettext("You passed the knowledge test. It is valid for two years."))
            return redirect("lending:profile")
        test_form.add_error(None, gettext("Some answers are not right. Read the questions again and retry."))
    context = {
        "policy": settings.LENDING_INVESTOR_POLICY,
        "profile": profile,
        "test_valid": knowledge_test_valid(profile),
        "declarations": declarations,
        "profile_form": profile_form,
        "test_form": test_form,
    }
    status = 400 if (profile_form.errors or test_form.errors) else 200
    return render(request, "lending/lender_profile.html", context, status=status)


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
    return _loan_list_page(request)


def _loan_list_page(request, *, failed: WithdrawalForm | None = None):
    balances, shown = [], False
    for balance in lender_balances(user=request.user):
        form = failed if failed is not None and failed.data.get("currency") == balance.currency else None
        shown = shown or form is not None
        initial = {"currency": balance.currency, "idempotency_key": WithdrawalForm.new_key()}
        balances.append((balance, form or WithdrawalForm(initial=initial)))
    # A refusal in a currency without a balance row has no form to show it next to.
    unshown = [] if failed is None or shown else [e for errors in failed.errors.values() for e in errors]
    context = {
        "loans": lender_loan_summaries(user=request.user),
        "borrowed": borrower_loans(borrower=request.user),
        "balances": balances,
        "withdraw_errors": unshown,
        "withdrawals": lender_withdrawals(user=request.user)[:RECENT_WITHDRAWALS],
        "year": timezone.localdate().year,
    }
    return render(request, "lending/loan_list.html", context, status=400 if failed is not None else 200)


@login_required
@require_POST
def withdraw(request):
    """Withdraw from the signed-in lender's balance in one currency to their bank."""
    form = WithdrawalForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            withdrawal = lender_withdraw(
                lender=request.user,
                currency=data["currency"],
                amount=data["amount"],
                idempotency_key=data["idempotency_key"],
            )
        except ApplicationError as refusal:
            form.add_error("amount", refusal.message)
        else:
            if withdrawal.status == WithdrawalStatus.FAILED:
                messages.error(request, gettext("The payout was refused; nothing left your balance."))
            else:
                messages.success(
                    request,
                    gettext("%(amount)s is on its way to your bank.")
                    % {"amount": format_amount(withdrawal.amount, withdrawal.currency)},
                )
            return redirect("lending:list")
    return _loan_list_page(request, failed=form)


@login_required
@require_GET
def relend(request):
    """The loans raising now that the signed-in lender could lend their balance to, per currency."""
    offers = [
        (balance, list(loans_raising(lender=request.user, currency=balance.currency)[:RELEND_LOANS_SHOWN]))
        for balance in lender_balances(user=request.user)
        if balance.available > 0
    ]
    return render(request, "lending/relend.html", {"offers": offers})


@login_required
@require_GET
def borrowed_loan(request, loan_id: int):
    """The borrower's own loan: its schedule, what is owed, and automatic repayment; 404 for others."""
    return _borrowed_loan_page(request, loan_id=loan_id, form=AutopayForm())


def _borrowed_loan_page(request, *, loan_id: int, form: AutopayForm, status: int = 200):
    try:
        detail = borrower_loan_get(borrower=request.user, loan_id=loan_id)
    except ApplicationError:
        raise Http404("No such loan") from None
    return render(request, "lending/borrowed_loan.html", {"detail": detail, "form": form}, status=status)


@login_required
@require_POST
def borrowed_loan_autopay(request, loan_id: int):
    """Turn automatic repayment of the borrower's loan on (with the card typed) or off."""
    try:
        detail = borrower_loan_get(borrower=request.user, loan_id=loan_id)
    except ApplicationError:
        raise Http404("No such loan") from None
    turn_on = request.POST.get("autopay") == "on"
    form, token = AutopayForm(request.POST), ""
    if turn_on:
        if not form.is_valid():
            return _borrowed_loan_page(request, loan_id=loan_id, form=form, status=400)
        token = form.cleaned_data["card_number"]
    try:
        loan_autopay_set(loan=detail.loan, actor=request.user, payment_token=token)
    except ApplicationError as refusal:
        messages.error(request, refusal.message)
        return _borrowed_loan_page(request, loan_id=loan_id, form=AutopayForm(), status=refusal.http_status)
    if turn_on:
        messages.success(request, gettext("Automatic repayment is on: each installment is charged on its due date."))
    else:
        messages.success(request, gettext("Automatic repayment is off: pay each installment yourself by its due date."))
    return redirect("lending:borrowed", loan_id=loan_id)


@login_required
@require_GET
def lent_loan(request, loan_id: int):
    """A loan the signed-in user lent to: every repayment split, explained, and the balance left after it."""
    try:
        history = lender_loan_history(user=request.user, loan_id=loan_id)
    except ApplicationError:
        raise Http404("No such loan") from None
    return render(request, "lending/lent_loan.html", {"history": history})
