"""Operators' console for campaigns: the review queue, every campaign, and their history.

Nothing here writes a model directly: decisions and moderation call the services in
``projects.services`` / ``settlement.services``, which record each decision in the audit log;
a refusal is recorded here.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib import admin, messages
from django.core.files.storage import default_storage
from django.db.models import Count, JSONField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince

from accounts.admin_actions import run_service_action
from accounts.services import audit_record
from crowdfund_site.admin_actions import ReadOnlyAdminMixin, ReadOnlyInline
from crowdfund_site.exceptions import ApplicationError
from crowdfund_site.images import rendition_name
from crowdfund_site.money import format_amount
from risk.models import RiskAssessment
from risk.selectors import risk_latest_assessment_for
from settlement.services import campaign_cancel

from . import services
from .milestones.models import Milestone
from .models import (
    AddOn,
    Campaign,
    CampaignReviewQueue,
    CampaignStatus,
    CampaignStatusChange,
    Category,
    Comment,
    RewardTier,
    SilenceReminder,
    SilenceReminderStatus,
    SilentCampaign,
    StretchGoal,
)
from .selectors import campaigns_silent_since


def _thumbnail(descriptor: dict, css_class: str) -> str:
    """Return a stored picture's smallest JPEG as an <img> for admin pages ("" for none)."""
    if not descriptor:
        return ""
    width = min(descriptor["widths"])
    return format_html(
        '<img src="{}" alt="{}" class="{}" width="{}" height="{}" loading="lazy">',
        default_storage.url(rendition_name(descriptor["key"], width, "jpg")),
        descriptor.get("alt", ""),
        css_class,
        width,
        round(descriptor["height"] * width / descriptor["width"]),
    )


@admin.register(Category)
class CategoryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "slug", "live_campaigns")
    search_fields = ("name",)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(live=Count("campaigns", filter=Q(campaigns__status=CampaignStatus.LIVE)))
        )

    @admin.display(description="Live campaigns", ordering="live")
    def live_campaigns(self, obj):
        return obj.live


class RewardTierInline(ReadOnlyInline):
    model = RewardTier
    fields = ("title", "minimum_display", "quantity_limit", "claimed_count", "estimated_delivery")
    readonly_fields = fields

    @admin.display(description="Minimum")
    def minimum_display(self, obj):
        return format_amount(obj.minimum_amount, obj.campaign.currency)


class StatusHistoryInline(ReadOnlyInline):
    model = CampaignStatusChange
    fields = ("created_at", "from_status", "to_status", "actor", "reason")
    readonly_fields = fields
    verbose_name_plural = "Status history"


class MilestoneInline(ReadOnlyInline):
    """The milestone plan, for reviewers at review and Finance after success."""

    model = Milestone
    fields = ("position", "title", "proof_required", "target_date", "share_display", "status", "amount")
    readonly_fields = fields
    verbose_name_plural = "Milestones (staged release)"

    @admin.display(description="share")
    def share_display(self, obj):
        return f"{obj.share_bps / 100:g} %"


