"""The initiator's "Pictures" step: the cover, the gallery, and a picture for each reward."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods, require_POST

from crowdfund_site.exceptions import ApplicationError
from crowdfund_site.images import MAX_UPLOAD_BYTES

from .forms import PictureForm
from .media import campaign_cover_set, campaign_gallery_add, campaign_gallery_remove, picture_token, reward_image_set
from .models import GALLERY_MAX_IMAGES
from .views import _apply_error, _initiator_campaign_or_404, _step_context


def _pictures_page(request, campaign, *, cover_form=None, gallery_form=None, status=200):
    gallery = [{"token": picture_token(item), "image": item} for item in campaign.gallery]
    context = _step_context(
        campaign,
        "pictures",
        cover_form=cover_form or PictureForm(prefix="cover"),
        gallery_form=gallery_form or PictureForm(prefix="gallery"),
        gallery=gallery,
        gallery_full=len(gallery) >= GALLERY_MAX_IMAGES,
        gallery_limit=GALLERY_MAX_IMAGES,
        upload_limit_mb=MAX_UPLOAD_BYTES // 1024 // 1024,
    )
    return render(request, "projects/campaign_pictures.html", context, status=status)


def _upload(request, campaign, prefix: str, store):
    """Validate the form, call ``store(upload, alt)``; return the form with errors, or None when stored."""
    form = PictureForm(request.POST, request.FILES, prefix=prefix)
    if form.is_valid():
        try:
            store(form.cleaned_data["image"], form.cleaned_data["alt"])
        except ApplicationError as error:
            form.add_error("image" if error.field not in form.fields else error.field, error.message)
        else:
            return None
    return form


@login_required
@require_http_methods(["GET"])
def campaign_pictures(request, slug: str):
    """The step's page: the cover and the gallery, each with its upload form."""
    return _pictures_page(request, _initiator_campaign_or_404(request, slug))


@login_required
@require_POST
def campaign_cover_upload(request, slug: str):
    campaign = _initiator_campaign_or_404(request, slug)
    form = _upload(
        request,
        campaign,
        "cover",
        lambda upload, alt: campaign_cover_set(campaign=campaign, actor=request.user, upload=upload, alt=alt),
    )
    if form is not None:
        return _pictures_page(request, campaign, cover_form=form, status=400)
    messages.success(request, gettext("Cover saved."))
    return redirect("projects:campaign_pictures", slug=campaign.slug)


@login_required
@require_POST
def campaign_gallery_upload(request, slug: str):
    campaign = _initiator_campaign_or_404(request, slug)
    form = _upload(
        request,
        campaign,
        "gallery",
        lambda upload, alt: campaign_gallery_add(campaign=campaign, actor=request.user, upload=upload, alt=alt),
    )
    if form is not None:
        return _pictures_page(request, campaign, gallery_form=form, status=400)
    messages.success(request, gettext("Picture added to the gallery."))
    return redirect("projects:campaign_pictures", slug=campaign.slug)


@login_required
@require_POST
def campaign_gallery_delete(request, slug: str, token: str):
    campaign = _initiator_campaign_or_404(request, slug)
    try:
        campaign_gallery_remove(campaign=campaign, actor=request.user, token=token)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, gettext("Picture removed from the gallery."))
    return redirect("projects:campaign_pictures", slug=campaign.slug)


@login_required
@require_POST
def reward_image_upload(request, slug: str, reward_id: int):
    campaign = _initiator_campaign_or_404(request, slug)
    reward = next((r for r in campaign.rewards.all() if r.pk == reward_id), None)
    if reward is None:
        raise Http404("No such reward")
    form = PictureForm(request.POST, request.FILES, prefix=f"reward-{reward.pk}")
    if form.is_valid():
        try:
            reward_image_set(
                reward=reward, actor=request.user, upload=form.cleaned_data["image"], alt=form.cleaned_data["alt"]
            )
        except ApplicationError as error:
            _apply_error(form, error)
    if form.errors:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, f"{reward.title}: {error}")
    else:
        messages.success(request, gettext("Picture saved for “%(title)s”.") % {"title": reward.title})
    return redirect("projects:campaign_rewards", slug=campaign.slug)
