"""The initiator's stretch-goal page: the list, a form to add one, and each one's edit and remove.

Each action calls one service (``projects.stretch_goals``); a refusal is shown on the form (or as
a message) and changes nothing.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods, require_POST

from crowdfund_site.exceptions import ApplicationError
from crowdfund_site.money import format_amount

from .forms import StretchGoalForm
from .models import MAX_STRETCH_GOALS, StretchGoal
from .selectors import campaign_of_initiator_get, campaign_stretch_goals
from .stretch_goals import EDIT_STATUSES, stretch_goal_create, stretch_goal_delete, stretch_goal_update


def _campaign_or_404(request, slug: str):
    campaign = campaign_of_initiator_get(slug=slug, initiator=request.user)
    if campaign is None:
        raise Http404("No such campaign")
    return campaign


def _goal_or_404(campaign, goal_id: int) -> StretchGoal:
    goal = StretchGoal.objects.filter(campaign=campaign, pk=goal_id).first()
    if goal is None:
        raise Http404("No such stretch goal")
    return goal


def _show_error(form, error: ApplicationError) -> None:
    form.add_error(error.field if error.field in form.fields else None, error.message)


def _initial(goal: StretchGoal, currency: str) -> dict:
    # parse_amount reads back what format_amount writes ("$1,250.00", "1,250.00 CHF").
    return {"amount": format_amount(goal.amount, currency), "title": goal.title, "description": goal.description}


@login_required
@require_http_methods(["GET", "POST"])
def stretch_goals_page(request, slug: str):
    campaign = _campaign_or_404(request, slug)
    form = StretchGoalForm(request.POST if request.method == "POST" else None, currency=campaign.currency)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                stretch_goal_create(campaign=campaign, actor=request.user, **form.cleaned_data)
            except ApplicationError as error:
                _show_error(form, error)
            else:
                messages.success(request, gettext("Stretch goal added."))
                return redirect("projects:campaign_stretch_goals", slug=campaign.slug)
        status = 400
    return _page(request, campaign, form, status=status)


def _page(request, campaign, form, *, status: int = 200, editing: tuple[int, StretchGoalForm] | None = None):
    campaign.refresh_from_db(fields=["stretch_goal_count", "pledged_amount"])
    goals = campaign_stretch_goals(campaign=campaign, all_of_them=True)
    for goal in goals:
        if editing and editing[0] == goal.pk:
            goal.form = editing[1]
        else:
            goal.form = StretchGoalForm(
                initial=_initial(goal, campaign.currency), currency=campaign.currency, prefix=f"goal-{goal.pk}"
            )
    context = {
        "campaign": campaign,
        "goals": goals,
        "form": form,
        "can_edit": campaign.status in EDIT_STATUSES,
        "max_goals": MAX_STRETCH_GOALS,
    }
    return render(request, "projects/campaign_stretch_goals.html", context, status=status)


@login_required
@require_POST
def stretch_goal_edit(request, slug: str, goal_id: int):
    campaign = _campaign_or_404(request, slug)
    goal = _goal_or_404(campaign, goal_id)
    form = StretchGoalForm(request.POST, currency=campaign.currency, prefix=f"goal-{goal.pk}")
    if form.is_valid():
        try:
            stretch_goal_update(goal=goal, actor=request.user, **form.cleaned_data)
        except ApplicationError as error:
            _show_error(form, error)
        else:
            messages.success(request, gettext("Stretch goal saved."))
            return redirect("projects:campaign_stretch_goals", slug=campaign.slug)
    blank = StretchGoalForm(currency=campaign.currency)
    return _page(request, campaign, blank, status=400, editing=(goal.pk, form))


@login_required
@require_POST
def stretch_goal_remove(request, slug: str, goal_id: int):
    campaign = _campaign_or_404(request, slug)
    goal = _goal_or_404(campaign, goal_id)
    try:
        stretch_goal_delete(goal=goal, actor=request.user)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, gettext("Stretch goal removed."))
    return redirect("projects:campaign_stretch_goals", slug=campaign.slug)
