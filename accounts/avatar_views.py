"""The avatar upload on the profile page (the picture is checked by ``accounts.avatars``)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from crowdfund_site.exceptions import ApplicationError

from .avatars import user_avatar_set


@login_required
@require_POST
def avatar_upload(request):
    """Set the signed-in person's avatar; the profile page says what was wrong with a refused file."""
    upload = request.FILES.get("avatar")
    if upload is None:
        messages.error(request, gettext("Choose a picture to upload."))
        return redirect("accounts:profile")
    try:
        user_avatar_set(user=request.user, upload=upload)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, gettext("Your picture is saved."))
    return redirect("accounts:profile")
