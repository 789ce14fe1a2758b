"""Admin actions that call a service per object, with an optional reason form.

Each service records its own decision in the audit log (``accounts.services.audit_record``), so
the admin and the API leave the same row. A refusal shows the domain error's message to the
operator, changes nothing for that object and is recorded here (outcome "refused"): the service's
transaction, and anything it wrote, was rolled back with the refusal.
"""

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from crowdfund_site.exceptions import ApplicationError

from .services import audit_events_collect, audit_record


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        required=True,
        help_text="Recorded in the audit log; shown to the initiator or backer where it concerns them.",
    )


def run_service_action(
    *,
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    action: str,
    title: str,
    perform: Callable[[Model, str], object],
    needs_reason: bool,
):
    """Ask for a reason (if needed), then call ``perform(obj, reason)`` for each object.

    A refusal (ApplicationError) is recorded as ``action`` with outcome "refused". A success is
    recorded by the service; one that records nothing itself is recorded here as ``action``, so
    that no staff action goes unrecorded.
    """
    reason = ""
    if needs_reason:
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return TemplateResponse(
                request,
                "admin/action_with_reason.html",
                {
                    **modeladmin.admin_site.each_context(request),
                    "title": title,
                    "objects": queryset,
                    "form": form,
                    "action": request.POST.get("action"),
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                    "opts": modeladmin.model._meta,
                },
            )
        reason = form.cleaned_data["reason"]
    done = 0
    for obj in queryset:
        try:
            with audit_events_collect() as recorded:
                perform(obj, reason)
        except ApplicationError as error:
            audit_record(
                actor=request.user,
                action=action,
                obj=obj,
                reason=reason,
                outcome="refused",
                details={"code": error.code, "message": error.message},
            )
            modeladmin.message_user(request, f"{obj}: {error.message}", messages.ERROR)
            continue
        if not recorded:
            audit_record(actor=request.user, action=action, obj=obj, reason=reason)
        done += 1
    if done:
        modeladmin.message_user(request, f"{title}: done for {done} of {len(queryset)}.", messages.SUCCESS)
    return None
