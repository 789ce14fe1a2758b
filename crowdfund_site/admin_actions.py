"""Read-only admin building blocks: staff look at rows, and change them only through actions.

Apps' admins (the ledger's too) use these; the actions that call a service and record the
attempt in the audit log are ``accounts.admin_actions``.
"""

from django.contrib import admin


class ReadOnlyAdminMixin:
    """Staff can look but not add, change or delete: writes go through actions and services."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False
