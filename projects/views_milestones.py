"""Pages' actions on milestones: the plan, proof, votes, an extension and abandoning the project.

Each parses its form, calls one service and returns to the campaign page with a message; a
refusal (wrong person, wrong state, bad date) is shown as the message and changes nothing.
"""

from datetime import date

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST

from crowdfund_site.exceptions import ApplicationError
from settlement.models import RemainderCause
from settlement.remainder import remainder_refund_start

from .milestones.models import Milestone
from .milestones.selectors import milestones_of
from .milestones.services import (
    MAX_MILESTONES,
    MilestoneInput,
    milestone_extend,
    milestone_submit_proof,
    milestone_vote,
    milestones_plan_set,
)
from .selectors import campaign_of_initiator_get, campaign_page_get


def _campaign_or_404(request, slug: str):
    campaign = campaign_page_get(slug=slug, viewer=request.user)
    if campaign is None:
        raise Http404("No such campaign")
    return campaign


def _milestone_or_404(campaign, milestone_id: int) -> Milestone:
    milestone = Milestone.objects.filter(campaign=campaign, pk=milestone_id).first()
    if milestone is None:
        raise Http404("No such milestone")
    return milestone


def _back(campaign, milestone=None):
    return redirect(campaign.get_absolute_url() + (f"#milestone-{milestone.pk}" if milestone else "#milestones"))


def _run(request, campaign, milestone, action, done: str):
    try:
        action()
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, done)
    return _back(campaign, milestone)


@login_required
@require_POST
def milestone_proof(request, slug: str, milestone_id: int):
    campaign = _campaign_or_404(request, slug)
    milestone = _milestone_or_404(campaign, milestone_id)
    text = request.POST.get("proof_text", "")
    return _run(
        request,
        campaign,
        milestone,
        lambda: milestone_submit_proof(milestone=milestone, actor=request.user, proof_text=text),
        gettext("Proof submitted: your backers have seven days to vote."),
    )


@login_required
@require_POST
def milestone_vote_view(request, slug: str, milestone_id: int):
    campaign = _campaign_or_404(request, slug)
    milestone = _milestone_or_404(campaign, milestone_id)
    choice = request.POST.get("approve")
    if choice not in ("yes", "no"):
        messages.error(request, gettext("Choose approve or reject."))
        return _back(campaign, milestone)
    return _run(
        request,
        campaign,
        milestone,
        lambda: milestone_vote(milestone=milestone, backer=request.user, approve=choice == "yes"),
        gettext("Your vote is recorded."),
    )


@login_required
@require_POST
def milestone_extend_view(request, slug: str, milestone_id: int):
    campaign = _campaign_or_404(request, slug)
    milestone = _milestone_or_404(campaign, milestone_id)
    try:
        new_date = date.fromisoformat(request.POST.get("new_date", ""))
    except ValueError:
        messages.error(request, gettext("Enter the new date as YYYY-MM-DD."))
        return _back(campaign, milestone)
    return _run(
        request,
        campaign,
        milestone,
        lambda: milestone_extend(milestone=milestone, actor=request.user, new_date=new_date),
        gettext("The milestone is extended."),
    )


@login_required
@require_POST
def campaign_abandon(request, slug: str):
    campaign = _campaign_or_404(request, slug)
    reason = request.POST.get("reason", "")[:2_000]
    return _run(
        request,
        campaign,
        None,
        lambda: remainder_refund_start(
            campaign=campaign, actor=request.user, cause=RemainderCause.ABANDONED, reason=reason
        ),
        gettext("The project is abandoned: what was not released is being refunded to your backers."),
    )


class MilestoneForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=120)
    proof_required = forms.CharField(
        label=_("Proof to be shown"), max_length=2_000, widget=forms.Textarea(attrs={"rows": 2})
    )
    target_date = forms.DateField(label=_("Target date"), widget=forms.DateInput(attrs={"type": "date"}))
    share_bps = forms.IntegerField(label=_("Share (basis points)"), min_value=1, max_value=10_000)


MilestoneFormSet = forms.formset_factory(
    MilestoneForm, extra=0, max_num=MAX_MILESTONES, validate_max=True, absolute_max=MAX_MILESTONES
)


@login_required
@require_http_methods(["GET", "POST"])
def campaign_milestones_edit(request, slug: str):
    """The initiator plans 1 to 8 milestones (or none) while the campaign can be edited."""
    campaign = campaign_of_initiator_get(slug=slug, initiator=request.user)
    if campaign is None:
        raise Http404("No such campaign")
    if request.method == "POST":
        formset = MilestoneFormSet(request.POST, prefix="m")
        if formset.is_valid():
            plan = [
                MilestoneInput(f["title"], f["proof_required"], f["target_date"], f["share_bps"])
                for f in formset.cleaned_data
                if f and not f.get("DELETE")
            ]
            try:
                milestones_plan_set(campaign=campaign, actor=request.user, plan=plan)
            except ApplicationError as error:
                formset._non_form_errors = formset.error_class([error.message])
            else:
                messages.success(request, gettext("Milestones saved."))
                return redirect("projects:campaign_milestones", slug=campaign.slug)
        status = 400
    else:
        initial = [
            {
                "title": m.title,
                "proof_required": m.proof_required,
                "target_date": m.target_date,
                "share_bps": m.share_bps,
            }
            for m in milestones_of(campaign=campaign)
        ]
        formset = MilestoneFormSet(prefix="m", initial=initial or [{}])
        status = 200
    return render(
        request, "projects/campaign_milestones.html", {"campaign": campaign, "formset": formset}, status=status
    )
