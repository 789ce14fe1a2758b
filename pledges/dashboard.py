"""The initiator's dashboard for one campaign: totals, chart, rewards, backers, CSV, cancel.

Only the campaign's initiator gets these pages; anyone else gets a 404, as if the campaign's
dashboard did not exist. Each page runs a fixed number of queries whatever the number of pledges.
"""

import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from crowdfund_site.exceptions import ApplicationError
from crowdfund_site.money import format_amount
from projects.models import FINAL_STATUSES, CampaignStatus
from projects.selectors import campaign_of_initiator_get
from settlement.services import campaign_cancel

from .charts import funding_chart
from .forms import (
    ExtendDeadlineAdviceForm,
    LowerPriceAdviceForm,
    LowerTierAdviceForm,
    PledgeCancelForm,
    PriceStepAdviceForm,
    amount_as_text,
)
from .selectors import (
    backer_list_rows,
    legacy_extras_attach,
    pledge_addons_attach,
    pledges_of_campaign_export,
    pledges_per_day,
    reward_breakdown,
)

BACKERS_PER_PAGE = 25
# The kinds of pricing advice the dashboard's template has a heading, a figure table and a form
# for: a kind the risk app adds shows up only once it is added here and there.
RENDERED_ADVICE_KINDS = ("open_price_step", "lower_price", "add_lower_tier", "extend_deadline")
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CANCELLABLE_STATUSES = {
    CampaignStatus.DRAFT,
    CampaignStatus.IN_REVIEW,
    CampaignStatus.CHANGES_REQUESTED,
    CampaignStatus.APPROVED,
    CampaignStatus.LIVE,
    CampaignStatus.SUSPENDED,
}


def _campaign_or_404(request, slug: str):
    campaign = campaign_of_initiator_get(slug=slug, initiator=request.user)
    if campaign is None:
        raise Http404("No such campaign")
    return campaign


@login_required
def campaign_dashboard(request, slug: str):
    """Totals, pledges over time with the forecast cone, pricing advice, reward breakdown and the backer list."""
    from risk.selectors import forecast_for_campaign, pricing_advice_for_campaign  # risk reads pledges: local

    campaign = _campaign_or_404(request, slug)
    forecast = chart = None
    advice = []
    if campaign.launched_at is not None:
        forecast = forecast_for_campaign(campaign)
        advice = [
            _advice_with_form(item)
            for item in pricing_advice_for_campaign(campaign, forecast=forecast)
            if item.kind in RENDERED_ADVICE_KINDS
        ]
        chart = funding_chart(
            start=campaign.launched_at,
            end=campaign.deadline or timezone.now(),
            goal=campaign.goal,
            currency=campaign.currency,
            per_day=pledges_per_day(campaign=campaign),
            forecast=forecast,
        )
    page_obj = Paginator(backer_list_rows(campaign=campaign), BACKERS_PER_PAGE).get_page(request.GET.get("page"))
    page_obj.object_list = pledge_addons_attach(
        pledges=legacy_extras_attach(campaign=campaign, rows=list(page_obj.object_list))
    )
    context = {
        "campaign": campaign,
        "forecast": forecast,
        "forecast_percent": round(forecast.probability_of_goal * 100) if forecast else None,
        "chart": chart,
        "band_low": round(forecast.band[0] * 100) if forecast else None,
        "band_high": round(forecast.band[1] * 100) if forecast else None,
        "advice": advice,
        "breakdown": reward_breakdown(campaign=campaign),
        "page_obj": page_obj,
        "can_cancel": campaign.status in CANCELLABLE_STATUSES,
    }
    return render(request, "pledges/campaign_dashboard.html", context)


