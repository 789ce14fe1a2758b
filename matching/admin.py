"""Matching pools and rounds in the operators' console: read-only rows, moves through services.

Ending, publishing, paying and cancelling a round are actions calling the round services,
which check the state, lock the round and write the audit event.
"""

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.admin_actions import run_service_action
from accounts.services import audit_record
from crowdfund_site.admin_actions import ReadOnlyAdminMixin, ReadOnlyInline
from crowdfund_site.exceptions import ApplicationError
from risk.selectors import pledges_challenge_signals, pledges_fraud_summaries

from .models import Allocation, Pool, Round, RoundExclusion, RoundStatus, RoundStatusChange
from .selectors import review_contributions_of, round_contributions_for_review
from .services import pool_close, round_cancel, round_end, round_exclude_contribution, round_pay, round_publish

# Contributions on one page of a round's challenge screen.
REVIEW_PAGE_SIZE = 200


class RoundInline(ReadOnlyInline):
    model = Round
    fields = ("starts_at", "ends_at", "status", "challenge_ends_at", "paid_at")
    show_change_link = True


@admin.register(Pool)
class PoolAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "sponsor", "mode", "amount", "currency", "funded_at", "starts_at", "ends_at")
    list_filter = ("mode", "currency")
    list_select_related = ("sponsor",)
    search_fields = ("name", "sponsor__username")
    inlines = (RoundInline,)
    actions = ("close",)

    def has_close_permission(self, request):
        return request.user.has_perm("matching.pay_round")

    @admin.action(description="Close the pool and give what is left back to the sponsor", permissions=["close"])
    def close(self, request, queryset):
        return run_service_action(
            modeladmin=self,
            request=request,
            queryset=queryset,
            action="matching_pool_close",
            title="Close pool",
            perform=lambda pool, reason: pool_close(pool=pool, actor=request.user),
            needs_reason=False,
        )


class AllocationInline(ReadOnlyInline):
    model = Allocation
    fields = ("campaign", "amount", "contributions", "backers", "raised", "paid_at", "outcome", "settled_at")


class ExclusionInline(ReadOnlyInline):
    model = RoundExclusion
    fields = ("pledge", "actor", "reason", "created_at")


class StatusChangeInline(ReadOnlyInline):
    model = RoundStatusChange
    fields = ("from_status", "to_status", "actor", "reason", "created_at")


