import pytest
from django.core import mail
from django.urls import reverse

from accounts.tests.factories import UserFactory
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed
from pledges.tests.factories import pledge_held
from projects.models import CampaignUpdate, Comment
from projects.services import campaign_update_create, comment_create
from projects.tests.factories import CampaignFactory, LiveCampaignFactory


@pytest.mark.django_db
def test_only_the_initiator_posts_updates_on_a_launched_campaign(live_campaign):
    with pytest.raises(NotAllowed):
        campaign_update_create(campaign=live_campaign, actor=UserFactory(), title="Hi", body="News")
    with pytest.raises(InvalidInput):
        campaign_update_create(campaign=live_campaign, actor=live_campaign.initiator, title=" ", body="News")
    draft = CampaignFactory()
    with pytest.raises(Conflict):
        campaign_update_create(campaign=draft, actor=draft.initiator, title="Hi", body="News")
    update = campaign_update_create(
        campaign=live_campaign, actor=live_campaign.initiator, title=" Prototype ", body="It works."
    )
    assert (update.title, update.backers_only) == ("Prototype", False)


@pytest.mark.django_db
def test_only_backers_and_the_initiator_comment(live_campaign, backer):
    with pytest.raises(NotAllowed):
        comment_create(campaign=live_campaign, actor=backer, body="Nice")
    pledge_held(campaign=live_campaign, backer=backer)
    comment = comment_create(campaign=live_campaign, actor=backer, body=" Nice ")
    assert comment.body == "Nice"
    comment_create(campaign=live_campaign, actor=live_campaign.initiator, body="Thanks!")
    with pytest.raises(InvalidInput):
        comment_create(campaign=live_campaign, actor=backer, body="x" * 2_001)
    assert Comment.objects.filter(campaign=live_campaign).count() == 2


@pytest.mark.django_db
def test_campaign_page_shows_updates_and_escaped_comments(client, live_campaign, backer):
    pledge_held(campaign=live_campaign, backer=backer)
    campaign_update_create(campaign=live_campaign, actor=live_campaign.initiator, title="Public news", body="Hello all")
    campaign_update_create(
        campaign=live_campaign, actor=live_campaign.initiator, title="Secret news", body="Only you", backers_only=True
    )
    comment_create(campaign=live_campaign, actor=backer, body="<script>alert(1)</script>")

    page = client.get(live_campaign.get_absolute_url()).content.decode()
    assert "Public news" in page
    assert "Hello all" in page
    assert "Secret news" in page
    assert "Only you" not in page
    assert "for backers only" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page
    assert "Log in</a> to comment" in page

    client.force_login(backer)
    page = client.get(live_campaign.get_absolute_url()).content.decode()
    assert "Only you" in page
    assert "Post comment" in page

    client.force_login(UserFactory())
    page = client.get(live_campaign.get_absolute_url()).content.decode()
    assert "Only you" not in page
    assert "Only backers and the initiator can comment." in page


@pytest.mark.django_db
def test_campaign_page_names_the_initiator_and_commenters_by_their_public_names(client):
    initiator = UserFactory(username="ada", display_name="Ada <Lovelace>")
    campaign = LiveCampaignFactory(initiator=initiator, goal=100_000)
    named = pledge_held(campaign=campaign, backer=UserFactory(username="grace", display_name="Grace H.")).backer
    unnamed = pledge_held(campaign=campaign, backer=UserFactory(username="linus", display_name="")).backer
    comment_create(campaign=campaign, actor=named, body="First!")
    comment_create(campaign=campaign, actor=unnamed, body="Second.")
    comment_create(campaign=campaign, actor=initiator, body="Thank you both.")

    page = client.get(campaign.get_absolute_url()).content.decode()

    assert 'by <a href="/accounts/people/ada/"><strong>Ada &lt;Lovelace&gt;</strong></a>' in page
    assert "<strong>Grace H.</strong>" in page
    assert "<strong>linus</strong>" in page  # no display name: the username
    assert '<strong>Ada &lt;Lovelace&gt;</strong> <span class="pill">Initiator</span>' in page
    assert page.index("First!") < page.index("Second.") < page.index("Thank you both.")


@pytest.mark.django_db
def test_comment_form_posts_and_refuses_strangers(client, live_campaign, backer):
    url = reverse("projects:comment_create", kwargs={"slug": live_campaign.slug})
    assert client.get(url).status_code in (302, 405)
    client.force_login(UserFactory())
    response = client.post(url, {"body": "Hello"})
    assert response.status_code == 400
    assert "Only backers and the initiator can comment" in response.content.decode()
    assert not Comment.objects.exists()

    pledge_held(campaign=live_campaign, backer=backer)
    client.force_login(backer)
    assert client.post(url, {"body": ""}).status_code == 400
    response = client.post(url, {"body": "Count me in"})
    assert response.status_code == 302
    assert response["Location"].endswith("#comments")
    assert Comment.objects.get().author == backer


@pytest.mark.django_db
def test_update_form_is_for_the_initiator_only_and_emails_backers(
    client, live_campaign, backer, celery_eager, django_capture_on_commit_callbacks
):
    url = reverse("projects:campaign_update_new", kwargs={"slug": live_campaign.slug})
    client.force_login(UserFactory())
    assert client.get(url).status_code == 404
    assert client.post(url, {"title": "x", "body": "y"}).status_code == 404

    pledge_held(campaign=live_campaign, backer=backer)
    mail.outbox.clear()
    client.force_login(live_campaign.initiator)
    assert client.get(url).status_code == 200
    assert client.post(url, {"title": "", "body": "y"}).status_code == 200  # form errors
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"title": "Shipping & more", "body": "Boxes <ready>.", "backers_only": "on"})
    assert response.status_code == 302
    update = CampaignUpdate.objects.get()
    assert update.backers_only
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [backer.email]
    assert "Shipping & more" in message.subject
    assert "Boxes <ready>." in message.body  # plain text: not HTML-escaped


@pytest.mark.django_db
@pytest.mark.parametrize("logged_in", [False, True])
def test_campaign_page_queries_stay_constant_with_updates_and_comments(
    client, django_assert_max_num_queries, logged_in
):
    campaign = LiveCampaignFactory()
    backers = [UserFactory() for _ in range(3)]
    for user in backers:
        pledge_held(campaign=campaign, backer=user)
    if logged_in:
        client.force_login(backers[0])
    # campaign, rewards, updates, comments, matched by, milestones
    # (+ session, user, backer?, follow and reminder state)
    budget = 6 + (4 if logged_in else 0)
    with django_assert_max_num_queries(budget):
        assert client.get(campaign.get_absolute_url()).status_code == 200
    for i in range(10):
        campaign_update_create(campaign=campaign, actor=campaign.initiator, title=f"U{i}", body="b")
        comment_create(campaign=campaign, actor=backers[i % 3], body=f"c{i}")
    with django_assert_max_num_queries(budget):
        page = client.get(campaign.get_absolute_url()).content.decode()
    assert "U9" in page
    assert "c9" in page
