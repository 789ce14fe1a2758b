"""Who sees a campaign: one rule (``campaigns_visible_to``) behind the page, discover, the API and the admin preview.

The case the rule was written for: a campaign that went live and was then suspended. Its
backers have money in it, so they (and its initiator and staff) keep its page, with the
"paused" notice; to everyone else it is a 404 everywhere, as if it were not there.
"""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.tests.factories import ReviewerFactory, StaffFactory, UserFactory
from crowdfund_site.api.testing import api_client, assert_error
from pledges.tests.factories import pledge_held
from projects.models import CampaignStatus
from projects.services import campaign_suspend
from projects.tests.factories import CampaignFactory, LiveCampaignFactory

pytestmark = pytest.mark.django_db

SEES_IT = {"backer": True, "initiator": True, "staff": True, "anonymous": False, "stranger": False}
PAUSED_NOTICE = "Only its backers, its initiator and the platform’s staff can see this page while it is paused."


@pytest.fixture
def suspended(django_capture_on_commit_callbacks):
    """A campaign that went live, took a pledge, and was suspended by a reviewer; with its viewers."""
    campaign = LiveCampaignFactory(title="Suspicious gadget")
    backer = pledge_held(campaign=campaign).backer
    with django_capture_on_commit_callbacks(execute=True):
        campaign_suspend(campaign=campaign, actor=ReviewerFactory(), reason="Reports of a copied design.")
    campaign.refresh_from_db()
    viewers = {
        "anonymous": None,
        "stranger": UserFactory(),
        "backer": backer,
        "initiator": campaign.initiator,
        "staff": ReviewerFactory(),
    }
    return campaign, viewers


