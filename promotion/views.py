"""Pages of the promotion app: sitemaps, robots.txt, share cards, update pages, the embed
widget and oEmbed, follow / remind / notify buttons, and the initiator's referral report."""

import json
from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language, gettext
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crowdfund_site.exceptions import ApplicationError
from projects.selectors import campaign_of_initiator_get, campaign_page_get

from .cards import share_card_cached
from .charts import referral_chart
from .content import card_content, site_base, time_left_text
from .forms import CampaignSlugForm
from .models import CAMPAIGN_SLUG_CHANGES_MAX, NoticeKind
from .selectors import campaign_old_slugs, campaign_slug_changes_left, referral_links, referral_report
from .services import (
    campaign_slug_change,
    follow_create,
    follow_delete,
    launch_notice_request,
    notice_cancel,
    referral_link_create,
    reminder_request,
)
from .sitemaps import SECTIONS, sitemap_index_lines, sitemap_lines

EMBED_CACHE_SECONDS = 60
EMBED_WIDTH, EMBED_HEIGHT = 360, 440


# --- Search engines --------------------------------------------------------------------------


@require_GET
def sitemap_index(request):
    return StreamingHttpResponse(sitemap_index_lines(base=site_base(request)), content_type="application/xml")


@require_GET
def sitemap_section(request, section: str, number: int):
    found = SECTIONS.get(section)
    if found is None or number < 1 or number > found.files():
        raise Http404("No such sitemap")
    lines = sitemap_lines(section=found, number=number, base=site_base(request))
    return StreamingHttpResponse(lines, content_type="application/xml")


@require_GET
def robots_txt(request):
    lines = [
        "User-agent: *",
        # Creator pages live under /accounts/ and are in the sitemap: the Allow comes first because
        # some crawlers take the first rule that matches (others the longest; both read it right).
        "Allow: /accounts/people/",
        # The pledge form is public (a campaign's rewards and amounts, "log in to pledge"); the
        # backer's own pledges under /pledges/ are not.
        "Allow: /pledges/new/",
        "Disallow: /admin/",
        "Disallow: /api/",
        "Disallow: /accounts/",
        "Disallow: /pledges/",
        "Disallow: /embed/",
        "Disallow: /my-campaigns/",
        "Disallow: /start/",
        f"Sitemap: {site_base(request)}{reverse('promotion:sitemap_index')}",
        "",
    ]
    return HttpResponse("\n".join(lines), content_type="text/plain; charset=utf-8")


def _public_campaign_or_404(slug: str):
    campaign = campaign_page_get(slug=slug, viewer=None)
    if campaign is None:
        raise Http404("No such campaign")
    return campaign


@require_GET
def share_card(request, slug: str):
    """The campaign's 1200 x 630 share picture (JPEG), redrawn when its figures move."""
    picture = share_card_cached(card_content(_public_campaign_or_404(slug)))
    response = HttpResponse(picture, content_type="image/jpeg")
    response["Cache-Control"] = "public, max-age=600"
    return response


@require_GET
def update_detail(request, slug: str, pk: int):
    """One public update on a page of its own (what the sitemap lists for updates)."""
    campaign = _public_campaign_or_404(slug)
    update = get_object_or_404(campaign.updates.filter(backers_only=False), pk=pk)
    return render(request, "promotion/update_detail.html", {"campaign": campaign, "update": update})


# --- Embed ------------------------------------------------------------------------------------


@xframe_options_exempt
@require_GET
def embed(request, slug: str):
    """A small widget other sites may frame: cover, progress, time left and a button.

    The same for everyone, so it is kept EMBED_CACHE_SECONDS per campaign and language.
    """
    key = f"promotion-embed:{slug}:{get_language()}"
    content = cache.get(key)
    if content is None:
        campaign = _public_campaign_or_404(slug)
        content = render_to_string(
            "promotion/embed.html",
            {"campaign": campaign, "time_left": time_left_text(campaign), "site_base": site_base(request)},
            request=None,
        )
        cache.set(key, content, EMBED_CACHE_SECONDS)
    response = HttpResponse(content)
    response["Cache-Control"] = f"public, max-age={EMBED_CACHE_SECONDS}"
    # The site's policy refuses every frame; this page exists to be framed anywhere.
    response["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors *"
    )
    return response


def _json_error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"code": code, "detail": detail}, status=status)


@require_GET
def oembed(request):
    """oEmbed (https://oembed.com) for campaign pages: the widget as a "rich" iframe."""
    url = request.GET.get("url", "")
    if request.GET.get("format", "json") != "json":
        return _json_error(501, "format_not_supported", "Only format=json is supported.")
    if not url or len(url) > 2_000 or not url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}):
        return _json_error(404, "not_found", "Not a campaign page of this site.")
    try:
        match = resolve(urlsplit(url).path)
    except Resolver404:
        match = None
    if match is None or match.view_name != "projects:campaign_detail":
        return _json_error(404, "not_found", "Not a campaign page of this site.")
    campaign = campaign_page_get(slug=match.kwargs["slug"], viewer=None)
    if campaign is None:
        return _json_error(404, "not_found", "Not a campaign page of this site.")
    width, height = EMBED_WIDTH, EMBED_HEIGHT
    for name in ("maxwidth", "maxheight"):
        value = request.GET.get(name, "")
        if value.isdigit() and 0 < int(value) < 10_000:
            width, height = (min(width, int(value)), height) if name == "maxwidth" else (width, min(height, int(value)))
    base = site_base(request)
    src = base + reverse("promotion:embed", kwargs={"slug": campaign.slug})
    html = render_to_string(
        "promotion/_embed_iframe.html", {"src": src, "width": width, "height": height, "campaign": campaign}
    )
    data = {
        "version": "1.0",
        "type": "rich",
        "title": campaign.title,
        "author_name": campaign.initiator.public_name,
        "provider_name": "Crowdfund",
        "provider_url": base + "/",
        "html": html.strip(),
        "width": width,
        "height": height,
        "thumbnail_url": base + reverse("promotion:share_card", kwargs={"slug": campaign.slug}),
        "thumbnail_width": 1200,
        "thumbnail_height": 630,
        "cache_age": EMBED_CACHE_SECONDS,
    }
    response = HttpResponse(json.dumps(data), content_type="application/json")
    response["Cache-Control"] = f"public, max-age={EMBED_CACHE_SECONDS}"
    return response


