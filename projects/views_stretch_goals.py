"""The initiator's stretch-goal page: the list, a form to add one, and each one's edit and remove.

Each action calls one service (``projects.stretch_goals``); the page itself is ``CampaignItemsPage``.
"""

from django.contrib.auth.decorators import login_required
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST

from crowdfund_site.money import format_amount

from .forms import StretchGoalForm
from .models import MAX_STRETCH_GOALS, StretchGoal
from .selectors import campaign_stretch_goals
from .stretch_goals import EDIT_STATUSES, stretch_goal_create, stretch_goal_delete, stretch_goal_update
from .views_campaign_items import CampaignItemsPage


def _initial(goal: StretchGoal, currency: str) -> dict:
    # parse_amount reads back what format_amount writes ("$1,250.00", "1,250.00 CHF").
    return {"amount": format_amount(goal.amount, currency), "title": goal.title, "description": goal.description}


STRETCH_GOALS_PAGE = CampaignItemsPage(
    model=StretchGoal,
    form_class=StretchGoalForm,
    item_name="goal",
    url_name="projects:campaign_stretch_goals",
    template="projects/campaign_stretch_goals.html",
    list_name="goals",
    max_name="max_goals",
    max_items=MAX_STRETCH_GOALS,
    edit_statuses=EDIT_STATUSES,
    refresh_fields=("stretch_goal_count", "pledged_amount"),
    items=lambda campaign: campaign_stretch_goals(campaign=campaign, all_of_them=True),
    initial=_initial,
    create=stretch_goal_create,
    update=stretch_goal_update,
    delete=stretch_goal_delete,
    added_message=_("Stretch goal added."),
    saved_message=_("Stretch goal saved."),
    removed_message=_("Stretch goal removed."),
)


@login_required
@require_http_methods(["GET", "POST"])
def stretch_goals_page(request, slug: str):
    return STRETCH_GOALS_PAGE.page(request, slug)


@login_required
@require_POST
def stretch_goal_edit(request, slug: str, goal_id: int):
    return STRETCH_GOALS_PAGE.edit(request, slug, goal_id)


@login_required
@require_POST
def stretch_goal_remove(request, slug: str, goal_id: int):
    return STRETCH_GOALS_PAGE.remove(request, slug, goal_id)
