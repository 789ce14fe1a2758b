"""The initiator's add-on page: the list, a form to add one, and each one's edit and remove.

Each action calls one service (``projects.addons``); the page itself is ``CampaignItemsPage``.
"""

from django.contrib.auth.decorators import login_required
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST

from crowdfund_site.money import format_amount

from .addons import EDIT_STATUSES, addon_create, addon_delete, addon_update
from .forms import AddOnForm
from .models import MAX_ADDONS, AddOn
from .selectors import campaign_addons
from .views_campaign_items import CampaignItemsPage


def _initial(addon: AddOn, currency: str) -> dict:
    return {
        "title": addon.title,
        "price": format_amount(addon.price, currency),
        "quantity_limit": addon.quantity_limit,
        "description": addon.description,
    }


ADDONS_PAGE = CampaignItemsPage(
    model=AddOn,
    form_class=AddOnForm,
    item_name="addon",
    url_name="projects:campaign_addons",
    template="projects/campaign_addons.html",
    list_name="addons",
    max_name="max_addons",
    max_items=MAX_ADDONS,
    edit_statuses=EDIT_STATUSES,
    refresh_fields=("addon_count",),
    items=lambda campaign: campaign_addons(campaign=campaign),
    initial=_initial,
    create=addon_create,
    update=addon_update,
    delete=addon_delete,
    added_message=_("Add-on added."),
    saved_message=_("Add-on saved."),
    removed_message=_("Add-on removed."),
)


@login_required
@require_http_methods(["GET", "POST"])
def addons_page(request, slug: str):
    return ADDONS_PAGE.page(request, slug)


@login_required
@require_POST
def addon_edit(request, slug: str, addon_id: int):
    return ADDONS_PAGE.edit(request, slug, addon_id)


@login_required
@require_POST
def addon_remove(request, slug: str, addon_id: int):
    return ADDONS_PAGE.remove(request, slug, addon_id)
