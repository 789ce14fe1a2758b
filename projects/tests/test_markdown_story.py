"""Stories, FAQ and risks in Markdown: what the page shows, what it never shows, and the preview."""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from accounts.tests.factories import UserFactory
from crowdfund_site.exceptions import InvalidInput
from projects.markdown import markdown_render
from projects.models import Campaign, CampaignStatus
from projects.services import campaign_submit_for_review, campaign_update
from projects.tests.factories import CampaignFactory, LiveCampaignFactory

HOSTILE = (
    "<script>alert(1)</script>\n\n"
    "[click](javascript:alert(1)) [data](data:text/html;base64,PHNjcmlwdD4=)\n\n"
    '<img src=x onerror="alert(1)"> <iframe src="https://evil.example"></iframe>\n\n'
    "![tracker](https://evil.example/pixel.gif) ![other host](//evil.example/media/x.png)\n\n"
    '<a href="https://evil.example" onclick="steal()">raw link</a> <style>body{display:none}</style>'
)


class _Elements(HTMLParser):
    """The elements and attributes a browser would build from some HTML (text is not counted)."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: list[tuple[str, str, str]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes += [(tag, name, value or "") for name, value in attrs]


def assert_harmless(html: str) -> None:
    elements = _Elements(html)
    assert elements.tags <= {"p", "br", "h3", "h4", "h5", "h6", "ul", "ol", "li", "em", "strong", "a", "img"}
    for tag, name, value in elements.attributes:
        assert name in {"href", "title", "src", "alt", "rel", "start"}, (tag, name)
        if name in ("href", "src"):
            assert value.startswith(("https://", "http://", "mailto:", "/media/")), value
            assert "evil" not in value, value


def test_markdown_keeps_headings_lists_emphasis_links_and_our_images():
    html = markdown_render(
        "# About us\n\nWe make *small* **games**.\n\n- tiles\n- heroes\n\n"
        "[Our site](https://tiny.example) ![The box](/media/campaigns/box.jpg)"
    )
    assert "<h3>About us</h3>" in html  # below the page's h1 title and h2 sections
    assert "<em>small</em>" in html
    assert "<strong>games</strong>" in html
    assert "<ul>\n<li>tiles</li>" in html
    assert '<a href="https://tiny.example" rel="nofollow ugc noopener">Our site</a>' in html
    assert '<img src="/media/campaigns/box.jpg" alt="The box">' in html


def test_markdown_drops_scripts_script_links_raw_html_and_foreign_images():
    html = markdown_render(HOSTILE)
    # What is left of them is text: no element, attribute or address a browser would act on.
    assert_harmless(html)
    # Raw HTML is shown as text, not dropped silently, so the initiator sees what happened.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # A foreign image is its alt text.
    assert "tracker" in html
    assert "<img" not in html


@pytest.mark.parametrize("text", ["", "   ", "\x00", "[" * 5000, "*" * 10_000, "<" * 3000, "# " * 2000])
def test_markdown_never_raises(text):
    assert isinstance(markdown_render(text), str)


@pytest.mark.django_db
def test_the_html_is_rendered_on_save_and_the_page_shows_it_without_rendering():
    campaign = CampaignFactory()
    campaign_update(
        campaign=campaign,
        actor=campaign.initiator,
        description="## Why\n\nBecause **dice**.",
        faq="**When?** In March.",
        risks="The printer *could* be late.",
    )
    campaign.refresh_from_db()
    assert campaign.description_html == "<h4>Why</h4>\n<p>Because <strong>dice</strong>.</p>"
    assert campaign.faq_html == "<p><strong>When?</strong> In March.</p>"
    assert campaign.risks_html == "<p>The printer <em>could</em> be late.</p>"


@pytest.mark.django_db
def test_campaign_page_shows_story_faq_and_risks_safely(client):
    campaign = LiveCampaignFactory(description=HOSTILE + "\n\nWe make **games**.", faq="Ask us.", risks="Late *maybe*.")
    Campaign.objects.filter(pk=campaign.pk).update(
        description_html=markdown_render(campaign.description),
        faq_html=markdown_render(campaign.faq),
        risks_html=markdown_render(campaign.risks),
    )
    page = client.get(campaign.get_absolute_url()).content.decode()
    assert "<strong>games</strong>" in page
    assert "Questions and answers" in page
    assert "Ask us." in page
    assert "Risks and challenges" in page
    assert "Late <em>maybe</em>." in page
    story = page.split('id="story-title"')[1].split("</section>")[0]
    assert_harmless(story.split('<div class="story">', 1)[1].rsplit("</div>", 1)[0])


@pytest.mark.django_db
def test_campaign_page_renders_no_markdown_per_request(client, monkeypatch):
    campaign = LiveCampaignFactory(description="Plain *story*.")
    calls = []
    monkeypatch.setattr("projects.markdown._MARKDOWN.render", lambda text: calls.append(text) or "")
    assert client.get(campaign.get_absolute_url()).status_code == 200
    assert calls == []


@pytest.mark.django_db
def test_a_campaign_without_risks_cannot_be_submitted():
    campaign = CampaignFactory(risks="")
    with pytest.raises(InvalidInput) as refused:
        campaign_submit_for_review(campaign=campaign, actor=campaign.initiator)
    assert refused.value.field == "risks"
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT


@pytest.mark.django_db
def test_preview_endpoint_renders_what_was_typed_and_saves_nothing(client):
    campaign = CampaignFactory()
    client.force_login(campaign.initiator)
    url = reverse("projects:campaign_story_preview", kwargs={"slug": campaign.slug})
    response = client.post(url, {"description": "# Hello\n\n<script>x()</script>", "risks": "- one"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "<h3>Hello</h3>" in body
    assert "<li>one</li>" in body
    assert "<script>x()" not in body
    campaign.refresh_from_db()
    assert campaign.description == "The whole story of the thing, and why it matters."


@pytest.mark.django_db
def test_preview_button_without_javascript_shows_the_preview_on_the_form(client):
    campaign = CampaignFactory()
    client.force_login(campaign.initiator)
    url = reverse("projects:campaign_edit", kwargs={"slug": campaign.slug, "step": "story"})
    response = client.post(url, {"description": "Some **bold** text", "risks": "", "preview": "1"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "<strong>bold</strong>" in body
    assert "Some **bold** text" in body
    campaign.refresh_from_db()
    assert "bold" not in campaign.description


@pytest.mark.django_db
def test_preview_is_only_for_the_initiator(client):
    campaign = CampaignFactory()
    client.force_login(UserFactory())
    url = reverse("projects:campaign_story_preview", kwargs={"slug": campaign.slug})
    assert client.post(url, {"description": "x"}).status_code == 404


@pytest.mark.django_db
def test_api_takes_markdown_and_answers_with_sanitised_html(client):
    campaign = CampaignFactory()
    client.force_login(campaign.initiator)
    response = client.patch(
        f"/api/v1/campaigns/{campaign.pk}/",
        {"description": "[x](javascript:alert(1)) **ok**", "risks": "Late."},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["description_html"] == "<p>[x](javascript:alert(1)) <strong>ok</strong></p>"
    assert data["risks_html"] == "<p>Late.</p>"