# --- Follow, remind, notify -------------------------------------------------------------------


def _back_to(request, campaign) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return campaign.get_absolute_url()


@login_required
@require_POST
def follow_toggle(request, slug: str):
    """Follow (or, with ``stop``, stop following) the campaign's creator."""
    campaign = campaign_page_get(slug=slug, viewer=request.user)
    if campaign is None:
        raise Http404("No such campaign")
    creator = campaign.initiator
    try:
        if request.POST.get("stop"):
            follow_delete(follower=request.user, creator=creator)
            messages.success(request, gettext("You no longer follow %(name)s.") % {"name": creator.public_name})
        else:
            follow_create(follower=request.user, creator=creator)
            messages.success(
                request,
                gettext("You follow %(name)s: we will e-mail you when they launch a campaign.")
                % {"name": creator.public_name},
            )
    except ApplicationError as error:
        messages.error(request, error.message)
    return redirect(_back_to(request, campaign))


@login_required
@require_POST
def notice_toggle(request, slug: str, kind: str):
    """Ask for (or, with ``stop``, withdraw) "Remind me" or "Notify me on launch"."""
    if kind not in NoticeKind.values:
        raise Http404("No such notice")
    campaign = campaign_page_get(slug=slug, viewer=request.user)
    if campaign is None:
        raise Http404("No such campaign")
    try:
        if request.POST.get("stop"):
            notice_cancel(user=request.user, campaign=campaign, kind=kind)
            messages.success(request, gettext("Done: we will not e-mail you about it."))
        elif kind == NoticeKind.ENDING:
            reminder_request(user=request.user, campaign=campaign)
            messages.success(request, gettext("We will e-mail you 48 hours before the campaign ends."))
        else:
            launch_notice_request(user=request.user, campaign=campaign)
            messages.success(request, gettext("We will e-mail you when the campaign launches."))
    except ApplicationError as error:
        messages.error(request, error.message)
    return redirect(_back_to(request, campaign))


# --- The initiator's referral report ------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def referral_dashboard(request, slug: str):
    """Tagged links (make one with the form) and clicks, sessions, pledges, drops and amounts per source."""
    campaign = campaign_of_initiator_get(slug=slug, initiator=request.user)
    if campaign is None:
        raise Http404("No such campaign")
    error, status = None, 200
    form_values = {"tag": "", "label": ""}
    if request.method == "POST":
        form_values = {"tag": request.POST.get("tag", "")[:200], "label": request.POST.get("label", "")[:200]}
        try:
            link = referral_link_create(
                campaign=campaign,
                actor=request.user,
                tag=request.POST.get("tag", ""),
                label=request.POST.get("label", ""),
            )
        except ApplicationError as refused:
            error, status = refused, 400
        else:
            messages.success(request, gettext("Link “%(tag)s” made.") % {"tag": link.tag})
            return redirect("promotion:referral_dashboard", slug=campaign.slug)
    report = referral_report(campaign=campaign)
    page_url = site_base(request) + campaign.get_absolute_url()
    context = {
        "campaign": campaign,
        "report": report,
        "links": [(link, f"{page_url}?ref={link.tag}") for link in referral_links(campaign=campaign)],
        "chart": referral_chart(report=report),
        "error": error,
        "form_values": form_values,
    }
    return render(request, "promotion/referral_dashboard.html", context, status=status)


# --- The initiator's web address ---------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def campaign_web_address(request, slug: str):
    """Change the campaign's web address; the old one keeps answering 301 to the new one."""
    campaign = campaign_of_initiator_get(slug=slug, initiator=request.user)
    if campaign is None:
        raise Http404("No such campaign")
    form = CampaignSlugForm(request.POST or None, initial={"slug": campaign.slug})
    status = 200
    if request.method == "POST" and form.is_valid():
        old = campaign.slug
        try:
            campaign = campaign_slug_change(campaign=campaign, actor=request.user, slug=form.cleaned_data["slug"])
        except ApplicationError as error:
            form.add_error("slug", error.message)
            status = 400
        else:
            if campaign.slug != old:
                messages.success(
                    request,
                    gettext("Saved. The old address /campaigns/%(old)s/ now leads here.") % {"old": old},
                )
            return redirect("promotion:campaign_web_address", slug=campaign.slug)
    context = {
        "campaign": campaign,
        "form": form,
        "page_url": site_base(request) + campaign.get_absolute_url(),
        "old_slugs": campaign_old_slugs(campaign=campaign),
        "changes_left": campaign_slug_changes_left(campaign=campaign),
        "changes_max": CAMPAIGN_SLUG_CHANGES_MAX,
    }
    return render(request, "promotion/campaign_web_address.html", context, status=status)
