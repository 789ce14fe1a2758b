"""Delivery pages: a backer confirms, reports and answers surveys in My pledges; the initiator ships,
answers reports, sends the survey and exports its answers."""

import csv
from datetime import date

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from crowdfund_site.exceptions import ApplicationError
from projects.models import Campaign

from . import services
from .models import Delivery, DeliveryReport
from .selectors import survey_answers_of_initiator


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


@login_required
@require_POST
def survey_answer_view(request, pledge_id: int):
    answers = {key.removeprefix("answer_"): value for key, value in request.POST.items() if key.startswith("answer_")}
    _done(
        request,
        lambda: services.survey_answer(
            pledge_id=pledge_id, actor=request.user, address=request.POST.get("address", ""), answers=answers
        ),
        _("Thank you: your survey answers are saved."),
    )
    return redirect("pledges:list")


@login_required
@require_POST
def survey_send_view(request, slug: str):
    campaign = get_object_or_404(Campaign, slug=slug, initiator=request.user)
    questions: list[tuple[int | None, str]] = [
        (None, line) for line in request.POST.get("questions_all", "").splitlines() if line.strip()
    ]
    for tier in campaign.rewards.all():
        questions += [
            (tier.pk, line) for line in request.POST.get(f"questions_{tier.pk}", "").splitlines() if line.strip()
        ]
    _done(
        request,
        lambda: services.survey_send(
            campaign_id=campaign.pk,
            actor=request.user,
            asks_address=request.POST.get("asks_address") == "on",
            questions=questions,
        ),
        _("The survey is sent to your backers."),
    )
    return redirect("fulfilment:campaign_deliveries", slug=slug)


@login_required
@require_http_methods(["GET"])
def survey_answers_csv(request, slug: str):
    campaign = get_object_or_404(Campaign, slug=slug)
    found = survey_answers_of_initiator(campaign_id=campaign.pk, user_id=request.user.pk)
    if found is None:
        raise Http404("No survey of yours")
    _survey, questions, answers = found
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{campaign.slug}-survey.csv"'
    writer = csv.writer(response)
    writer.writerow(["pledge", "backer", "reward", "address", *(q.prompt for q in questions), "answered_at"])
    for answer in answers.iterator():
        pledge = answer.pledge
        writer.writerow(
            [
                pledge.pk,
                _csv_safe(pledge.backer.public_name),
                _csv_safe(pledge.reward.title if pledge.reward else ""),
                _csv_safe(answer.address),
                *(_csv_safe(answer.answers.get(str(q.pk), "")) for q in questions),
                answer.answered_at.isoformat(),
            ]
        )
    return response


def _csv_safe(value: str) -> str:
    # A spreadsheet runs a cell starting with one of these as a formula: backers type these cells.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