def _advice_with_form(item) -> tuple:
    """Return (suggestion, its form filled with what it suggests, chance without and with it in percent)."""
    from risk.selectors import ADD_LOWER_TIER, LOWER_PRICE, OPEN_PRICE_STEP  # risk reads pledges: local

    price = amount_as_text(item.price, item.currency) if hasattr(item, "price") else None
    if item.kind == OPEN_PRICE_STEP:
        form = PriceStepAdviceForm(
            initial={"reward": item.reward_id, "price": price, "slots": item.slots}, currency=item.currency
        )
    elif item.kind == LOWER_PRICE:
        form = LowerPriceAdviceForm(initial={"reward": item.reward_id, "price": price}, currency=item.currency)
    elif item.kind == ADD_LOWER_TIER:
        form = LowerTierAdviceForm(initial={"title": item.title, "price": price}, currency=item.currency)
    else:
        form = ExtendDeadlineAdviceForm(initial={"days": item.days})
    return item, form, round(item.chance_without * 100), round(item.chance_with * 100)


def _form_errors_shown(request, form) -> None:
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)


def _advice_applied(request, campaign, form, apply, success) -> HttpResponseRedirect:
    """Apply a suggestion whose ``form`` is bound: ``apply(cleaned_data)``, then ``success(result)`` as the message."""
    if not form.is_valid():
        _form_errors_shown(request, form)
    else:
        try:
            result = apply(form.cleaned_data)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, success(result))
    return redirect(reverse("dashboard:campaign_dashboard", kwargs={"slug": campaign.slug}) + "#pricing-advice")


@login_required
@require_POST
def pricing_advice_apply_view(request, slug: str):
    """Apply the "next price step" suggestion (as shown, or with the price and slots changed)."""
    from risk.services import pricing_advice_apply  # risk reads pledges: local

    campaign = _campaign_or_404(request, slug)
    form = PriceStepAdviceForm(request.POST, currency=campaign.currency)
    return _advice_applied(
        request,
        campaign,
        form,
        lambda data: pricing_advice_apply(
            campaign=campaign, actor=request.user, reward_id=data["reward"], price=data["price"], slots=data["slots"]
        ),
        lambda reward: (
            _("Next step opened on “%(reward)s”: %(slots)s more at %(price)s.")
            % {
                "reward": reward.title,
                "slots": f"{form.cleaned_data['slots']:,}",
                "price": format_amount(reward.minimum_amount, campaign.currency),
            }
        ),
    )


@login_required
@require_POST
def pricing_advice_add_tier_view(request, slug: str):
    """Apply the "add a lower-priced tier" suggestion (as shown, or with the title and price changed)."""
    from risk.services import pricing_advice_add_tier  # risk reads pledges: local

    campaign = _campaign_or_404(request, slug)
    return _advice_applied(
        request,
        campaign,
        LowerTierAdviceForm(request.POST, currency=campaign.currency),
        lambda data: pricing_advice_add_tier(
            campaign=campaign, actor=request.user, title=data["title"], price=data["price"]
        ),
        lambda reward: (
            _("“%(reward)s” added at %(price)s: backers can choose it now.")
            % {"reward": reward.title, "price": format_amount(reward.minimum_amount, campaign.currency)}
        ),
    )


@login_required
@require_POST
def pricing_advice_lower_price_view(request, slug: str):
    """Apply the "lower the price of a tier nobody takes" suggestion (as shown, or with the price changed)."""
    from risk.services import pricing_advice_lower_price  # risk reads pledges: local

    campaign = _campaign_or_404(request, slug)
    return _advice_applied(
        request,
        campaign,
        LowerPriceAdviceForm(request.POST, currency=campaign.currency),
        lambda data: pricing_advice_lower_price(
            campaign=campaign, actor=request.user, reward_id=data["reward"], price=data["price"]
        ),
        lambda reward: (
            _("“%(reward)s” now costs %(price)s for new backers.")
            % {"reward": reward.title, "price": format_amount(reward.minimum_amount, campaign.currency)}
        ),
    )


