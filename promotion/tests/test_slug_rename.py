"""An initiator renames their campaign's web address: service, page, API, bad input, the 301."""

import pytest

from accounts.models import AuditEvent
from accounts.tests.factories import ReviewerFactory, UserFactory
from crowdfund_site.exceptions import Conflict, InvalidInput
from projects.tests.factories import CampaignFactory, LiveCampaignFactory
from promotion.models import CAMPAIGN_SLUG_CHANGES_MAX
from promotion.services import campaign_slug_change

pytestmark = pytest.mark.django_db


def _rename(campaign, slug: str, actor=None):
    campaign = campaign_slug_change(campaign=campaign, actor=actor or campaign.initiator, slug=slug)
    campaign.refresh_from_db()
    return campaign


# --- Service -------------------------------------------------------------------------------------


def test_a_rename_keeps_the_old_address_answering_301_and_is_audited(client):
    campaign = LiveCampaignFactory(slug="solar-lamps")
    campaign = _rename(campaign, "  solar-lamps-2027 ")
    assert campaign.slug == "solar-lamps-2027"
    assert client.get("/campaigns/solar-lamps/").status_code == 301
    assert client.get("/campaigns/solar-lamps/")["Location"] == "/campaigns/solar-lamps-2027/"
    event = AuditEvent.objects.get(action="campaign_slug_change", object_id=str(campaign.pk))
    assert event.actor == campaign.initiator
    assert event.details == {"from": "solar-lamps", "to": "solar-lamps-2027"}
    change = campaign.slug_changes.get()
    assert (change.from_slug, change.to_slug, change.by_initiator) == ("solar-lamps", "solar-lamps-2027", True)


def test_the_same_slug_again_changes_nothing_and_counts_nothing():
    campaign = LiveCampaignFactory(slug="same")
    _rename(campaign, "same")
    assert not campaign.slug_changes.exists()
    assert not campaign.old_slugs.exists()
    assert not AuditEvent.objects.filter(action="campaign_slug_change").exists()


@pytest.mark.parametrize(
    "slug",
    [
        "ab",  # too short
        "a" * 141,  # too long
        "Upper-Case",
        "two--hyphens",
        "-leading",
        "trailing-",
        "under_score",
        "café",
        "dot.ted",
        "new/../admin",
    ],
)
def test_a_badly_formed_slug_is_refused_with_a_clear_message_and_nothing_changes(slug):
    campaign = LiveCampaignFactory(slug="stays")
    with pytest.raises(InvalidInput) as refused:
        campaign_slug_change(campaign=campaign, actor=campaign.initiator, slug=slug)
    assert refused.value.field == "slug"
    assert "web address" in refused.value.message
    campaign.refresh_from_db()
    assert campaign.slug == "stays"
    assert not campaign.old_slugs.exists()
    assert not campaign.slug_changes.exists()


def test_a_slug_another_campaign_has_or_had_is_refused_by_name():
    LiveCampaignFactory(slug="theirs-now")
    other = LiveCampaignFactory(slug="theirs-before")
    _rename(other, "theirs-after")
    campaign = LiveCampaignFactory(slug="mine")
    for taken in ("theirs-now", "theirs-before"):
        with pytest.raises(Conflict) as refused:
            campaign_slug_change(campaign=campaign, actor=campaign.initiator, slug=taken)
        assert refused.value.code == "slug_taken"
        assert f"“{taken}” is taken" in refused.value.message
    campaign.refresh_from_db()
    assert campaign.slug == "mine"
    assert not campaign.slug_changes.exists()


def test_the_initiator_may_rename_a_few_times_then_is_refused_staff_are_not_counted(client):
    campaign = LiveCampaignFactory(slug="name-0")
    for n in range(1, CAMPAIGN_SLUG_CHANGES_MAX + 1):
        campaign = _rename(campaign, f"name-{n}")
    with pytest.raises(Conflict) as refused:
        campaign_slug_change(campaign=campaign, actor=campaign.initiator, slug="one-too-many")
    assert refused.value.code == "slug_change_limit"
    campaign.refresh_from_db()
    assert campaign.slug == f"name-{CAMPAIGN_SLUG_CHANGES_MAX}"
    # Taking back an own old slug is a rename too (the cap is about renames, not addresses held).
    with pytest.raises(Conflict):
        campaign_slug_change(campaign=campaign, actor=campaign.initiator, slug="name-0")
    # Staff may still fix an address, e.g. one that misleads.
    campaign = _rename(campaign, "fixed-by-staff", actor=ReviewerFactory())
    assert campaign.slug == "fixed-by-staff"
    for n in range(CAMPAIGN_SLUG_CHANGES_MAX + 1):
        response = client.get(f"/campaigns/name-{n}/")
        assert response.status_code == 301
        assert response["Location"] == "/campaigns/fixed-by-staff/"


# --- Page ----------------------------------------------------------------------------------------


