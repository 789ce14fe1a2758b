"""Operators' console for delivery: non-delivery reports to decide (Finance), shipments, holdbacks."""

from django.contrib import admin, messages

from crowdfund_site.exceptions import ApplicationError

from .models import DeliveryReport, Holdback, Shipment
from .services import report_decide


@admin.register(DeliveryReport)
class DeliveryReportAdmin(admin.ModelAdmin):
    list_display = ["pk", "delivery", "created_at", "answered_at", "decision", "decided_at"]
    list_filter = ["decision"]
    readonly_fields = [f.name for f in DeliveryReport._meta.fields]
    actions = ["uphold", "dismiss"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _decide(self, request, queryset, upheld: bool):
        # The admin action's reason is fixed; the audit event records who decided and when.
        reason = "upheld by staff in admin" if upheld else "dismissed by staff in admin"
        for report in queryset:
            try:
                report_decide(report_id=report.pk, actor=request.user, upheld=upheld, reason=reason)
            except ApplicationError as error:
                self.message_user(request, f"Report {report.pk}: {error.message}", messages.ERROR)
            else:
                self.message_user(request, f"Report {report.pk}: {'upheld' if upheld else 'dismissed'}.")

    @admin.action(description="Uphold: refund the backer's part of the holdback", permissions=["decide"])
    def uphold(self, request, queryset):
        self._decide(request, queryset, True)

    @admin.action(description="Dismiss: counts as delivered", permissions=["decide"])
    def dismiss(self, request, queryset):
        self._decide(request, queryset, False)

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