def _web(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.parametrize("who", list(SEES_IT))
def test_a_suspended_campaign_page(suspended, who):
    campaign, viewers = suspended
    response = _web(viewers[who]).get(campaign.get_absolute_url())
    if SEES_IT[who]:
        page = response.content.decode()
        assert response.status_code == 200
        assert "Paused" in page
        assert PAUSED_NOTICE in page
        assert "Back this project" not in page
    else:
        assert response.status_code == 404


@pytest.mark.parametrize("who", list(SEES_IT))
def test_a_suspended_campaign_in_the_api_detail_and_list(suspended, who):
    campaign, viewers = suspended
    client = api_client(viewers[who])
    detail = client.get(f"/api/v1/campaigns/{campaign.pk}/")
    listed = {c["id"] for c in client.get("/api/v1/campaigns/").json()["results"]}
    if SEES_IT[who]:
        assert detail.status_code == 200
        assert detail.json()["status"] == CampaignStatus.SUSPENDED
        assert campaign.pk in listed
    else:
        assert_error(detail, 404)
        assert campaign.pk not in listed
    # Its updates and comments follow the campaign.
    updates = client.get(f"/api/v1/campaigns/{campaign.pk}/updates/")
    assert updates.status_code == (200 if SEES_IT[who] else 404)


@pytest.mark.parametrize("who", list(SEES_IT))
def test_discover_lists_a_suspended_campaign_to_nobody(suspended, who):
    campaign, viewers = suspended
    live = LiveCampaignFactory(title="Honest kettle")
    page = _web(viewers[who]).get(reverse("projects:home")).content.decode()
    assert live.title in page
    assert campaign.title not in page


def test_the_pledge_page_of_a_suspended_campaign(suspended):
    campaign, viewers = suspended
    url = reverse("pledges:create", kwargs={"slug": campaign.slug})
    assert _web(viewers["stranger"]).get(url).status_code == 404
    response = _web(viewers["backer"]).get(url)
    assert response.status_code == 200
    assert "This campaign is not taking pledges." in response.content.decode()


def test_the_admin_preview_of_a_suspended_campaign(suspended):
    campaign, viewers = suspended
    staff = _web(viewers["staff"])
    admin_page = staff.get(reverse("admin:projects_campaign_change", args=[campaign.pk]))
    assert admin_page.status_code == 200
    assert f'href="{campaign.get_absolute_url()}"' in admin_page.content.decode()

    preview = staff.get(campaign.get_absolute_url())
    assert preview.status_code == 200
    assert PAUSED_NOTICE in preview.content.decode()
    # The link is only a way to the page: without the rule behind it, nobody else gets there.
    assert _web(viewers["stranger"]).get(campaign.get_absolute_url()).status_code == 404


def test_a_visitors_copy_of_the_page_is_not_served_once_the_campaign_is_suspended(
    settings, django_capture_on_commit_callbacks
):
    settings.PAGE_CACHE_SECONDS = 10
    campaign = LiveCampaignFactory()
    visitor = Client()
    assert visitor.get(campaign.get_absolute_url()).status_code == 200  # a copy is kept for visitors

    with django_capture_on_commit_callbacks(execute=True):
        campaign_suspend(campaign=campaign, actor=ReviewerFactory(), reason="Under review.")

    assert visitor.get(campaign.get_absolute_url()).status_code == 404
    assert_error(api_client().get(f"/api/v1/campaigns/{campaign.pk}/"), 404)


@pytest.mark.parametrize("status", [CampaignStatus.DRAFT, CampaignStatus.IN_REVIEW, CampaignStatus.REJECTED])
def test_staff_preview_a_campaign_before_it_is_public(client, status):
    campaign = CampaignFactory(status=status)
    assert client.get(campaign.get_absolute_url()).status_code == 404
    assert_error(api_client(UserFactory()).get(f"/api/v1/campaigns/{campaign.pk}/"), 404)

    reviewer = ReviewerFactory()
    client.force_login(reviewer)
    page = client.get(campaign.get_absolute_url()).content.decode()
    assert "Staff preview: only its initiator and the platform’s staff can see this page." in page
    assert api_client(reviewer).get(f"/api/v1/campaigns/{campaign.pk}/").status_code == 200


def test_the_review_queue_links_to_the_preview(client):
    campaign = CampaignFactory(status=CampaignStatus.IN_REVIEW)
    client.force_login(ReviewerFactory())
    review = client.get(reverse("admin:projects_campaignreviewqueue_change", args=[campaign.pk])).content.decode()
    assert f'href="{campaign.get_absolute_url()}" class="viewsitelink" id="campaign-preview"' in review
    assert client.get(campaign.get_absolute_url()).status_code == 200


@pytest.mark.parametrize(
    ("factory", "status", "public"),
    [
        (CampaignFactory, CampaignStatus.APPROVED, True),  # upcoming
        (LiveCampaignFactory, CampaignStatus.LIVE, True),
        (LiveCampaignFactory, CampaignStatus.CLOSING, True),
        (LiveCampaignFactory, CampaignStatus.SUCCEEDED, True),
        (LiveCampaignFactory, CampaignStatus.FAILED, True),
        (LiveCampaignFactory, CampaignStatus.CANCELLED, True),  # after launch: its backers were refunded
        (CampaignFactory, CampaignStatus.CANCELLED, False),  # a draft withdrawn before launch
        (LiveCampaignFactory, CampaignStatus.SUSPENDED, False),
        (CampaignFactory, CampaignStatus.SUSPENDED, False),  # suspended during review
        (CampaignFactory, CampaignStatus.DRAFT, False),
        (CampaignFactory, CampaignStatus.IN_REVIEW, False),
        (CampaignFactory, CampaignStatus.CHANGES_REQUESTED, False),
        (CampaignFactory, CampaignStatus.REJECTED, False),
    ],
)
def test_page_and_api_agree_for_everyone_at_every_stage(factory, status, public):
    campaign = factory(status=status)
    initiator, superuser = campaign.initiator, StaffFactory()
    for user, sees in ((None, public), (UserFactory(), public), (initiator, True), (superuser, True)):
        page = _web(user).get(campaign.get_absolute_url())
        api = api_client(user).get(f"/api/v1/campaigns/{campaign.pk}/")
        listed = campaign.pk in {c["id"] for c in api_client(user).get("/api/v1/campaigns/").json()["results"]}
        assert (page.status_code, api.status_code, listed) == ((200, 200, True) if sees else (404, 404, False)), user


@pytest.mark.parametrize("status", CampaignStatus.values)
@pytest.mark.parametrize("launched", [True, False])
def test_one_campaign_and_the_list_answer_the_same_for_every_viewer(status, launched):
    from projects.models import Campaign
    from projects.selectors import campaign_visible_get, campaigns_visible_to

    campaign = LiveCampaignFactory()
    backer = pledge_held(campaign=campaign).backer
    Campaign.objects.filter(pk=campaign.pk).update(
        status=status, launched_at=campaign.launched_at if launched else None
    )
    viewers = [None, UserFactory(), backer, campaign.initiator, ReviewerFactory(), StaffFactory()]
    for user in viewers:
        one = campaign_visible_get(user=user, pk=campaign.pk) is not None
        listed = campaigns_visible_to(user=user).filter(pk=campaign.pk).exists()
        assert one == listed, (status, launched, user)
    suspended_after_launch = status == CampaignStatus.SUSPENDED and launched
    if suspended_after_launch:
        assert campaign_visible_get(user=backer, pk=campaign.pk) is not None
        assert campaign_visible_get(user=viewers[1], pk=campaign.pk) is None
