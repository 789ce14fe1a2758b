"""The ledger and payment operations in the operators' console.

Ledger rows can be looked at, never added, changed or deleted, by anyone (superusers included):
corrections are new transactions posted by services. The settlement app adds the verification
page and the lists of unfinished work.
"""

from django.contrib import admin
from django.db.models import Count, Max, Q, Sum

from crowdfund_site.admin_actions import ReadOnlyAdminMixin, ReadOnlyInline
from crowdfund_site.money import format_amount

from .models import GatewayOperation, LedgerAccount, LedgerCheckpoint, LedgerEntry, LedgerTransaction


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("code", "kind", "currency", "balance_display", "entry_count")
    list_filter = ("kind", "currency")
    search_fields = ("code",)
    readonly_fields = ("code", "kind", "currency", "name", "created_at", "balance_display")
    fields = readonly_fields

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(balance=Sum("entries__amount", default=0), n=Count("entries"))

    @admin.display(description="Balance", ordering="balance")
    def balance_display(self, obj):
        return format_amount(obj.balance, obj.currency)

    @admin.display(description="Entries", ordering="n")
    def entry_count(self, obj):
        return obj.n


class EntryInline(ReadOnlyInline):
    model = LedgerEntry
    fields = ("account", "amount", "currency")
    readonly_fields = fields


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "kind", "idempotency_key", "reference", "amount_display", "created_at")
    list_filter = ("kind",)
    search_fields = ("=idempotency_key", "=reference")
    readonly_fields = ("kind", "idempotency_key", "reference", "description", "created_at")
    fields = readonly_fields
    inlines = (EntryInline,)
    show_full_result_count = False

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(moved=Sum("entries__amount", filter=Q(entries__amount__gt=0)), currency=Max("entries__currency"))
        )

    @admin.display(description="Amount moved")
    def amount_display(self, obj):
        return format_amount(obj.moved or 0, obj.currency or "USD")


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "transaction", "account", "amount", "currency")
    list_select_related = ("transaction", "account")
    list_filter = ("currency", "account__kind")
    search_fields = ("=account__code", "=transaction__idempotency_key")
    show_full_result_count = False


@admin.register(GatewayOperation)
class GatewayOperationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("reference", "kind", "status", "amount_display", "error_code", "attempts", "created_at")
    list_filter = ("status", "kind", "error_code")
    search_fields = ("=idempotency_key",)
    show_full_result_count = False

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj):
        return format_amount(obj.amount, obj.currency)


@admin.register(LedgerCheckpoint)
class LedgerCheckpointAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The sealed checkpoints, newest first; ``verify_ledger`` recomputes them."""

    list_display = (
        "sequence",
        "hash",
        "first_transaction_id",
        "last_transaction_id",
        "transaction_count",
        "created_at",
    )
    fields = (
        "sequence",
        "hash",
        "previous_hash",
        "first_transaction_id",
        "last_transaction_id",
        "transaction_count",
        "sealed_total",
        "created_at",
    )
    readonly_fields = fields
    ordering = ("-sequence",)

    def get_queryset(self, request):
        return super().get_queryset(request).defer("digests")