@login_required
@require_POST
def pricing_advice_extend_view(request, slug: str):
    """Apply the "extend the deadline once" suggestion (as shown, or with the days changed)."""
    from risk.services import pricing_advice_extend_deadline  # risk reads pledges: local

    campaign = _campaign_or_404(request, slug)
    return _advice_applied(
        request,
        campaign,
        ExtendDeadlineAdviceForm(request.POST),
        lambda data: pricing_advice_extend_deadline(campaign=campaign, actor=request.user, days=data["days"]),
        lambda extension: (
            _("The deadline is now %(deadline)s. Every backer is being told by e-mail.")
            % {"deadline": date_format(timezone.localtime(extension.to_deadline), "DATETIME_FORMAT")}
        ),
    )


def csv_safe(value) -> str:
    """Return ``value`` as text a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


class _Echo:
    def write(self, value: str) -> str:
        return value


def _history_text(pledge) -> str:
    """The pledge's changes in one cell: "<when> <from> -> <to> [reward <from> -> <to>]; ..."."""
    parts = []
    for change in pledge.history:
        text = f"{change.created_at.isoformat()} {amount_as_text(change.from_amount, pledge.currency)}"
        text += f" -> {amount_as_text(change.to_amount, pledge.currency)}"
        if change.from_reward_id != change.to_reward_id:
            old = change.from_reward.title if change.from_reward else "-"
            new = change.to_reward.title if change.to_reward else "-"
            text += f" reward {old} -> {new}"
        parts.append(text)
    return "; ".join(parts)


def _addons_text(pledge) -> str:
    """The pledge's add-ons in one cell: "2 x Sticker pack; 1 x Poster" (empty without any)."""
    return "; ".join(f"{line.quantity} x {line.addon.title}" for line in getattr(pledge, "addon_list", ()))


@login_required
def campaign_backers_csv(request, slug: str):
    """Every backer of the campaign as CSV, streamed from one query."""
    campaign = _campaign_or_404(request, slug)
    writer = csv.writer(_Echo())
    # ``amount`` is the whole charged, its shipping and add-ons included; the shipping and add-on
    # columns come last so that spreadsheets reading the earlier columns by position keep working.
    header = [
        "pledge",
        "backer",
        "email",
        "reward",
        "amount",
        "currency",
        "status",
        "pledged_at",
        "changes",
        "shipping_country",
        "shipping_amount",
        "addons",
        "addons_amount",
    ]

    def rows():
        yield writer.writerow(header)
        for pledge in pledges_of_campaign_export(campaign=campaign):
            yield writer.writerow(
                [
                    csv_safe(value)
                    for value in (
                        pledge.pk,
                        pledge.backer.public_name,
                        pledge.backer.email,
                        pledge.reward.title if pledge.reward else "",
                        amount_as_text(pledge.amount, pledge.currency),
                        pledge.currency,
                        pledge.status,
                        pledge.created_at.isoformat(),
                        _history_text(pledge),
                        pledge.shipping_country,
                        amount_as_text(pledge.shipping_amount, pledge.currency) if pledge.shipping_country else "",
                        _addons_text(pledge),
                        amount_as_text(pledge.addons_amount, pledge.currency) if pledge.addons_amount else "",
                    )
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="backers-{campaign.slug}.csv"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def campaign_cancel_view(request, slug: str):
    """Ask for confirmation (GET), then cancel the campaign; every held pledge is refunded (POST)."""
    campaign = _campaign_or_404(request, slug)
    form = PledgeCancelForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            campaign_cancel(campaign=campaign, actor=request.user, reason=request.POST.get("reason", "")[:500])
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(
                request,
                _("“%(title)s” is cancelled. Every backer is being refunded in full.") % {"title": campaign.title},
            )
        return redirect("dashboard:campaign_dashboard", slug=campaign.slug)
    context = {
        "campaign": campaign,
        "can_cancel": campaign.status in CANCELLABLE_STATUSES,
        "is_final": campaign.status in FINAL_STATUSES,
    }
    return render(request, "pledges/campaign_cancel.html", context)
