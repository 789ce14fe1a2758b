"""Operators' console for delivery: non-delivery reports to decide (Finance), shipments, holdbacks."""

from django.contrib import admin

from accounts.admin_actions import run_service_action

from .models import DeliveryReport, Holdback, Shipment
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
        return request.user.has_perm("fulfilment.decide_delivery_report")


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
