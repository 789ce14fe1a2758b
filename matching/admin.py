"""Matching pools and rounds in the operators' console: read-only rows, moves through services.

Ending, publishing, paying and cancelling a round are actions calling the round services,
which check the state, lock the round and write the audit event.
"""

from django.contrib import admin

from accounts.admin_actions import run_service_action
from crowdfund_site.admin_actions import ReadOnlyAdminMixin, ReadOnlyInline

from .models import Allocation, Pool, Round, RoundExclusion, RoundStatusChange
from .services import pool_close, round_cancel, round_end, round_pay, round_publish


class RoundInline(ReadOnlyInline):
    model = Round
    fields = ("starts_at", "ends_at", "status", "challenge_ends_at", "paid_at")
    show_change_link = True


@admin.register(Pool)
class PoolAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "sponsor", "mode", "amount", "currency", "funded_at", "starts_at", "ends_at")
    list_filter = ("mode", "currency")
    list_select_related = ("sponsor",)
    search_fields = ("name", "sponsor__username")
    inlines = (RoundInline,)
    actions = ("close",)

    def has_close_permission(self, request):
        return request.user.has_perm("matching.pay_round")

    @admin.action(description="Close the pool and give what is left back to the sponsor", permissions=["close"])
    def close(self, request, queryset):
        return run_service_action(
            modeladmin=self,
            request=request,
            queryset=queryset,
            action="matching_pool_close",
            title="Close pool",
            perform=lambda pool, reason: pool_close(pool=pool, actor=request.user),
            needs_reason=False,
        )


class AllocationInline(ReadOnlyInline):
    model = Allocation
    fields = ("campaign", "amount", "contributions", "backers", "raised", "paid_at", "outcome", "settled_at")


class ExclusionInline(ReadOnlyInline):
    model = RoundExclusion
    fields = ("pledge", "actor", "reason", "created_at")


class StatusChangeInline(ReadOnlyInline):
    model = RoundStatusChange
    fields = ("from_status", "to_status", "actor", "reason", "created_at")


@admin.register(Round)
class RoundAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("__str__", "status", "starts_at", "ends_at", "challenge_ends_at", "paid_at")
    list_filter = ("status",)
    list_select_related = ("pool",)
    inlines = (AllocationInline, ExclusionInline, StatusChangeInline)
    actions = ("end", "publish", "pay", "cancel")

    def has_pay_permission(self, request):
        return request.user.has_perm("matching.pay_round")

    def _run(self, request, queryset, *, action, title, perform, needs_reason=False):
        return run_service_action(
            modeladmin=self,
            request=request,
            queryset=queryset,
            action=action,
            title=title,
            perform=perform,
            needs_reason=needs_reason,
        )

    @admin.action(description="End the round and freeze its allocation", permissions=["pay"])
    def end(self, request, queryset):
        return self._run(
            request,
            queryset,
            action="matching_round_end",
            title="End round",
            perform=lambda r, reason: round_end(matching_round=r, actor=request.user),
        )

    @admin.action(description="Publish the results and open the challenge window", permissions=["pay"])
    def publish(self, request, queryset):
        return self._run(
            request,
            queryset,
            action="matching_round_publish",
            title="Publish round",
            perform=lambda r, reason: round_publish(matching_round=r, actor=request.user),
        )

    @admin.action(description="Pay the round into the campaigns' escrow", permissions=["pay"])
    def pay(self, request, queryset):
        return self._run(
            request,
            queryset,
            action="matching_round_pay",
            title="Pay round",
            perform=lambda r, reason: round_pay(matching_round=r, actor=request.user),
        )

    @admin.action(description="Cancel the round (nothing leaves the pool)", permissions=["pay"])
    def cancel(self, request, queryset):
        return self._run(
            request,
            queryset,
            action="matching_round_cancel",
            title="Cancel round",
            perform=lambda r, reason: round_cancel(matching_round=r, actor=request.user, reason=reason),
            needs_reason=True,
        )
