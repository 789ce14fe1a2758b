"""Delivery pages: a backer confirms or reports in My pledges; the initiator ships and answers."""

from datetime import date

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from crowdfund_site.exceptions import ApplicationError
from projects.models import Campaign

from . import services
from .models import Delivery, DeliveryReport


def _done(request, call, success: str) -> None:
    try:
        call()
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, success)


@login_required
@require_POST
def delivery_confirm_view(request, pledge_id: int):
    _done(
        request,
        lambda: services.delivery_confirm(pledge_id=pledge_id, actor=request.user),
        _("Thank you: your reward is confirmed received."),
    )
    return redirect("pledges:list")


@login_required
@require_POST
def delivery_report_view(request, pledge_id: int):
    _done(
        request,
        lambda: services.delivery_report(
            pledge_id=pledge_id, actor=request.user, message=request.POST.get("message", "")
        ),
        _("Your report is sent to the initiator and to our staff."),
    )
    return redirect("pledges:list")


@login_required
@require_http_methods(["GET"])
def campaign_deliveries(request, slug: str):
    campaign = get_object_or_404(Campaign, slug=slug)
    if campaign.initiator_id != request.user.pk:
        raise Http404("No such campaign of yours")
    tiers = campaign.rewards.select_related("shipment").order_by("minimum_amount", "id")
    reports = (
        DeliveryReport.objects.filter(delivery__campaign=campaign)
        .select_related("delivery__tier", "delivery__backer")
        .order_by("-created_at")
    )
    counts = {}
    for tier_id, status in Delivery.objects.filter(campaign=campaign).values_list("tier_id", "status"):
        counts.setdefault(tier_id, {}).setdefault(status, 0)
        counts[tier_id][status] += 1
    rows = [(tier, counts.get(tier.pk, {})) for tier in tiers]
    return render(
        request, "fulfilment/campaign_deliveries.html", {"campaign": campaign, "rows": rows, "reports": reports}
    )


@login_required
@require_POST
def tier_ship_view(request, slug: str, tier_id: int):
    try:
        shipped_on = date.fromisoformat(request.POST.get("shipped_on", ""))
    except ValueError:
        messages.error(request, _("Give the day it shipped (not in the future)."))
        return redirect("fulfilment:campaign_deliveries", slug=slug)
    _done(
        request,
        lambda: services.tier_mark_shipped(
            tier_id=tier_id,
            actor=request.user,
            shipped_on=shipped_on,
            note=request.POST.get("note", ""),
            tracking_reference=request.POST.get("tracking_reference", ""),
        ),
        _("The reward is marked shipped; its backers are asked to confirm receipt."),
    )
    return redirect("fulfilment:campaign_deliveries", slug=slug)


@login_required
@require_POST
def report_answer_view(request, slug: str, report_id: int):
    _done(
        request,
        lambda: services.report_answer(report_id=report_id, actor=request.user, answer=request.POST.get("answer", "")),
        _("Your answer is saved for staff."),
    )
    return redirect("fulfilment:campaign_deliveries", slug=slug)
