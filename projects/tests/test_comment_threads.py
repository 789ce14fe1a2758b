"""Comments with one level of replies, the initiator's marked, reported, hidden (audited), paginated."""

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.tests.factories import StaffFactory, UserFactory
from crowdfund_site.exceptions import InvalidInput, NotAllowed
from pledges.tests.factories import pledge_held
from projects.models import Comment, CommentReport
from projects.services import comment_create, comment_hide, comment_report
from projects.tests.factories import LiveCampaignFactory


@pytest.fixture
def campaign_with_backer():
    campaign = LiveCampaignFactory()
    backer = pledge_held(campaign=campaign, backer=UserFactory(display_name="Bea")).backer
    return campaign, backer


@pytest.mark.django_db
def test_replies_go_one_level_deep(campaign_with_backer):
    campaign, backer = campaign_with_backer
    question = comment_create(campaign=campaign, actor=backer, body="When does it ship?")
    answer = comment_create(campaign=campaign, actor=campaign.initiator, body="In March.", parent=question)
    assert answer.parent_id == question.pk
    with pytest.raises(InvalidInput) as refused:
        comment_create(campaign=campaign, actor=backer, body="Thanks", parent=answer)
    assert refused.value.code == "invalid_parent"


@pytest.mark.django_db
def test_report_is_once_per_person_and_hide_is_for_initiator_or_staff_and_audited(campaign_with_backer):
    campaign, backer = campaign_with_backer
    comment = comment_create(campaign=campaign, actor=backer, body="Buy my stuff at spam.example")
    reporter = UserFactory()
    first = comment_report(comment=comment, actor=reporter, reason="spam")
    assert comment_report(comment=comment, actor=reporter, reason="spam again").pk == first.pk
    assert CommentReport.objects.count() == 1
    with pytest.raises(NotAllowed):
        comment_hide(comment=comment, actor=backer)
    comment_hide(comment=comment, actor=campaign.initiator, reason="spam")
    comment.refresh_from_db()
    assert comment.hidden_by_id == campaign.initiator_id
    event = AuditEvent.objects.get(action="comment_hide")
    assert (event.actor_id, event.reason) == (campaign.initiator_id, "spam")
    other = comment_create(campaign=campaign, actor=backer, body="Rude words")
    comment_hide(comment=other, actor=StaffFactory())
    assert Comment.objects.filter(hidden_at__isnull=False).count() == 2


@pytest.mark.django_db
def test_comment_page_shows_threads_marks_the_initiator_and_hides_hidden_text(client, campaign_with_backer):
    campaign, backer = campaign_with_backer
    question = comment_create(campaign=campaign, actor=backer, body="When does it ship?")
    comment_create(campaign=campaign, actor=campaign.initiator, body="In March.", parent=question)
    hidden = comment_create(campaign=campaign, actor=backer, body="Something rude")
    comment_hide(comment=hidden, actor=campaign.initiator)
    client.force_login(backer)
    page = client.get(reverse("projects:comment_list", kwargs={"slug": campaign.slug})).content.decode()
    assert page.index("When does it ship?") < page.index("In March.")
    assert 'class="comment comment-reply"' in page
    assert "Initiator</span>" in page
    assert "Something rude" not in page
    assert "This comment was hidden." in page
    assert "Something rude" not in client.get(campaign.get_absolute_url()).content.decode()


@pytest.mark.django_db
def test_reply_report_and_hide_through_the_pages(client, campaign_with_backer):
    campaign, backer = campaign_with_backer
    question = comment_create(campaign=campaign, actor=backer, body="Colours?")
    client.force_login(campaign.initiator)
    url = reverse("projects:comment_create", kwargs={"slug": campaign.slug})
    assert client.post(url, {"body": "Red and blue.", "parent": question.pk}).status_code == 302
    assert question.replies.get().body == "Red and blue."
    assert client.post(url, {"body": "x", "parent": 999_999}).status_code == 400
    hide = reverse("projects:comment_hide", kwargs={"slug": campaign.slug, "comment_id": question.pk})
    assert client.post(hide).status_code == 302
    question.refresh_from_db()
    assert question.hidden_at is not None
    client.force_login(UserFactory())
    report = reverse("projects:comment_report", kwargs={"slug": campaign.slug, "comment_id": question.pk})
    assert client.post(report, {"reason": "x" * 501}).status_code == 302
    assert not CommentReport.objects.exists()
    assert client.post(report, {"reason": "off topic"}).status_code == 302
    assert CommentReport.objects.get().reason == "off topic"


@pytest.mark.django_db
def test_threads_are_paginated_20_a_page_in_a_few_queries(client, campaign_with_backer, django_assert_max_num_queries):
    campaign, backer = campaign_with_backer
    for n in range(25):
        thread = comment_create(campaign=campaign, actor=backer, body=f"Thread {n}")
        comment_create(campaign=campaign, actor=campaign.initiator, body=f"Reply {n}", parent=thread)
    url = reverse("projects:comment_list", kwargs={"slug": campaign.slug})
    with django_assert_max_num_queries(6):
        first = client.get(url).content.decode()
    assert "Thread 19<" in first.replace("</div>", "<")
    assert "Thread 20" not in first
    second = client.get(url + "?page=2").content.decode()
    assert "Thread 24" in second
    assert "Reply 24" in second
