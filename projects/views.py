from django.http import Http404
from django.shortcuts import render

from .selectors import campaign_public_get, campaigns_live


def home(request):
    return render(request, "projects/home.html", {"campaigns": campaigns_live()[:60]})


def campaign_detail(request, slug: str):
    campaign = campaign_public_get(slug=slug)
    if campaign is None:
        raise Http404("No such campaign")
    return render(request, "projects/campaign_detail.html", {"campaign": campaign})
