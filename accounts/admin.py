from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from .models import User


@admin.register(User)
class CrowdfundUserAdmin(UserAdmin):
    fieldsets = (
        *UserAdmin.fieldsets,
        ("Profile", {"fields": ("display_name", "bio", "preferred_language", "email_verified")}),
    )
    list_display = ("username", "email", "display_name", "is_staff", "date_joined")
