from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from crowdfund_site.admin_actions import ReadOnlyAdminMixin

from .models import AuditEvent, User


@admin.register(User)
class CrowdfundUserAdmin(UserAdmin):
    fieldsets = (
        *UserAdmin.fieldsets,
        ("Profile", {"fields": ("display_name", "bio", "preferred_language", "email_verified")}),
    )
    list_display = ("username", "email", "display_name", "is_staff", "date_joined")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "actor", "action", "object_type", "object_repr", "outcome", "reason")
    list_filter = ("action", "outcome", "object_type")
    list_select_related = ("actor",)
    search_fields = ("actor__username", "object_repr", "reason", "=object_id")
    date_hierarchy = "created_at"
