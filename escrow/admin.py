"""The ledger and payment operations in the operators' console.

Ledger rows can be looked at, never added, changed or deleted, by anyone (superusers included):
corrections are new transactions posted by services. Operations lists what settlement left
unfinished, with retry actions that call settlement services.
"""

import functools

from django.contrib import admin
from django.db.models import Count, Max, OuterRef, Q, Subquery, Sum
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts.admin_actions import run_service_action
from crowdfund_site.admin_actions import ReadOnlyAdminMixin, ReadOnlyInline
from crowdfund_site.money import format_amount
from projects.admin import CampaignAdmin, CampaignAdminBase
from projects.models import Campaign, CampaignStatus, CampaignStatusChange

from .models import (
    GatewayOperation,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    StuckSettlement,
    SuspendedPastDeadline,
    UnconfirmedRefund,
)
from .settlement import refund_retry, refunds_unconfirmed, settlement_retry
from .verification import ledger_verify


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("code", "kind", "currency", "balance_display", "entry_count")
    list_filter = ("kind", "currency")
    search_fields = ("code",)
    readonly_fields = ("code", "kind", "currency", "name", "created_at", "balance_display")
    fields = readonly_fields

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(balance=Sum("entries__amount", default=0), n=Count("entries"))

    @admin.display(description="Balance", ordering="balance")
    def balance_display(self, obj):
        return format_amount(obj.balance, obj.currency)

    @admin.display(description="Entries", ordering="n")
    def entry_count(self, obj):
        return obj.n


class EntryInline(ReadOnlyInline):
    model = LedgerEntry
    fields = ("account", "amount", "currency")
    readonly_fields = fields


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "kind", "idempotency_key", "reference", "amount_display", "created_at")
    list_filter = ("kind",)
    search_fields = ("=idempotency_key", "=reference")
    readonly_fields = ("kind", "idempotency_key", "reference", "description", "created_at")
    fields = readonly_fields
    inlines = (EntryInline,)
    show_full_result_count = False
    change_list_template = "admin/escrow/ledgertransaction/change_list.html"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(moved=Sum("entries__amount", filter=Q(entries__amount__gt=0)), currency=Max("entries__currency"))
        )

    @admin.display(description="Amount moved")
    def amount_display(self, obj):
        return format_amount(obj.moved or 0, obj.currency or "USD")

    def get_urls(self):
        verify = self.admin_site.admin_view(self.verify_view)
        return [path("verify/", verify, name="escrow_ledger_verify"), *super().get_urls()]

    def verify_view(self, request):
        """Run every ledger invariant now and show the result."""
        allowed = request.user.has_perm("escrow.verify_ledger")
        problems = ledger_verify() if allowed and request.method == "POST" else None
        return TemplateResponse(
            request,
            "admin/escrow/verify_ledger.html",
            {
                **self.admin_site.each_context(request),
                "title": "Ledger verification",
                "allowed": allowed,
                "problems": problems,
                "checked_at": timezone.now() if problems is not None else None,
                "opts": self.model._meta,
            },
        )


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "transaction", "account", "amount", "currency")
    list_select_related = ("transaction", "account")
    list_filter = ("currency", "account__kind")
    search_fields = ("=account__code", "=transaction__idempotency_key")
    show_full_result_count = False


@admin.register(GatewayOperation)
class GatewayOperationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("reference", "kind", "status", "amount_display", "error_code", "attempts", "created_at")
    list_filter = ("status", "kind", "error_code")
    search_fields = ("=idempotency_key",)
    show_full_result_count = False

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj):
        return format_amount(obj.amount, obj.currency)


class OperationsAdminMixin(ReadOnlyAdminMixin):
    """Operations pages are for finance staff: the retry permission governs seeing them too."""

    def has_retry_permission(self, request):
        return request.user.has_perm("escrow.retry_operations")

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
