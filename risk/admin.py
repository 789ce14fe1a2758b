"""Admin pages for the risk app: read-only records, and decisions on fraud alerts through its services."""

from django.contrib import admin
from django.utils.html import format_html_join

from accounts.admin_actions import run_service_action

from . import services
from .models import FraudAlert, PledgeRiskCheck, RiskAssessment, RiskModelVersion


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by ``risk.services``: staff may look, nobody edits here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(RiskModelVersion)
class RiskModelVersionAdmin(ReadOnlyAdmin):
    list_display = ("version", "is_prior", "trained_on", "failed_share", "log_loss", "created_at")


@admin.register(RiskAssessment)
class RiskAssessmentAdmin(ReadOnlyAdmin):
    list_display = ("campaign", "probability", "model_version", "created_at")
    list_select_related = ("campaign", "model_version")
    search_fields = ("campaign__title", "=campaign__id")
    date_hierarchy = "created_at"


@admin.register(PledgeRiskCheck)
class PledgeRiskCheckAdmin(ReadOnlyAdmin):
    list_display = ("pledge", "probability", "ip", "created_at")
    list_select_related = ("pledge",)
    search_fields = ("=pledge__id", "ip")


@admin.register(FraudAlert)
class FraudAlertAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "campaign", "backer", "probability", "campaign_suspended", "status", "why")
    list_filter = ("status", "campaign_suspended")
    list_select_related = ("campaign", "backer")
    search_fields = ("campaign__title", "backer__username")
    actions = ("dismiss", "confirm")

    def has_decide_permission(self, request) -> bool:
        # Reviewers decide on campaigns, and so on the alerts that may have suspended one.
        return request.user.has_perm("projects.review_campaign") or request.user.has_perm("risk.change_fraudalert")

    def has_view_permission(self, request, obj=None):
        return self.has_decide_permission(request) or super().has_view_permission(request, obj)

    def has_module_permission(self, request):
        return self.has_decide_permission(request) or super().has_module_permission(request)

    @admin.display(description="Reasons")
    def why(self, obj):
        return format_html_join("", "<div>{}</div>", ((reason,) for reason in obj.reasons or ()))

    @admin.action(description="Dismiss selected alerts (legitimate pledges)", permissions=["decide"])
    def dismiss(self, request, queryset):
        return run_service_action(
            modeladmin=self,
            request=request,
            queryset=queryset,
            action="fraud_alert_dismiss",
            title="Dismiss fraud alerts",
            perform=lambda alert, reason: services.risk_fraud_alert_dismiss(
                alert=alert, actor=request.user, reason=reason
            ),
            needs_reason=True,
        )

    @admin.action(description="Confirm selected alerts as fraud", permissions=["decide"])
    def confirm(self, request, queryset):
        return run_service_action(
            modeladmin=self,
            request=request,
            queryset=queryset,
            action="fraud_alert_confirm",
            title="Confirm fraud alerts",
            perform=lambda alert, reason: services.risk_fraud_alert_confirm(
                alert=alert, actor=request.user, reason=reason
            ),
            needs_reason=True,
        )
