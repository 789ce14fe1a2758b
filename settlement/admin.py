"""Settlement in the operators' console: the ledger verification page and Operations.

Operations lists what settlement left unfinished, with retry actions that call settlement
services; the verification page runs every money invariant. Both are for finance staff.
"""

import functools

from django.contrib import admin
from django.db.models import Count, OuterRef, Q, Subquery
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts.admin_actions import run_service_action
from crowdfund_site.admin_actions import ReadOnlyAdminMixin
from escrow.admin import LedgerTransactionAdmin
from escrow.models import LedgerTransaction
from projects.admin import CampaignAdmin, CampaignAdminBase
from projects.models import Campaign, CampaignStatus, CampaignStatusChange

from .models import StuckSettlement, SuspendedPastDeadline, UnconfirmedRefund
from .selectors import refunds_unconfirmed
from .services import refund_retry, settlement_retry
from .verification import ledger_verify

admin.site.unregister(LedgerTransaction)


@admin.register(LedgerTransaction)
class VerifiedLedgerTransactionAdmin(LedgerTransactionAdmin):
    """The ledger's transactions, with a button that checks every money invariant now."""

    change_list_template = "admin/settlement/ledgertransaction_change_list.html"

    def get_urls(self):
        verify = self.admin_site.admin_view(self.verify_view)
        return [path("verify/", verify, name="settlement_ledger_verify"), *super().get_urls()]

    def verify_view(self, request):
        """Run every ledger invariant now and show the result."""
        allowed = request.user.has_perm("settlement.verify_ledger")
        problems = ledger_verify() if allowed and request.method == "POST" else None
        return TemplateResponse(
            request,
            "admin/settlement/verify_ledger.html",
            {
                **self.admin_site.each_context(request),
                "title": "Ledger verification",
                "allowed": allowed,
                "problems": problems,
                "checked_at": timezone.now() if problems is not None else None,
                "opts": self.model._meta,
            },
        )


class OperationsAdminMixin(ReadOnlyAdminMixin):
    """Operations pages are for finance staff: the retry permission governs seeing them too."""

    def has_retry_permission(self, request):
        return request.user.has_perm("settlement.retry_operations")

    def has_view_permission(self, request, obj=None):
        return self.has_retry_permission(request)

    def has_module_permission(self, request):
        return self.has_retry_permission(request)


@admin.register(StuckSettlement)
class StuckSettlementAdmin(OperationsAdminMixin, admin.ModelAdmin):
    """Campaigns closing (or cancelled) whose settlement has not finished."""

    list_display = ("title", "status", "settlement_outcome", "held_pledges", "last_settlement_progress_at")
    list_select_related = ("initiator",)
    ordering = ("last_settlement_progress_at",)
    actions = ("retry",)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .filter(status__in=[CampaignStatus.CLOSING, CampaignStatus.CANCELLED], settled_at__isnull=True)
            .exclude(settlement_outcome="")
            .annotate(held=Count("pledges", filter=Q(pledges__status="held")))
        )

    @admin.display(description="Pledges still held", ordering="held")
    def held_pledges(self, obj):
        url = reverse("admin:pledges_pledge_changelist") + f"?campaign__id__exact={obj.pk}&status__exact=held"
        return format_html('<a href="{}">{}</a>', url, obj.held)

    @admin.action(description="Retry settlement", permissions=["retry"])
    def retry(self, request, queryset):
        return run_service_action(
            modeladmin=self,
            request=request,
            queryset=queryset,
            action="settlement_retry",
            title="Retry settlement",
            perform=lambda c, reason: settlement_retry(campaign=c, actor=request.user),
            needs_reason=False,
        )


@admin.register(UnconfirmedRefund)
class UnconfirmedRefundAdmin(OperationsAdminMixin, admin.ModelAdmin):
    """Refunds the ledger records that the gateway has not confirmed yet."""

    list_display = ("id", "backer", "campaign", "amount_display", "status", "closed_at")
    list_select_related = ("backer", "campaign")
    actions = ("retry",)

    def get_queryset(self, request):
        return refunds_unconfirmed().select_related("backer", "campaign")

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj):
        return obj.amount_display

    @admin.action(description="Send the refund again", permissions=["retry"])
    def retry(self, request, queryset):
        return run_service_action(
            modeladmin=self,
            request=request,
            queryset=queryset,
            action="refund_retry",
            title="Retry refunds",
            perform=lambda p, reason: refund_retry(pledge=p, actor=request.user),
            needs_reason=False,
        )


def _on_campaigns(action):
    """Return ``action`` run on the same rows as plain Campaigns.

    The audit log names the model of the objects it is given; a campaign decision taken from
    this list must read ``projects.Campaign`` like the same decision taken anywhere else.
    """

    @functools.wraps(action)
    def wrapper(modeladmin, request, queryset):
        return action(modeladmin, request, Campaign.objects.filter(pk__in=queryset.values("pk")).order_by("pk"))

    return wrapper


@admin.register(SuspendedPastDeadline)
class SuspendedPastDeadlineAdmin(OperationsAdminMixin, CampaignAdminBase):
    """Suspended campaigns past their deadline, whose backers' money waits in escrow for a decision.

    Reinstating returns a campaign to live, and the next run of the close task closes and settles
    it, its deadline having passed; cancelling refunds every backer. The actions are the campaign
    list's own, with its permissions (reinstate: moderators; cancel: finance).
    """

    list_display = (
        "title",
        "initiator",
        "deadline",
        "raised_display",
        "backer_count",
        "suspended_at",
        "suspended_by",
        "suspension_reason",
    )
    ordering = ("deadline", "id")
    actions = (_on_campaigns(CampaignAdmin.reinstate), _on_campaigns(CampaignAdmin.cancel))

    def has_view_permission(self, request, obj=None):
        # Finance, who may cancel and refund, and the moderators who suspend campaigns and alone
        # may reinstate one: without the list they would not know a decision is waiting.
        return self.has_retry_permission(request) or request.user.has_perm("projects.suspend_campaign")

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def get_queryset(self, request):
        # The latest suspension as subqueries of the list query: no query per row.
        suspension = CampaignStatusChange.objects.filter(
            campaign=OuterRef("pk"), to_status=CampaignStatus.SUSPENDED
        ).order_by("-created_at", "-id")
        return (
            super()
            .get_queryset(request)
            .filter(status=CampaignStatus.SUSPENDED, deadline__lte=timezone.now())
            .annotate(
                suspended_on=Subquery(suspension.values("created_at")[:1]),
                suspended_by_name=Subquery(suspension.values("actor__username")[:1]),
                suspended_why=Subquery(suspension.values("reason")[:1]),
            )
        )

    @admin.display(description="Suspended", ordering="suspended_on")
    def suspended_at(self, obj):
        return obj.suspended_on

    @admin.display(description="Suspended by")
    def suspended_by(self, obj):
        return obj.suspended_by_name

    @admin.display(description="Why")
    def suspension_reason(self, obj):
        return obj.suspended_why


from . import admin_milestones  # noqa: E402, F401  (registers the milestones console)
