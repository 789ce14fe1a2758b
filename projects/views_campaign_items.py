"""A campaign's list of items on its initiator's page: the list, a form to add one, each one's edit and remove.

Add-ons and stretch goals are the same page over another model, form and three services; a
``CampaignItemsPage`` describes one of them and answers its three views. Each action calls one
service; a refusal is shown on the form (or as a message) and changes nothing.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.contrib import messages
from django.db.models import Model
from django.forms import Form
from django.http import Http404
from django.shortcuts import redirect, render

from crowdfund_site.exceptions import ApplicationError

from .selectors import campaign_of_initiator_get


@dataclass(frozen=True)
class CampaignItemsPage:
    """What differs between two campaign item pages; the views are the methods.

    ``create(campaign=, actor=, **cleaned_data)``, ``update(<item_name>=, actor=, **cleaned_data)`` and
    ``delete(<item_name>=, actor=)`` are the services; ``items(campaign)`` the selector of the list and
    ``initial(item, currency)`` the edit form's initial values.
    """

    model: type[Model]
    form_class: type[Form]
    item_name: str
    url_name: str
    template: str
    list_name: str
    max_name: str
    max_items: int
    edit_statuses: Iterable[str]
    refresh_fields: tuple[str, ...]
    items: Callable
    initial: Callable
    create: Callable
    update: Callable
    delete: Callable
    added_message: str
    saved_message: str
    removed_message: str

    def page(self, request, slug: str):
        """The list and the add form (GET), or add one (POST)."""
        campaign = self._campaign_or_404(request, slug)
        form = self._form(campaign, request.POST if request.method == "POST" else None)
        if request.method == "POST":
            if form.is_valid():
                try:
                    self.create(campaign=campaign, actor=request.user, **form.cleaned_data)
                except ApplicationError as error:
                    _show_error(form, error)
                else:
                    messages.success(request, str(self.added_message))
                    return redirect(self.url_name, slug=campaign.slug)
            return self._page(request, campaign, form, status=400)
        return self._page(request, campaign, form)

    def edit(self, request, slug: str, item_id: int):
        """Save one item's form (POST); a refusal shows the page with that form and its error."""
        campaign = self._campaign_or_404(request, slug)
        item = self._item_or_404(campaign, item_id)
        form = self._form(campaign, request.POST, prefix=self._prefix(item))
        if form.is_valid():
            try:
                self.update(**{self.item_name: item}, actor=request.user, **form.cleaned_data)
            except ApplicationError as error:
                _show_error(form, error)
            else:
                messages.success(request, str(self.saved_message))
                return redirect(self.url_name, slug=campaign.slug)
        return self._page(request, campaign, self._form(campaign), status=400, editing=(item.pk, form))

    def remove(self, request, slug: str, item_id: int):
        """Remove one item (POST); a refusal is a message on the list."""
        campaign = self._campaign_or_404(request, slug)
        item = self._item_or_404(campaign, item_id)
        try:
            self.delete(**{self.item_name: item}, actor=request.user)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, str(self.removed_message))
        return redirect(self.url_name, slug=campaign.slug)

    def _page(self, request, campaign, form, *, status: int = 200, editing: tuple[int, Form] | None = None):
        campaign.refresh_from_db(fields=list(self.refresh_fields))
        items = self.items(campaign)
        for item in items:
            if editing and editing[0] == item.pk:
                item.form = editing[1]
            else:
                item.form = self._form(
                    campaign, initial=self.initial(item, campaign.currency), prefix=self._prefix(item)
                )
        context = {
            "campaign": campaign,
            self.list_name: items,
            "form": form,
            "can_edit": campaign.status in self.edit_statuses,
            self.max_name: self.max_items,
        }
        return render(request, self.template, context, status=status)

    def _form(self, campaign, data=None, **kwargs) -> Form:
        return self.form_class(data, currency=campaign.currency, **kwargs)

    def _prefix(self, item) -> str:
        return f"{self.item_name}-{item.pk}"

    def _campaign_or_404(self, request, slug: str):
        campaign = campaign_of_initiator_get(slug=slug, initiator=request.user)
        if campaign is None:
            raise Http404("No such campaign")
        return campaign

    def _item_or_404(self, campaign, item_id: int):
        item = self.model.objects.filter(campaign=campaign, pk=item_id).first()
        if item is None:
            raise Http404(f"No such {self.model._meta.verbose_name}")
        return item


def _show_error(form, error: ApplicationError) -> None:
    form.add_error(error.field if error.field in form.fields else None, error.message)