@admin.register(Round)
class RoundAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("__str__", "status", "starts_at", "ends_at", "challenge_ends_at", "paid_at", "contributions_link")
    list_filter = ("status",)
    list_select_related = ("pool",)
    inlines = (AllocationInline, ExclusionInline, StatusChangeInline)
    actions = ("end", "publish", "review_contributions", "pay", "cancel")

    def has_pay_permission(self, request):
        return request.user.has_perm("matching.pay_round")

    def has_exclude_permission(self, request):
        # Finance, who pay rounds, and reviewers, who decide fraud alerts.
        return request.user.has_perm("matching.pay_round") or request.user.has_perm("projects.review_campaign")

    @admin.display(description="Contributions")
    def contributions_link(self, obj):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:matching_round_contributions", args=[obj.pk]),
            "Challenge" if obj.status == RoundStatus.CHALLENGE else "View",
        )

    @admin.action(description="Review and exclude contributions (challenge window)", permissions=["exclude"])
    def review_contributions(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Choose one round to review its contributions.", messages.ERROR)
            return None
        return HttpResponseRedirect(reverse("admin:matching_round_contributions", args=[queryset.get().pk]))

    def get_urls(self):
        view = self.admin_site.admin_view(self.contributions_view)
        return [path("<int:pk>/contributions/", view, name="matching_round_contributions"), *super().get_urls()]

    def contributions_view(self, request, pk: int):
        """A round's contributions beside the risk app's signals; in the challenge window, exclude some with a reason.

        The signals: each pledge's stored fraud check, and the round's patterns (bursts of
        single-campaign backers, new accounts) measured now by ``pledges_challenge_signals``.

        Each selected contribution is excluded by ``round_exclude_contribution`` (staff, reason,
        window, audit and the recomputed allocation are its rules); a refusal is shown with its
        message and recorded here as refused.
        """
        matching_round = get_object_or_404(Round.objects.select_related("pool"), pk=pk)
        if not self.has_exclude_permission(request):
            self.message_user(request, "You cannot review matching contributions.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:matching_round_changelist"))
        here = reverse("admin:matching_round_contributions", args=[pk])
        if request.method == "POST":
            return self._exclude(request, matching_round, here)
        page = Paginator(round_contributions_for_review(matching_round=matching_round), REVIEW_PAGE_SIZE).get_page(
            request.GET.get("page")
        )
        rows = review_contributions_of(matching_round=matching_round, pledges=page.object_list)
        pledge_ids = [row.pledge.pk for row in rows]
        signals = pledges_fraud_summaries(pledge_ids=pledge_ids)
        patterns = pledges_challenge_signals(pledge_ids=pledge_ids, until=matching_round.ends_at)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Contributions of {matching_round}",
            "round": matching_round,
            "in_window": matching_round.status == RoundStatus.CHALLENGE,
            "rows": [(row, signals.get(row.pledge.pk), patterns.get(row.pledge.pk, [])) for row in rows],
            "page": page,
            "allocations": matching_round.allocations.select_related("campaign").order_by("-amount", "campaign_id"),
        }
        return TemplateResponse(request, "admin/matching/round_contributions.html", context)

    def _exclude(self, request, matching_round, here):
        ids = [int(value) for value in request.POST.getlist("pledge") if value.isdigit()]
        reason = request.POST.get("reason", "").strip()
        if not ids:
            self.message_user(request, "Select the contributions to exclude.", messages.ERROR)
            return HttpResponseRedirect(here)
        done = 0
        for pledge in round_contributions_for_review(matching_round=matching_round).filter(pk__in=ids):
            try:
                round_exclude_contribution(
                    matching_round=matching_round, pledge=pledge, actor=request.user, reason=reason
                )
            except ApplicationError as error:
                audit_record(
                    actor=request.user,
                    action="matching_contribution_exclude",
                    obj=matching_round,
                    reason=reason,
                    outcome="refused",
                    details={"pledge": pledge.pk, "code": error.code, "message": error.message},
                )
                self.message_user(request, f"Pledge {pledge.pk}: {error.message}", messages.ERROR)
                if error.code in ("reason_required", "invalid_state", "challenge_window_over", "not_allowed"):
                    break  # the same answer for every other one
                continue
            done += 1
        if done:
            self.message_user(
                request, f"Excluded {done} contribution(s); the allocation was computed again.", messages.SUCCESS
            )
        return HttpResponseRedirect(here)

    def _run(self, request, queryset, *, action, title, perform, needs_reason=False):
        return run_service_action(
            modeladmin=self,
            request=request,
            queryset=queryset,
            action=action,
            title=title,
            perform=perform,
            needs_reason=needs_reason,
        )

    @admin.action(description="End the round and freeze its allocation", permissions=["pay"])
    def end(self, request, queryset):
        return self._run(
            request,
            queryset,
            action="matching_round_end",
            title="End round",
            perform=lambda r, reason: round_end(matching_round=r, actor=request.user),
        )

    @admin.action(description="Publish the results and open the challenge window", permissions=["pay"])
    def publish(self, request, queryset):
        return self._run(
            request,
            queryset,
            action="matching_round_publish",
            title="Publish round",
            perform=lambda r, reason: round_publish(matching_round=r, actor=request.user),
        )

    @admin.action(description="Pay the round into the campaigns' escrow", permissions=["pay"])
    def pay(self, request, queryset):
        return self._run(
            request,
            queryset,
            action="matching_round_pay",
            title="Pay round",
            perform=lambda r, reason: round_pay(matching_round=r, actor=request.user),
        )

    @admin.action(description="Cancel the round (nothing leaves the pool)", permissions=["pay"])
    def cancel(self, request, queryset):
        return self._run(
            request,
            queryset,
            action="matching_round_cancel",
            title="Cancel round",
            perform=lambda r, reason: round_cancel(matching_round=r, actor=request.user, reason=reason),
            needs_reason=True,
        )
