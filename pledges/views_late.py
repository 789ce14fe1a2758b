"""Pages of late pledges: the initiator's late-pledge settings on the dashboard, and a backer's late pledge form."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from crowdfund_site.exceptions import ApplicationError, InvalidInput
from crowdfund_site.money import format_amount
from projects.models import CampaignStatus
from projects.selectors import campaign_page_get
from settlement.selectors import late_release_summary

from .forms import amount_as_text, new_idempotency_key
from .forms_late import LateOfferForm, LatePledgeForm
from .late_pledges import late_offer_close, late_offer_set, late_pledge_create
from .late_selectors import late_offer_for, late_offer_taking_pledges
from .views import _pledge_error


def _own_campaign(request, slug: str):
    campaign = campaign_page_get(slug=slug, viewer=request.user)
    if campaign is None or campaign.initiator_id != request.user.pk:
        raise Http404("No such campaign")
    return campaign


@login_required
@require_http_methods(["GET", "POST"])
def late_offer_view(request, slug: str):
    """The initiator chooses rewards and late prices (before the deadline), or closes late pledges for good."""
    campaign = _own_campaign(request, slug)
    offer = late_offer_for(campaign=campaign)
    rewards = list(campaign.rewards.all())
    current = {late.reward_id: late.price for late in offer.rewards.all()} if offer else {}
    status = 200
    if request.method == "POST" and request.POST.get("action") == "close":
        try:
            late_offer_close(campaign=campaign, actor=request.user)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, _("Late pledges are closed. Pledges already made are released weekly."))
        return redirect("dashboard:late_pledges", slug=campaign.slug)
    if request.method == "POST":
        form = LateOfferForm(request.POST, campaign=campaign, rewards=rewards, current=current)
        if form.is_valid():
            try:
                late_offer_set(campaign=campaign, actor=request.user, prices=form.cleaned_data["prices"])
            except InvalidInput as error:
                form.add_error(None, error.message)
                status = 400
            except ApplicationError as error:
                form.add_error(None, error.message)
                status = 409
            else:
                messages.success(request, _("Late pledges saved."))
                return redirect("dashboard:late_pledges", slug=campaign.slug)
        else:
            status = 400
    else:
        form = LateOfferForm(campaign=campaign, rewards=rewards, current=current)
    context = {
        "campaign": campaign,
        "offer": offer,
        "form": form,
        "can_edit": campaign.is_open_for_pledges and (offer is None or offer.is_open),
        "late": late_release_summary(campaign_id=campaign.pk) if campaign.status == CampaignStatus.SUCCEEDED else None,
    }
    return render(request, "pledges/late_offer.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def late_pledge_create_view(request, slug: str):
    """A backer pledges late to a succeeded campaign: one pledge per form, however often sent."""
    campaign = campaign_page_get(slug=slug, viewer=request.user)
    if campaign is None:
        raise Http404("No such campaign")
    offer = late_offer_taking_pledges(campaign=campaign)
    idempotency_key = new_idempotency_key()
    status = 200
    form = None
    if offer is not None and request.method == "POST":
        form = LatePledgeForm(request.POST, campaign=campaign, offer=offer)
        if form.is_valid():
            data = form.cleaned_data
            try:
                pledge = late_pledge_create(
                    backer=request.user,
                    campaign=campaign,
                    reward=data["reward_tier"],
                    amount=data["amount"],
                    currency=campaign.currency,
                    payment_token=data["card_number"],
                    idempotency_key=data["idempotency_key"],
                    shipping_country=data["shipping_country"],
                )
            except ApplicationError as error:
                if _pledge_error(form, error):
                    idempotency_key = data["idempotency_key"]
                status = error.http_status if error.http_status in (400, 403, 409) else 200
            else:
                return redirect(reverse("pledges:detail", kwargs={"pk": pledge.pk}) + "?thanks=1")
        else:
            status = 400
    elif offer is not None:
        chosen = next((late for late in offer.rewards.all() if str(late.reward_id) == request.GET.get("reward")), None)
        initial = (
            {"reward": chosen.reward_id, "amount": amount_as_text(chosen.price, campaign.currency)} if chosen else {}
        )
        form = LatePledgeForm(initial=initial, campaign=campaign, offer=offer)
    context = {
        "campaign": campaign,
        "offer": offer,
        "form": form,
        "late_rewards": [(late, format_amount(late.price, campaign.currency)) for late in offer.rewards.all()]
        if offer
        else [],
        "selected_reward": str(form["reward"].value() or "") if form else "",
        "idempotency_key": idempotency_key,
        "is_initiator": request.user.pk == campaign.initiator_id,
    }
    return render(request, "pledges/late_pledge_create.html", context, status=status)