class CampaignAdminBase(ReadOnlyAdminMixin, admin.ModelAdmin):
    class Media:
        css = {"all": ["css/admin.css"]}  # a stylesheet, not style attributes: the CSP refuses those

    list_select_related = ("initiator", "category")
    search_fields = ("title", "slug", "initiator__username", "initiator__email")
    inlines = (RewardTierInline, MilestoneInline, StatusHistoryInline)
    readonly_fields = (
        "cover_preview",
        "title",
        "slug",
        "initiator",
        "category",
        "status",
        "funding_model",
        "goal_display",
        "raised_display",
        "backer_count",
        "summary",
        "story",
        "duration_days",
        "submitted_at",
        "launched_at",
        "deadline",
        "reviewed_by",
        "reviewed_at",
        "review_feedback",
        "settlement_outcome",
        "settled_at",
        "pledges_link",
        "gallery_preview",
    )
    fields = readonly_fields

    def view_on_site(self, obj):
        # The admin's preview is the campaign's own page, which shows staff every campaign at
        # every stage (``projects.selectors.campaigns_visible_to``), with a banner saying who
        # else can see it.
        return obj.get_absolute_url()

    def has_change_permission(self, request, obj=None):
        # The change page is the review page; viewing is governed by the view permission.
        return False

    def has_review_permission(self, request):
        return request.user.has_perm("projects.review_campaign")

    def has_suspend_permission(self, request):
        return request.user.has_perm("projects.suspend_campaign")

    def has_cancel_permission(self, request):
        return request.user.has_perm("projects.cancel_campaign")

    @admin.display(description="Cover")
    def cover_thumbnail(self, obj):
        return _thumbnail(obj.cover, "admin-thumb") or "—"

    @admin.display(description="Cover")
    def cover_preview(self, obj):
        return _thumbnail(obj.cover, "admin-cover") or "No cover"

    @admin.display(description="Gallery")
    def gallery_preview(self, obj):
        return format_html_join(" ", "{}", ((_thumbnail(p, "admin-thumb"),) for p in obj.gallery)) or "—"

    @admin.display(description="Goal", ordering="goal")
    def goal_display(self, obj):
        return format_amount(obj.goal, obj.currency)

    @admin.display(description="Raised", ordering="pledged_amount")
    def raised_display(self, obj):
        return f"{format_amount(obj.pledged_amount, obj.currency)} ({obj.percent_funded} %)"

    @admin.display(description="Story")
    def story(self, obj):
        return format_html('<div class="campaign-story">{}</div>', obj.description)

    @admin.display(description="Pledges")
    def pledges_link(self, obj):
        url = reverse("admin:pledges_pledge_changelist") + f"?campaign__id__exact={obj.pk}"
        return format_html('<a href="{}">See this campaign\'s pledges</a>', url)


@admin.register(Campaign)
class CampaignAdmin(CampaignAdminBase):
    list_display = (
        "cover_thumbnail",
        "title",
        "initiator",
        "status",
        "funding_model",
        "category",
        "goal_display",
        "raised_display",
        "backer_count",
        "deadline",
    )
    list_display_links = ("title",)  # the title, not the thumbnail before it, opens the campaign
    list_filter = ("status", "funding_model", "category", ("deadline", admin.DateFieldListFilter))
    date_hierarchy = "created_at"
    actions = ("suspend", "reinstate", "cancel")

    @admin.action(description="Suspend (stop taking pledges)", permissions=["suspend"])
    def suspend(self, request, queryset):
        return run_service_action(
            modeladmin=self,
            request=request,
            queryset=queryset,
            action="campaign_suspend",
            title="Suspend campaigns",
            perform=lambda c, reason: services.campaign_suspend(campaign=c, actor=request.user, reason=reason),
            needs_reason=True,
        )

    @admin.action(description="Reinstate suspended campaigns", permissions=["suspend"])
    def reinstate(self, request, queryset):
        return run_service_action(
            modeladmin=self,
            request=request,
            queryset=queryset,
            action="campaign_reinstate",
            title="Reinstate campaigns",
            perform=lambda c, reason: services.campaign_reinstate(campaign=c, actor=request.user, reason=reason),
            needs_reason=True,
        )

    @admin.action(description="Cancel and refund every backer", permissions=["cancel"])
    def cancel(self, request, queryset):
        return run_service_action(
            modeladmin=self,
            request=request,
            queryset=queryset,
            action="campaign_cancel",
            title="Cancel campaigns",
            perform=lambda c, reason: campaign_cancel(campaign=c, actor=request.user, reason=reason),
            needs_reason=True,
        )


DECISIONS = {
    "approve": ("campaign_approve", "Approved"),
    "request_changes": ("campaign_request_changes", "Changes requested"),
    "reject": ("campaign_reject", "Rejected"),
}


