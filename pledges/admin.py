"""Pledges in the operators' console: read-only, with a refund action for finance staff."""

from django.contrib import admin

from accounts.admin_actions import run_service_action
from crowdfund_site.admin_actions import ReadOnlyAdminMixin, ReadOnlyInline

from .models import Pledge, PledgeInstallment, PledgeStatusChange
from .services import pledge_refund


class PledgeHistoryInline(ReadOnlyInline):
    model = PledgeStatusChange
    fields = ("created_at", "from_status", "to_status", "actor", "reason")
    readonly_fields = fields
    verbose_name_plural = "Status history"


class PledgeInstallmentInline(ReadOnlyInline):
    model = PledgeInstallment
    fields = (
        "number",
        "amount",
        "due_at",
        "status",
        "attempts",
        "declines",
        "next_attempt_at",
        "paid_to",
        "paid_at",
        "ledger_transaction",
        "failure_code",
    )
    readonly_fields = fields
    verbose_name_plural = "Installments (paid over time)"


@admin.register(Pledge)
class PledgeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "backer", "campaign", "amount_display", "reward", "status", "created_at")
    list_filter = ("status", "currency")
    list_select_related = ("backer", "campaign", "reward")
    search_fields = (
        "=id",
        "backer__username",
        "backer__email",
        "campaign__title",
        "idempotency_key",
        "payment_reference",
    )
    readonly_fields = (
        "backer",
        "campaign",
        "reward",
        "amount_display",
        "status",
        "payment_reference",
        "failure_code",
        "failure_message",
        "idempotency_key",
        "created_at",
        "held_at",
        "closed_at",
        "installment_plan",
        "unheld_amount",
    )
    fields = readonly_fields
    inlines = (PledgeHistoryInline, PledgeInstallmentInline)
    actions = ("refund",)
    show_full_result_count = False  # counting millions of pledges on every page load is slow

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj):
        return obj.amount_display

    def has_refund_permission(self, request):
        return request.user.has_perm("pledges.refund_pledge")

    @admin.action(description="Refund selected held pledges", permissions=["refund"])
    def refund(self, request, queryset):
        return run_service_action(
            modeladmin=self,
            request=request,
            queryset=queryset,
            action="pledge_refund",
            title="Refund pledges",
            perform=lambda p, reason: pledge_refund(pledge=p, actor=request.user, reason=reason),
            needs_reason=True,
        )
