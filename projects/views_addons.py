"""The initiator's add-on page: the list, a form to add one, and each one's edit and remove.

Each action calls one service (``projects.addons``); a refusal is shown on the form (or as a
message) and changes nothing.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods, require_POST

from crowdfund_site.exceptions import ApplicationError
from crowdfund_site.money import format_amount

from .addons import EDIT_STATUSES, addon_create, addon_delete, addon_update
from .forms import AddOnForm
from .models import MAX_ADDONS, AddOn
from .selectors import campaign_addons, campaign_of_initiator_get


def _campaign_or_404(request, slug: str):
    campaign = campaign_of_initiator_get(slug=slug, initiator=request.user)
    if campaign is None:
        raise Http404("No such campaign")
    return campaign


def _addon_or_404(campaign, addon_id: int) -> AddOn:
    addon = AddOn.objects.filter(campaign=campaign, pk=addon_id).first()
    if addon is None:
        raise Http404("No such add-on")
    return addon


def _show_error(form, error: ApplicationError) -> None:
    form.add_error(error.field if error.field in form.fields else None, error.message)


def _initial(addon: AddOn, currency: str) -> dict:
    return {
        "title": addon.title,
        "price": format_amount(addon.price, currency),
        "quantity_limit": addon.quantity_limit,
        "description": addon.description,
    }


@login_required
@require_http_methods(["GET", "POST"])
def addons_page(request, slug: str):
    campaign = _campaign_or_404(request, slug)
    form = AddOnForm(request.POST if request.method == "POST" else None, currency=campaign.currency)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                addon_create(campaign=campaign, actor=request.user, **form.cleaned_data)
            except ApplicationError as error:
                _show_error(form, error)
            else:
                messages.success(request, gettext("Add-on added."))
                return redirect("projects:campaign_addons", slug=campaign.slug)
        status = 400
    return _page(request, campaign, form, status=status)


def _page(request, campaign, form, *, status: int = 200, editing: tuple[int, AddOnForm] | None = None):
    campaign.refresh_from_db(fields=["addon_count"])
    addons = campaign_addons(campaign=campaign)
    for addon in addons:
        if editing and editing[0] == addon.pk:
            addon.form = editing[1]
        else:
            addon.form = AddOnForm(
                initial=_initial(addon, campaign.currency), currency=campaign.currency, prefix=f"addon-{addon.pk}"
            )
    context = {
        "campaign": campaign,
        "addons": addons,
        "form": form,
        "can_edit": campaign.status in EDIT_STATUSES,
        "max_addons": MAX_ADDONS,
    }
    return render(request, "projects/campaign_addons.html", context, status=status)


@login_required
@require_POST
def addon_edit(request, slug: str, addon_id: int):
    campaign = _campaign_or_404(request, slug)
    addon = _addon_or_404(campaign, addon_id)
    form = AddOnForm(request.POST, currency=campaign.currency, prefix=f"addon-{addon.pk}")
    if form.is_valid():
        try:
            addon_update(addon=addon, actor=request.user, **form.cleaned_data)
        except ApplicationError as error:
            _show_error(form, error)
        else:
            messages.success(request, gettext("Add-on saved."))
            return redirect("projects:campaign_addons", slug=campaign.slug)
    return _page(request, campaign, AddOnForm(currency=campaign.currency), status=400, editing=(addon.pk, form))


@login_required
@require_POST
def addon_remove(request, slug: str, addon_id: int):
    campaign = _campaign_or_404(request, slug)
    addon = _addon_or_404(campaign, addon_id)
    try:
        addon_delete(addon=addon, actor=request.user)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, gettext("Add-on removed."))
    return redirect("projects:campaign_addons", slug=campaign.slug)