@admin.register(CampaignReviewQueue)
class CampaignReviewQueueAdmin(CampaignAdminBase):
    """Campaigns waiting for a decision, oldest submission first."""

    list_display = (
        "cover_thumbnail",
        "title",
        "initiator",
        "category",
        "funding_model",
        "goal_display",
        # No campaign length here (the review page shows it): with the cover column, the risk
        # columns stay in view at 1280 px.
        "submitted_at",
        "waiting",
        "risk",
        "risk_reasons_display",
    )
    list_display_links = ("title",)
    list_filter = ("funding_model", "category")
    ordering = ("submitted_at", "id")
    change_form_template = "admin/projects/campaign_review.html"
    actions = ("approve",)

    def get_queryset(self, request):
        # The latest risk assessment as two subqueries of the list query: no query per row.
        latest = RiskAssessment.objects.filter(campaign=OuterRef("pk")).order_by("-created_at", "-id")
        return (
            super()
            .get_queryset(request)
            .filter(status=CampaignStatus.IN_REVIEW)
            .annotate(
                risk_probability=Subquery(latest.values("probability")[:1]),
                risk_reasons=Subquery(latest.values("reasons")[:1], output_field=JSONField()),
            )
            # Sorting by risk puts campaigns not scored yet below the lowest risk on every database.
            .annotate(risk_order=Coalesce("risk_probability", Value(-1.0)))
        )

    def has_view_permission(self, request, obj=None):
        return self.has_review_permission(request)

    def has_module_permission(self, request):
        return self.has_review_permission(request)

    @admin.display(description="Waiting", ordering="submitted_at")
    def waiting(self, obj):
        return timesince(obj.submitted_at) if obj.submitted_at else "—"

    @admin.display(description="Risk of failure", ordering="risk_order")
    def risk(self, obj):
        probability = getattr(obj, "risk_probability", None)
        return "not scored yet" if probability is None else f"{probability:.0%}"

    @admin.display(description="Top risk factors")
    def risk_reasons_display(self, obj):
        reasons = getattr(obj, "risk_reasons", None) or []
        return format_html_join("", "<div>{}</div>", ((reason,) for reason in reasons[:3])) or "—"

    @admin.action(description="Approve selected campaigns", permissions=["review"])
    def approve(self, request, queryset):
        return run_service_action(
            modeladmin=self,
            request=request,
            queryset=queryset,
            action="campaign_approve",
            title="Approve campaigns",
            perform=lambda c, reason: services.campaign_approve(campaign=c, reviewer=request.user, note=reason),
            needs_reason=False,
        )

    def get_urls(self):
        decide = self.admin_site.admin_view(self.decide_view)
        return [path("<int:pk>/decide/", decide, name="projects_campaign_decide"), *super().get_urls()]

    def decide_view(self, request, pk: int):
        """Apply the reviewer's decision from the review page (POST only)."""
        campaign = get_object_or_404(Campaign, pk=pk)
        back = reverse("admin:projects_campaignreviewqueue_change", args=[pk])
        if request.method != "POST" or not self.has_review_permission(request):
            self.message_user(request, "You cannot review campaigns.", messages.ERROR)
            return HttpResponseRedirect(back)
        decision = request.POST.get("decision", "")
        reason = request.POST.get("reason", "")
        if decision not in DECISIONS:
            self.message_user(request, "Choose approve, request changes or reject.", messages.ERROR)
            return HttpResponseRedirect(back)
        action, label = DECISIONS[decision]
        try:
            if decision == "approve":
                services.campaign_approve(campaign=campaign, reviewer=request.user, note=reason)
            elif decision == "request_changes":
                services.campaign_request_changes(campaign=campaign, reviewer=request.user, reason=reason)
            else:
                services.campaign_reject(campaign=campaign, reviewer=request.user, reason=reason)
        except ApplicationError as error:
            audit_record(
                actor=request.user,
                action=action,
                obj=campaign,
                reason=reason,
                outcome="refused",
                details={"code": error.code, "message": error.message},
            )
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(back)
        self.message_user(request, f"{label}: {campaign.title}", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:projects_campaignreviewqueue_changelist"))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        campaign = get_object_or_404(Campaign.objects.select_related("initiator"), pk=object_id)
        history = (
            Campaign.objects.filter(initiator_id=campaign.initiator_id)
            .exclude(pk=campaign.pk)
            .order_by("-created_at")
            .values_list("title", "status", "pledged_amount", "goal", "currency")[:20]
        )
        extra_context = {
            **(extra_context or {}),
            "decide_url": reverse("admin:projects_campaign_decide", args=[campaign.pk]),
            "can_review": self.has_review_permission(request),
            "initiator_history": format_html_join(
                "",
                "<li>{} — {} ({} of {})</li>",
                ((t, s, format_amount(p, c), format_amount(g, c)) for t, s, p, g, c in history),
            ),
            "initiator_joined": timesince(campaign.initiator.date_joined, timezone.now()),
            "risk_assessment": risk_latest_assessment_for([campaign.pk]).get(campaign.pk),
        }
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(SilentCampaign)
class SilentCampaignAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Succeeded campaigns with no update for SILENCE_STAFF_LIST_DAYS days, quietest first."""

    list_display = ("title", "initiator", "last_news_at", "silent_for", "reminders_sent", "money_page")
    search_fields = ("title", "initiator__username", "initiator__email")
    list_select_related = ("initiator",)

    def get_queryset(self, request):
        before = timezone.now() - timedelta(days=settings.SILENCE_STAFF_LIST_DAYS)
        sent = SilenceReminder.objects.filter(campaign_id=OuterRef("pk"), status=SilenceReminderStatus.SENT).values(
            "campaign_id"
        )
        reminders = sent.annotate(n=Count("pk")).values("n")
        return (
            campaigns_silent_since(before=before)
            .select_related("initiator")
            .annotate(reminders=Coalesce(Subquery(reminders), Value(0)))
            .order_by("last_news_at", "id")
        )

    @admin.display(description="Last news", ordering="last_news_at")
    def last_news_at(self, obj):
        return obj.last_news_at

    @admin.display(description="Silent for")
    def silent_for(self, obj):
        return timesince(obj.last_news_at, timezone.now())

    @admin.display(description="Reminders sent")
    def reminders_sent(self, obj):
        return obj.reminders

    @admin.display(description="Where the money is")
    def money_page(self, obj):
        return format_html('<a href="{}">{}</a>', reverse("settlement:campaign_money", args=[obj.slug]), "money page")


@admin.register(Comment)
class CommentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Comments, most reported first: staff hide one with an action (audited in ``comment_hide``)."""

    list_display = ("__str__", "body_start", "report_count", "hidden_at", "created_at")
    list_filter = (("hidden_at", admin.EmptyFieldListFilter),)
    list_select_related = ("author", "campaign")
    actions = ["hide"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(reported=Count("reports")).order_by("-reported", "-created_at")

    @admin.display(description="Comment")
    def body_start(self, obj):
        return obj.body[:120]

    @admin.display(description="Reports", ordering="reported")
    def report_count(self, obj):
        return obj.reported

    def has_hide_permission(self, request):
        return request.user.has_perm("projects.change_comment")

    @admin.action(description="Hide selected comments", permissions=["hide"])
    def hide(self, request, queryset):
        return run_service_action(
            modeladmin=self,
            request=request,
            queryset=queryset,
            action="comment_hide",
            title="Hide comments",
            perform=lambda c, reason: services.comment_hide(comment=c, actor=request.user, reason=reason),
            needs_reason=True,
        )


@admin.register(StretchGoal)
class StretchGoalAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Stretch goals, to look at: whether each is unlocked and its e-mail to the backers went."""

    list_display = ("title", "campaign", "amount", "unlocked_at", "email_sent_at", "recipients")
    list_filter = (("unlocked_at", admin.EmptyFieldListFilter), ("email_sent_at", admin.EmptyFieldListFilter))
    list_select_related = ("campaign",)
    search_fields = ("title", "campaign__title")


@admin.register(AddOn)
class AddOnAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Add-ons, to look at: their price, limit and the units pledges took (initiators edit them)."""

    list_display = ("title", "campaign", "price", "quantity_limit", "claimed_count")
    list_select_related = ("campaign",)
    search_fields = ("title", "campaign__title")
