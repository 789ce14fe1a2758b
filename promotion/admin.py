"""Operators' console for promotion: the record of campaigns' web address changes, read only.

A rename is made only by ``promotion.services.campaign_slug_change``, which writes its row; staff
look here to answer "where did this old address go?" (a search finds the old slug or the new).
"""

from django.contrib import admin

from crowdfund_site.admin_actions import ReadOnlyAdminMixin

from .models import CampaignSlugChange


@admin.register(CampaignSlugChange)
class CampaignSlugChangeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "campaign", "from_slug", "to_slug", "actor", "by_initiator")
    list_filter = ("by_initiator",)
    list_select_related = ("campaign", "actor")
    search_fields = ("from_slug", "to_slug", "campaign__slug", "campaign__title")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    readonly_fields = ("campaign", "from_slug", "to_slug", "actor", "by_initiator", "created_at")
