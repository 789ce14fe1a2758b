"""Read-only admin pages for the risk app; decisions on alerts come with the review-queue work."""

from django.contrib import admin

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
    list_display = ("created_at", "campaign", "backer", "probability", "campaign_suspended", "status")
    list_filter = ("status", "campaign_suspended")
    list_select_related = ("campaign", "backer")
    search_fields = ("campaign__title", "backer__username")
