"""Operators' console for delivery: non-delivery reports to decide (Finance), reward tiers overdue
for delivery to declare not delivered (Finance), shipments, holdbacks."""

from django.contrib import admin

from accounts.admin_actions import run_service_action
from crowdfund_site.money import format_amount
from settlement.holdback import holdback_declare_not_delivered

from .models import DECIDE_PERMISSION, DeliveryReport, Holdback, NonDelivery, OverdueTier, Shipment
from .selectors import not_delivered_after, tiers_overdue_for_staff
from .services import report_decide


@admin.register(DeliveryReport)
class DeliveryReportAdmin(admin.ModelAdmin):
    list_display = ["pk", "delivery", "message", "answer", "created_at", "decision", "decided_at"]
    list_filter = ["decision"]
    readonly_fields = [f.name for f in DeliveryReport._meta.fields]
    actions = ["uphold", "dismiss"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _decide(self, request, queryset, upheld: bool):
        return run_service_action(
            modeladmin=self,
            request=request,
            queryset=queryset,
            action="delivery_report_decide",
            title="Uphold reports (refund the backers' parts)" if upheld else "Dismiss reports (delivered)",
            perform=lambda report, reason: report_decide(
                report_id=report.pk, actor=request.user, upheld=upheld, reason=reason
            ),
            needs_reason=True,
        )

    @admin.action(description="Uphold: refund the backer's part of the holdback", permissions=["decide"])
    def uphold(self, request, queryset):
        return self._decide(request, queryset, True)

    @admin.action(description="Dismiss: counts as delivered", permissions=["decide"])
    def dismiss(self, request, queryset):
        return self._decide(request, queryset, False)

    def has_decide_permission(self, request):
        return request.user.has_perm(DECIDE_PERMISSION)


@admin.register(OverdueTier)
class OverdueTierAdmin(admin.ModelAdmin):
    """Tiers never marked shipped past their delivery day and the grace, their holdback stuck.

    Finance declares one not delivered (with a reason): every backer of it gets their part of the
    holdback back. Seen and acted on by those who decide non-delivery reports.
    """

    list_display = ["title", "campaign", "delivery_due", "declarable_from", "backers", "holdback_held"]
    list_select_related = ["campaign"]
    actions = ["declare_not_delivered"]

    def get_queryset(self, request):
        return tiers_overdue_for_staff()

    @admin.display(description="delivery due", ordering="delivery_due")
    def delivery_due(self, obj):
        return obj.delivery_due

    @admin.display(description="may be declared from")
    def declarable_from(self, obj):
        return not_delivered_after(obj.delivery_due)

    @admin.display(description="backers")
    def backers(self, obj):
        return obj.backer_count

    @admin.display(description="holdback held (refunded if declared)")
    def holdback_held(self, obj):
        return format_amount(obj.holdback_held, obj.campaign.currency)

    @admin.action(
        description="Declare not delivered: refund its backers' parts of the holdback", permissions=["decide"]
    )
    def declare_not_delivered(self, request, queryset):
        return run_service_action(
            modeladmin=self,
            request=request,
            queryset=queryset,
            action="tier_declare_not_delivered",
            title="Declare rewards not delivered (refund their backers' parts of the holdback)",
            perform=lambda tier, reason: holdback_declare_not_delivered(
                tier_id=tier.pk, actor=request.user, reason=reason
            ),
            needs_reason=True,
        )

    def has_decide_permission(self, request):
        return request.user.has_perm(DECIDE_PERMISSION)

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff and request.user.has_perm(DECIDE_PERMISSION)

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(NonDelivery)
class NonDeliveryAdmin(admin.ModelAdmin):
    list_display = ["tier", "campaign", "declared_by", "declared_at", "settled_at", "refunded_amount"]
    readonly_fields = [f.name for f in NonDelivery._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Shipment)
class ShipmentAdmin(admin.ModelAdmin):
    list_display = [
        "tier",
        "campaign",
        "shipped_on",
        "silence_until",
        "settled_at",
        "released_amount",
        "refunded_amount",
    ]
    readonly_fields = [f.name for f in Shipment._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Holdback)
class HoldbackAdmin(admin.ModelAdmin):
    list_display = ["campaign", "bps", "amount", "reward_pledged", "created_at"]
    readonly_fields = [f.name for f in Holdback._meta.fields]

    def has_add_permission(self, request):
        return False