def test_the_initiator_renames_from_the_edit_page_and_old_links_lead_to_the_new_address(client):
    campaign = LiveCampaignFactory(slug="first-address")
    client.force_login(campaign.initiator)
    basics = client.get("/campaigns/first-address/edit/basics/").content.decode()
    assert 'href="/campaigns/first-address/web-address/"' in basics
    page = client.get("/campaigns/first-address/web-address/")
    assert page.status_code == 200
    assert f"{CAMPAIGN_SLUG_CHANGES_MAX} changes left" in page.content.decode()
    response = client.post("/campaigns/first-address/web-address/", {"slug": "second-address"}, follow=True)
    assert response.redirect_chain == [("/campaigns/second-address/web-address/", 302)]
    html = response.content.decode()
    assert "The old address /campaigns/first-address/ now leads here." in html
    assert "/campaigns/first-address/</li>" in html
    assert f"{CAMPAIGN_SLUG_CHANGES_MAX - 1} changes left" in html
    old = client.get("/campaigns/first-address/?ref=newsletter")
    assert (old.status_code, old["Location"]) == (301, "/campaigns/second-address/?ref=newsletter")
    assert client.get("/campaigns/second-address/").status_code == 200
    # The edit pages follow too: a bookmark of the old editor leads to the new one.
    assert client.get("/campaigns/first-address/edit/basics/")["Location"] == "/campaigns/second-address/edit/basics/"


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("Not A Slug", "may only use lower-case letters"),
        ("", "has 3 to 140 characters"),
        ("taken-one", "“taken-one” is taken by another campaign"),
    ],
)
def test_a_refused_rename_on_the_page_says_why_and_changes_nothing(client, slug, message):
    LiveCampaignFactory(slug="taken-one")
    campaign = LiveCampaignFactory(slug="keeps")
    client.force_login(campaign.initiator)
    response = client.post("/campaigns/keeps/web-address/", {"slug": slug})
    assert response.status_code == 400
    assert message in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.slug == "keeps"
    assert not campaign.old_slugs.exists()


def test_the_page_is_in_chinese(client):
    campaign = CampaignFactory(slug="draft-address")
    client.force_login(campaign.initiator)
    html = client.get("/campaigns/draft-address/web-address/?hl=zh-hans").content.decode()
    assert "更改网址" in html
    response = client.post("/campaigns/draft-address/web-address/?hl=zh-hans", {"slug": "Bad Slug"})
    assert "网址只能使用" in response.content.decode()


def test_nobody_else_sees_or_uses_the_rename_page(client):
    campaign = LiveCampaignFactory(slug="not-yours")
    client.force_login(UserFactory())
    assert client.get("/campaigns/not-yours/web-address/").status_code == 404
    assert client.post("/campaigns/not-yours/web-address/", {"slug": "taken-over"}).status_code == 404
    client.logout()
    assert client.post("/campaigns/not-yours/web-address/", {"slug": "taken-over"}).status_code == 302  # log in
    campaign.refresh_from_db()
    assert campaign.slug == "not-yours"


# --- API -----------------------------------------------------------------------------------------


def test_the_api_renames_and_reports_old_slugs_and_renames_left(client):
    campaign = LiveCampaignFactory(slug="api-first")
    client.force_login(campaign.initiator)
    url = f"/api/v1/campaigns/{campaign.pk}/slug/"
    response = client.put(url, {"slug": "api-second"}, content_type="application/json")
    assert response.status_code == 200
    assert response.json() == {
        "campaign": campaign.pk,
        "slug": "api-second",
        "old_slugs": ["api-first"],
        "changes_left": CAMPAIGN_SLUG_CHANGES_MAX - 1,
    }
    assert client.get(url).json()["slug"] == "api-second"
    assert client.get("/campaigns/api-first/")["Location"] == "/campaigns/api-second/"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"slug": "Bad Slug"}, 400, "invalid"),
        ({"slug": "x" * 10_000}, 400, "invalid"),
        ({"slug": 12345}, 400, "invalid"),
        ({"slug": "api-fine", "extra": 1}, 400, "invalid"),
        ({"slug": "someone-elses"}, 409, "slug_taken"),
    ],
)
def test_the_api_refuses_bad_input_with_the_error_shape_and_changes_nothing(client, body, status, code):
    LiveCampaignFactory(slug="someone-elses")
    campaign = LiveCampaignFactory(slug="api-keeps")
    client.force_login(campaign.initiator)
    response = client.put(f"/api/v1/campaigns/{campaign.pk}/slug/", body, content_type="application/json")
    assert response.status_code == status
    assert response.json()["code"] == code
    campaign.refresh_from_db()
    assert campaign.slug == "api-keeps"
    assert not campaign.slug_changes.exists()


def test_the_api_answers_404_to_anyone_but_the_initiator(client):
    campaign = LiveCampaignFactory(slug="api-private")
    client.force_login(UserFactory())
    url = f"/api/v1/campaigns/{campaign.pk}/slug/"
    assert client.put(url, {"slug": "taken-over"}, content_type="application/json").status_code == 404
    assert client.get(url).status_code == 404
    campaign.refresh_from_db()
    assert campaign.slug == "api-private"
