"""The initiator's dashboard for one campaign: totals, chart, rewards, backers, CSV, cancel.

Only the campaign's initiator gets these pages; anyone else gets a 404, as if the campaign's
dashboard did not exist. Each page runs a fixed number of queries whatever the number of pledges.
"""

import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from crowdfund_site.exceptions import ApplicationError
from crowdfund_site.money import format_amount
from projects.models import FINAL_STATUSES, CampaignStatus
from projects.selectors import campaign_of_initiator_get
from settlement.services import campaign_cancel

from .charts import funding_chart
from .forms import PledgeCancelForm, PriceStepAdviceForm, amount_as_text
from .selectors import (
    backer_list_rows,
    legacy_extras_attach,
    pledge_addons_attach,
    pledges_of_campaign_export,
    pledges_per_day,
    reward_breakdown,
)

BACKERS_PER_PAGE = 25
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
            (item, PriceStepAdviceForm(initial=_advice_initial(item), currency=campaign.currency))
            for item in pricing_advice_for_campaign(campaign, forecast=forecast)
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


def _advice_initial(item) -> dict:
    return {"reward": item.reward_id, "price": amount_as_text(item.price, item.currency), "slots": item.slots}


@login_required
@require_POST
def pricing_advice_apply_view(request, slug: str):
    """Apply one pricing suggestion of the dashboard (as shown, or with the price and slots changed)."""
    from risk.services import pricing_advice_apply  # risk reads pledges: local

    campaign = _campaign_or_404(request, slug)
    form = PriceStepAdviceForm(request.POST, currency=campaign.currency)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("dashboard:campaign_dashboard", slug=campaign.slug)
    try:
        reward = pricing_advice_apply(
            campaign=campaign,
            actor=request.user,
            reward_id=form.cleaned_data["reward"],
            price=form.cleaned_data["price"],
            slots=form.cleaned_data["slots"],
        )
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            _("Next step opened on “%(reward)s”: %(slots)s more at %(price)s.")
            % {
                "reward": reward.title,
                "slots": f"{form.cleaned_data['slots']:,}",
                "price": format_amount(reward.minimum_amount, campaign.currency),
            },
        )
    return redirect("dashboard:campaign_dashboard", slug=campaign.slug)


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
