"""Milestones in the operators' console: what waits for Finance's sign-off, and the decisions on it.

Each milestone shows its proof, the vote's result and turnout, and what its tranche is; the
actions call the services (sign off then release, reject with a reason, declare the campaign's
milestones failed with a reason), each of which records its audit event.
"""

from django.contrib import admin
from django.utils.html import format_html

from accounts.admin_actions import run_service_action
from crowdfund_site.admin_actions import ReadOnlyAdminMixin, ReadOnlyInline
from crowdfund_site.money import format_amount
from projects.milestones.models import Milestone, MilestoneStatus, MilestoneStatusChange
from projects.milestones.services import milestone_reject, milestone_sign_off

from .models import RemainderCause
from .remainder import remainder_refund_start
from .tranches import tranche_release


class MilestoneHistoryInline(ReadOnlyInline):
    model = MilestoneStatusChange
    fields = ("created_at", "from_status", "to_status", "actor", "reason")
    readonly_fields = fields
    verbose_name_plural = "Status history"


class AwaitingSignOffFilter(admin.SimpleListFilter):
    title = "Finance"
    parameter_name = "finance"

    def lookups(self, request, model_admin):
        return [("waiting", "Waiting for sign-off")]

    def queryset(self, request, queryset):
        if self.value() == "waiting":
            return queryset.filter(status=MilestoneStatus.APPROVED, signed_off_at__isnull=True)
        return queryset


@admin.register(Milestone)
class MilestoneAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("__str__", "campaign", "status", "tranche", "turnout", "approval", "vote_closes_at")
    list_filter = (AwaitingSignOffFilter, "status")
    list_select_related = ("campaign",)
    search_fields = ("title", "campaign__title", "campaign__slug")
    inlines = (MilestoneHistoryInline,)
    readonly_fields = (
        "campaign",
        "position",
        "title",
        "proof_required",
        "target_date",
        "extended_to",
        "share_bps",
        "status",
        "tranche",
        "proof_text",
        "turnout",
        "approval",
        "vote_closes_at",
        "decision_reason",
        "resubmissions",
        "signed_off_by",
        "signed_off_at",
        "released_at",
    )
    fields = readonly_fields
    actions = ("sign_off_and_release", "reject", "declare_failed")

    @admin.display(description="tranche")
    def tranche(self, obj):
        if obj.amount is None:
            return f"{obj.share_bps / 100:g} % (fixed at success)"
        return format_amount(obj.amount, obj.campaign.currency)

    @admin.display(description="turnout")
    def turnout(self, obj):
        if not obj.vote_basis:
            return "—"
        return f"{obj.votes_amount * 100 / obj.vote_basis:.1f} % of pledged"

    @admin.display(description="approving")
    def approval(self, obj):
        if not obj.votes_amount:
            return "—"
        return format_html("{} % of the amount voted", f"{obj.approve_amount * 100 / obj.votes_amount:.1f}")

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("projects.view_milestone")

    @admin.action(description="Sign off and release the tranche", permissions=["view"])
    def sign_off_and_release(self, request, queryset):
        def perform(milestone, _reason):
            milestone_sign_off(milestone=milestone, actor=request.user)
            tranche_release(milestone_id=milestone.pk)

        return run_service_action(
            modeladmin=self,
            request=request,
            queryset=queryset,
            action="milestone_sign_off",
            title="Sign off and release",
            perform=perform,
            needs_reason=False,
        )

    @admin.action(description="Reject (the initiator may resubmit)", permissions=["view"])
    def reject(self, request, queryset):
        return run_service_action(
            modeladmin=self,
            request=request,
            queryset=queryset,
            action="milestone_reject",
            title="Reject the milestone",
            perform=lambda m, reason: milestone_reject(milestone=m, actor=request.user, reason=reason),
            needs_reason=True,
        )

    @admin.action(description="Declare the campaign's milestones failed (refunds the rest)", permissions=["view"])
    def declare_failed(self, request, queryset):
        return run_service_action(
            modeladmin=self,
            request=request,
            queryset=queryset,
            action="remainder_refund_start",
            title="Declare failed and refund what is not released",
            perform=lambda m, reason: remainder_refund_start(
                campaign=m.campaign, actor=request.user, cause=RemainderCause.DECLARED_FAILED, reason=reason
            ),
            needs_reason=True,
        )
