import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from crowdfund_site.exceptions import (
    ApplicationError,
    Conflict,
    InvalidInput,
    NotAllowed,
    PaymentDeclined,
    PaymentUnavailable,
)
from crowdfund_site.money import currency_exponent, format_amount
from lending.selectors import lender_balance_available
from projects.models import FundingModel
from projects.pricing import price_now, quote_read, quote_sign
from projects.selectors import campaign_addons, campaign_page_get, reward_shipping_quote, rewards_shipping_rules
from projects.shipping import destination_name, shipping_costs_by_country

from .changes import pledge_change
from .forms import (
    PledgeAmountForm,
    PledgeCancelForm,
    PledgeForm,
    PledgeRewardForm,
    amount_as_text,
    new_idempotency_key,
)
from .models import PledgeChangeStatus, failure_reason
from .selectors import (
    installments_of_pledge,
    open_pledge_of_backer,
    pledge_addons_attach,
    pledge_of_backer_get,
    pledges_of_backer,
)
from .services import REWARD_UNAVAILABLE_CODES, pledge_cancel, pledge_create

PLEDGES_PER_PAGE = 25


def _pledge_error(form: PledgeForm, error: ApplicationError) -> bool:
    """Put a domain refusal on the form; return True if the same request may be retried as is."""
    if isinstance(error, PaymentDeclined):
        form.add_error(
            "card_number",
            _("Your card was declined: %(reason)s No money was taken. Try another card.")
            % {"reason": failure_reason(error.code, error.message)},
        )
    elif isinstance(error, PaymentUnavailable):
        form.add_error(None, _("The payment processor had a temporary problem. Press “Pledge” again to retry."))
        return True
    elif isinstance(error, Conflict) and error.code in REWARD_UNAVAILABLE_CODES:
        form.add_error(
            "reward", _("%(reason)s Choose another reward, or pledge without one.") % {"reason": error.message}
        )
    elif isinstance(error, Conflict) and error.code in {"price_changed", "price_quote_expired"}:
        # The page is shown again with the new price and a fresh quote.
        form.add_error("amount", error.message)
    elif isinstance(error, Conflict) and error.code == "campaign_not_live":
        form.add_error(None, _("This campaign is no longer taking pledges, so nothing was charged."))
    elif isinstance(error, InvalidInput) and error.field in form.fields:
        form.add_error(error.field, error.message)
    else:
        form.add_error(None, error.message)
    return False


def quoted_price(reward, quote: str) -> int:
    """The price the form showed for a stepped ``reward``: its quote while fresh, else its price now."""
    return ((quote_read(reward, quote) if quote else None) or price_now(reward)).amount


def _confirmation_context(form, amount_to_confirm: str | None) -> dict:
    """Return what the page needs to ask "You are pledging $1,500.00: confirm?" (empty when nothing to ask)."""
    if amount_to_confirm is None:
        return {}
    return {"amount_to_confirm": amount_to_confirm, "confirmed_amount": str(form.cleaned_data["amount"])}


# The longest amount a logged-out visitor's choice carries to the log-in page (the form checks it after).
_AMOUNT_KEPT_MAX_LENGTH = 20


