"""Admin for loans: read-only rows, and staff decisions through actions that call the services."""

import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from accounts.admin_actions import run_service_action
from accounts.services import audit_record
from crowdfund_site.admin_actions import ReadOnlyAdminMixin, ReadOnlyInline
from crowdfund_site.exceptions import ApplicationError
from crowdfund_site.money import format_amount, parse_amount

from . import services
from .models import (
    Installment,
    LenderDeclaration,
    LenderPayout,
    LenderProfile,
    LendingConsent,
    Loan,
    LoanDueWork,
    LoanLender,
    LoanStatusChange,
    LoanTerms,
    Repayment,
    Withdrawal,
)


class RecoveryForm(forms.Form):
    """Money recovered offline: how much, why, and a key made when the form is shown (a resubmit records it once)."""

    amount = forms.CharField(max_length=40, help_text="In the loan's currency, e.g. 1,250.00.")
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text="Recorded in the audit log, e.g. who collected it.",
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=80)


class InstallmentInline(ReadOnlyInline):
    model = Installment
    fields = ("number", "due_date", "principal", "interest", "fee", "late_fee", "owed", "paid_at")
    readonly_fields = fields


class LoanLenderInline(ReadOnlyInline):
    model = LoanLender
    fields = ("lender", "principal", "principal_received", "income_received")
    readonly_fields = fields


class RepaymentInline(ReadOnlyInline):
    model = Repayment
    fields = ("created_at", "kind", "amount", "fee", "late_fee", "interest", "principal", "actor")
    readonly_fields = fields


class StatusChangeInline(ReadOnlyInline):
    model = LoanStatusChange
    fields = ("created_at", "from_status", "to_status", "actor", "reason")
    readonly_fields = fields


@admin.register(Loan)
class LoanAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "campaign", "borrower", "status", "principal_shown", "outstanding_shown", "created_at")
    list_filter = ("status", "currency", "repayment_type")
    search_fields = ("campaign__title", "borrower__username")
    readonly_fields = [f.name for f in Loan._meta.fields]
    inlines = [InstallmentInline, RepaymentInline, LoanLenderInline, StatusChangeInline]
    actions = ["mark_defaulted", "write_off", "record_recovery"]

    @admin.display(description="Principal")
    def principal_shown(self, loan: Loan) -> str:
        return format_amount(loan.principal, loan.currency)

    @admin.display(description="Outstanding principal")
    def outstanding_shown(self, loan: Loan) -> str:
        return format_amount(loan.outstanding_principal, loan.currency)

    def has_manage_permission(self, request) -> bool:
        return request.user.has_perm("lending.manage_loans")

    @admin.action(description="Mark defaulted (still takes recoveries)", permissions=["manage"])
    def mark_defaulted(self, request, queryset):
        return run_service_action(
            modeladmin=self,
            request=request,
            queryset=queryset,
            action="loan_mark_defaulted",
            title="Mark loans defaulted",
            perform=lambda loan, reason: services.loan_mark_defaulted(loan=loan, actor=request.user, reason=reason),
            needs_reason=True,
        )

    @admin.action(description="Write off", permissions=["manage"])
    def write_off(self, request, queryset):
        return run_service_action(
            modeladmin=self,
            request=request,
            queryset=queryset,
            action="loan_write_off",
            title="Write off loans",
            perform=lambda loan, reason: services.loan_write_off(loan=loan, actor=request.user, reason=reason),
            needs_reason=True,
        )

    @admin.action(description="Record an offline recovery", permissions=["manage"])
    def record_recovery(self, request, queryset):
        """Ask for the amount and reason, then record them through ``loan_recovery_record`` (which audits)."""
        if queryset.count() != 1:
            self.message_user(request, "Record a recovery for one loan at a time.", messages.ERROR)
            return None
        loan = queryset.get()
        form = RecoveryForm(
            request.POST if "apply" in request.POST else None,
            initial={"idempotency_key": f"admin-recovery-{uuid.uuid4().hex}"},
        )
        if form.is_valid():
            try:
                amount = parse_amount(form.cleaned_data["amount"], loan.currency)
                repayment = services.loan_recovery_record(
                    loan=loan,
                    actor=request.user,
                    amount=amount,
                    reason=form.cleaned_data["reason"],
                    idempotency_key=form.cleaned_data["idempotency_key"],
                )
            except ApplicationError as error:
                audit_record(
                    actor=request.user,
                    action="loan_recovery_record",
                    obj=loan,
                    reason=form.cleaned_data["reason"],
                    outcome="refused",
                    details={"code": error.code, "message": error.message},
                )
                form.add_error("amount" if error.field == "amount" else None, error.message)
            else:
                self.message_user(
                    request,
                    f"{loan}: recovery of {format_amount(repayment.amount, loan.currency)} recorded and paid out.",
                    messages.SUCCESS,
                )
                return None
        return TemplateResponse(
            request,
            "admin/action_with_reason.html",
            {
                **self.admin_site.each_context(request),
                "title": "Record an offline recovery",
                "objects": queryset,
                "form": form,
                "action": request.POST.get("action"),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "opts": self.model._meta,
            },
        )


@admin.register(LoanTerms)
class LoanTermsAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("campaign", "rate_bps", "term_months", "repayment_type", "grace_months", "servicing_fee_bps")
    list_filter = ("repayment_type",)


@admin.register(LenderPayout)
class LenderPayoutAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "repayment", "share", "principal", "income")
    list_select_related = ("repayment", "share__lender", "share__loan")


@admin.register(LoanDueWork)
class LoanDueWorkAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Reminders, automatic charges and notices: what beat has done and what is still due."""

    list_display = ("id", "installment", "kind", "attempt", "due_at", "done_at", "last_error")
    list_filter = ("kind", ("done_at", admin.EmptyFieldListFilter))
    list_select_related = ("installment",)


@admin.register(LenderProfile)
class LenderProfileAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("user", "accredited", "knowledge_test_passed_at", "updated_at")
    list_filter = ("accredited",)


@admin.register(LenderDeclaration)
class LenderDeclarationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("user", "currency", "annual_income", "net_worth", "declared_at")
    list_filter = ("currency",)


@admin.register(LendingConsent)
class LendingConsentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("lender", "campaign", "amount", "created_at")


@admin.register(Withdrawal)
class WithdrawalAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "lender", "currency", "amount", "status", "gateway_reference", "created_at")
    list_filter = ("status", "currency")
    search_fields = ("lender__username", "gateway_reference")
    list_select_related = ("lender",)