@require_http_methods(["GET", "POST"])
def pledge_create_view(request, slug: str):
    """Pick a reward or an amount and pay with a sandbox card; one pledge per form, however often sent.

    A logged-out visitor sees the rewards and amounts too (the page is public, for people and
    search engines); their "Log in to pledge" takes the reward and amount chosen through the
    log-in (or sign-up) and back to this form, filled in, where the card is asked for.
    """
    campaign = campaign_page_get(slug=slug, viewer=request.user)
    if campaign is None:
        raise Http404("No such campaign")
    rewards = list(campaign.rewards.all())
    signed_in = request.user.is_authenticated
    if request.method == "POST" and not signed_in:
        return redirect_to_login(_pledge_form_url(campaign, rewards, request.POST))
    addons = campaign_addons(campaign=campaign)
    is_initiator = signed_in and request.user.pk == campaign.initiator_id
    # A lender may pay a loan from their balance (what repayments paid them): offered when they have one.
    balance = 0
    if campaign.funding_model == FundingModel.DEBT and signed_in and not is_initiator:
        balance = lender_balance_available(user=request.user, currency=campaign.currency)
    idempotency_key = new_idempotency_key()
    amount_to_confirm = None
    status = 200
    posted_quotes = {r.pk: request.POST.get(f"price_quote_{r.pk}", "") for r in rewards if r.price_steps}
    if request.method == "POST":
        prices = {pk: quoted_price(r, posted_quotes[r.pk]) for r in rewards if (pk := r.pk) in posted_quotes}
        form = PledgeForm(
            request.POST, campaign=campaign, rewards=rewards, prices=prices, balance_available=balance, addons=addons
        )
        if form.is_valid() and (amount_to_confirm := form.amount_to_confirm()) is not None:
            # Nothing is charged yet: the page shows the amount as understood, the same key kept.
            idempotency_key = form.cleaned_data["idempotency_key"]
        elif form.is_valid():
            data = form.cleaned_data
            try:
                pledge = pledge_create(
                    backer=request.user,
                    campaign=campaign,
                    amount=data["amount"],
                    currency=campaign.currency,
                    payment_token=data["card_number"],
                    idempotency_key=data["idempotency_key"],
                    reward=data["reward_tier"],
                    shipping_country=data["shipping_country"],
                    price_quote=posted_quotes.get(data["reward"], ""),
                    client_ip=request.META.get("REMOTE_ADDR"),  # for the fraud checks in its follow-up message
                    from_balance=data["from_balance"],
                    addons=data["addons"],
                    pay_over_time=data["pay_over_time"],
                )
            except (InvalidInput, NotAllowed, Conflict, PaymentDeclined, PaymentUnavailable) as error:
                if _pledge_error(form, error):
                    idempotency_key = data["idempotency_key"]
                if isinstance(error, Conflict) and error.code == "sold_out":
                    # The same answer as the API's: a status a program (or a load balancer) can
                    # count, with the form and its message for the person.
                    status = 409
            else:
                return redirect(reverse("pledges:detail", kwargs={"pk": pledge.pk}) + "?thanks=1")
    else:
        chosen = next((r for r in rewards if str(r.pk) == request.GET.get("reward")), None)
        initial = {"reward": chosen.pk if chosen else ""}
        if chosen is not None:
            initial["amount"] = amount_as_text(chosen.price_now_amount, campaign.currency)
        kept = request.GET.get("amount", "").strip()
        if kept and len(kept) <= _AMOUNT_KEPT_MAX_LENGTH:  # chosen before logging in; checked when sent
            initial["amount"] = kept
        if balance and request.GET.get("from_balance"):  # "Re-lend" from My loans
            initial["pay_from_balance"] = balance
        form = PledgeForm(initial=initial, campaign=campaign, rewards=rewards, balance_available=balance, addons=addons)
    for reward in rewards:
        # A stepped tier shows its price now, with a fresh quote that keeps it for 15 minutes.
        reward.price_quote = quote_sign(reward, price_now(reward)) if reward.price_steps else ""
    shipping = rewards_shipping_rules(rewards=rewards)
    context = {
        "campaign": campaign,
        "form": form,
        "open_pledge": None if is_initiator else open_pledge_of_backer(backer=request.user, campaign_id=campaign.pk),
        "rewards": [
            (r, amount_as_text(r.price_now_amount, campaign.currency), _shipping_choice(shipping.get(r.pk)))
            for r in rewards
        ],
        "currency_exponent": currency_exponent(campaign.currency),
        "selected_reward": str(form["reward"].value() or ""),
        "idempotency_key": idempotency_key,
        "is_initiator": is_initiator,
        "balance_available": balance,
        # Kept as sent on a form shown again; ticked when "Re-lend" brought the lender here.
        "pay_from_balance": bool(form["pay_from_balance"].value()),
        # Loans are paid at once; other pledges of at least this may be paid in 3 installments.
        "pay_over_time_min": None if campaign.funding_model == FundingModel.DEBT else settings.PAY_OVER_TIME_MIN_AMOUNT,
        **_confirmation_context(form, amount_to_confirm),
    }
    return render(request, "pledges/pledge_create.html", context, status=status)


def _pledge_form_url(campaign, rewards, data) -> str:
    """Return the pledge form's address with the reward and amount of ``data`` (a logged-out visitor's choice)."""
    query = {}
    reward = data.get("reward", "")
    if any(str(r.pk) == reward for r in rewards):
        query["reward"] = reward
    amount = data.get("amount", "").strip()
    if amount and len(amount) <= _AMOUNT_KEPT_MAX_LENGTH:
        query["amount"] = amount
    url = reverse("pledges:create", kwargs={"slug": campaign.slug})
    return f"{url}?{urlencode(query)}" if query else url


def _shipping_choice(rules: list[tuple[str, int]] | None) -> dict | None:
    """Return what the pledge form shows of a reward's shipping: its rules by name, and the cost per country."""
    if rules is None:
        return None
    return {
        "rules": [(destination_name(destination), cost) for destination, cost in rules],
        "costs": json.dumps(shipping_costs_by_country(rules), separators=(",", ":")),
    }


@login_required
def pledge_list(request):
    """The backer's own pledges, newest first."""
    page_obj = Paginator(pledges_of_backer(backer=request.user), PLEDGES_PER_PAGE).get_page(request.GET.get("page"))
    # Pledges made to one campaign before a backer had one pledge per campaign stand together.
    groups: dict[int, list] = {}
    for pledge in page_obj.object_list:
        groups.setdefault(pledge.campaign_id, []).append(pledge)
    page_obj.object_list = pledge_addons_attach(pledges=[pledge for group in groups.values() for pledge in group])
    return render(request, "pledges/pledge_list.html", {"page_obj": page_obj})


@login_required
def pledge_detail(request, pk: int):
    """One pledge, as its receipt; 404 for anyone but its backer."""
    pledge = pledge_of_backer_get(backer=request.user, pledge_id=pk)
    if pledge is None:
        raise Http404("No such pledge")
    pledge_addons_attach(pledges=[pledge])
    context = {
        "pledge": pledge,
        "campaign": pledge.campaign,
        "thanks": request.GET.get("thanks") == "1",
        "installments": installments_of_pledge(pledge=pledge),
    }
    return render(request, "pledges/pledge_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def pledge_cancel_view(request, pk: int):
    """Ask for confirmation (GET), then cancel and refund the pledge (POST)."""
    pledge = pledge_of_backer_get(backer=request.user, pledge_id=pk)
    if pledge is None:
        raise Http404("No such pledge")
    form = PledgeCancelForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            pledge_cancel(pledge=pledge, actor=request.user)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(
                request,
                _(
                    "Your pledge of %(amount)s to “%(title)s” is cancelled. "
                    "The full amount is on its way back to your card."
                )
                % {"amount": pledge.amount_display, "title": pledge.campaign.title},
            )
        return redirect("pledges:detail", pk=pledge.pk)
    return render(request, "pledges/pledge_cancel.html", {"pledge": pledge, "campaign": pledge.campaign, "form": form})


@login_required
@require_http_methods(["GET", "POST"])
def pledge_change_reward_view(request, pk: int):
    """Pick another reward the pledge's amount covers (GET shows the choices, POST moves it).

    A reward that needs more says so, with the amount it takes and a link to manage the pledge
    with that reward and amount filled in.
    """
    pledge = pledge_of_backer_get(backer=request.user, pledge_id=pk)
    if pledge is None:
        raise Http404("No such pledge")
    rewards = list(pledge.campaign.rewards.all())
    form = PledgeRewardForm(request.POST if request.method == "POST" else None, rewards=rewards, pledge=pledge)
    if request.method == "POST" and form.is_valid():
        reward = form.cleaned_data["reward"]
        if (reward.pk if reward else None) == pledge.reward_id:
            return redirect("pledges:detail", pk=pledge.pk)
        try:
            pledge = pledge_change(
                pledge=pledge,
                actor=request.user,
                reward=reward,
                idempotency_key=new_idempotency_key(),
                client_ip=request.META.get("REMOTE_ADDR"),
            )
        except ApplicationError as error:
            form.add_error("reward" if error.field in ("reward", "amount") else None, error.message)
        else:
            if pledge.reward:
                message = _("Your pledge now comes with “%(reward)s”. Your card was not charged again.") % {
                    "reward": pledge.reward.title
                }
            else:
                message = _("Your pledge now comes with no reward. Your card was not charged again.")
            messages.success(request, message)
            return redirect("pledges:detail", pk=pledge.pk)
    bigger = [
        (reward, amount_as_text(reward.minimum_amount, pledge.currency))
        for reward in rewards
        if pledge.needs_more_for(reward) and not reward.sold_out
    ]
    context = {"pledge": pledge, "campaign": pledge.campaign, "form": form, "bigger_rewards": bigger}
    return render(request, "pledges/pledge_change_reward.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def pledge_change_amount_view(request, pk: int):
    """Manage the pledge: a new amount and/or reward in one step on the same pledge (GET asks, POST changes).

    More is charged as the difference to the card given; less is refunded as the difference.
    """
    pledge = pledge_of_backer_get(backer=request.user, pledge_id=pk)
    if pledge is None:
        raise Http404("No such pledge")
    rewards = list(pledge.campaign.rewards.all())
    addons = campaign_addons(campaign=pledge.campaign)
    pledge_addons_attach(pledges=[pledge])
    form_addons = {
        "addons": addons,
        "addon_quantities": {line.addon_id: line.quantity for line in pledge.addon_list},
    }
    idempotency_key = new_idempotency_key()
    amount_to_confirm = None
    if request.method == "POST":
        form = PledgeAmountForm(request.POST, pledge=pledge, rewards=rewards, **form_addons)
        if form.is_valid() and (amount_to_confirm := form.amount_to_confirm()) is not None:
            idempotency_key = form.cleaned_data["idempotency_key"]
        elif form.is_valid():
            data = form.cleaned_data
            old_amount = pledge.amount_display
            try:
                changed = pledge_change(
                    pledge=pledge,
                    actor=request.user,
                    amount=data["amount"],
                    reward=data["reward"],
                    shipping_country=data["shipping_country"] or None,
                    payment_token=data["card_number"],
                    idempotency_key=data["idempotency_key"],
                    addons=data["addons"],
                    client_ip=request.META.get("REMOTE_ADDR"),
                )
            except ApplicationError as error:
                if isinstance(error, PaymentDeclined):
                    form.add_error(
                        "card_number",
                        _("Your card was declined: %(reason)s Your pledge is unchanged. Try another card.")
                        % {"reason": failure_reason(error.code, error.message)},
                    )
                elif isinstance(error, PaymentUnavailable):
                    # Keep the key: pressing the button again retries this same change.
                    idempotency_key = data["idempotency_key"]
                    form.add_error(None, _("The payment processor had a temporary problem. Press the button again."))
                else:
                    form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                messages.success(request, _change_message(old_amount=old_amount, pledge=changed))
                return redirect("pledges:detail", pk=changed.pk)
    else:
        initial = {"amount": amount_as_text(pledge.amount_without_addons, pledge.currency)}
        chosen = next((r for r in rewards if str(r.pk) == request.GET.get("reward")), None)
        if chosen is not None:
            initial["reward"] = chosen.pk
            if chosen.pk != pledge.reward_id:
                initial["amount"] = amount_as_text(_whole_with(pledge=pledge, reward=chosen), pledge.currency)
        form = PledgeAmountForm(initial=initial, pledge=pledge, rewards=rewards, **form_addons)
    context = {
        "pledge": pledge,
        "campaign": pledge.campaign,
        "form": form,
        "any_reward_ships": any(reward.ships for reward in rewards),
        "idempotency_key": idempotency_key,
        **_confirmation_context(form, amount_to_confirm),
    }
    return render(request, "pledges/pledge_change_amount.html", context)


def _whole_with(*, pledge, reward) -> int:
    """Return ``pledge`` moved to ``reward`` without its add-ons: at least its minimum, plus shipping to its country.

    Only a suggestion to fill in the form: the change service quotes the shipping again.
    """
    shipping = 0
    if reward.ships and pledge.shipping_country:
        try:
            shipping = reward_shipping_quote(reward=reward, country=pledge.shipping_country)[1]
        except InvalidInput:
            shipping = 0  # it does not ship there: the form says so once sent
    return max(pledge.pledged_amount, reward.minimum_amount) + shipping


def _change_message(*, old_amount: str, pledge) -> str:
    change = pledge.changes.filter(status=PledgeChangeStatus.DONE).order_by("-id").first()
    difference = format_amount(abs(change.difference), pledge.currency) if change else ""
    if change and change.difference > 0:
        return _("Your pledge is now %(new)s (was %(old)s). Only the difference, %(difference)s, was charged.") % {
            "new": pledge.amount_display,
            "old": old_amount,
            "difference": difference,
        }
    if change and change.difference < 0:
        return _(
            "Your pledge is now %(new)s (was %(old)s). The difference, %(difference)s, is on its way back to your card."
        ) % {
            "new": pledge.amount_display,
            "old": old_amount,
            "difference": difference,
        }
    return _("Your pledge is saved. Your card was not charged again.")
