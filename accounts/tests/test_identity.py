"""E-mail verification, e-mail and password changes, account deletion, and the creator page."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import AuditEvent, User
from accounts.services import email_verification_send, user_verify_email
from accounts.tests.factories import UserFactory
from crowdfund_site.exceptions import InvalidInput
from pledges.tests.factories import pledge_held
from projects.models import CampaignStatus
from projects.tests.factories import CampaignFactory, LiveCampaignFactory
from risk.services import risk_assess_campaign
from settlement.verification import ledger_verify

PASSWORD = "correct-horse-battery"


def _link(message) -> str:
    return re.search(r"https?://\S+/accounts/verify/\S+/", message.body).group(0)


@pytest.mark.django_db
def test_signup_sends_a_verification_link_that_verifies_the_address(client, settings):
    settings.SITE_URL = "https://crowdfund.example"
    response = client.post(
        reverse("accounts:signup"),
        {
            "username": "ivy",
            "email": "ivy@example.com",
            "display_name": "Ivy",
            "password1": "analytical-engine-1843",
            "password2": "analytical-engine-1843",
        },
    )
    assert response.status_code == 302
    (message,) = mail.outbox
    assert message.to == ["ivy@example.com"]
    link = _link(message)
    assert link.startswith("https://crowdfund.example/accounts/verify/")
    page = client.get(link.removeprefix("https://crowdfund.example"))
    assert page.status_code == 200
    assert "Your e-mail is verified" in page.content.decode()
    assert User.objects.get(username="ivy").email_verified
    # A second click on the same link is harmless.
    assert client.get(link.removeprefix("https://crowdfund.example")).status_code == 200


@pytest.mark.django_db
def test_expired_and_tampered_links_are_refused_with_a_clear_page(client, settings):
    user = UserFactory()
    email_verification_send(user=user)
    path = _link(mail.outbox[0]).split("://", 1)[1].split("/", 1)[1]
    token = path.rstrip("/").rsplit("/", 1)[1]
    settings.EMAIL_VERIFICATION_MAX_AGE_SECONDS = -1  # every link is now older than allowed
    response = client.get(f"/{path}")
    assert response.status_code == 400
    assert "This link has expired" in response.content.decode()
    settings.EMAIL_VERIFICATION_MAX_AGE_SECONDS = 3600
    response = client.get(reverse("accounts:email_verify", kwargs={"token": token[:-2] + "xx"}))
    assert response.status_code == 400
    assert "This link is not valid" in response.content.decode()
    user.refresh_from_db()
    assert not user.email_verified


@pytest.mark.django_db
def test_resend_is_rate_limited(client, settings):
    settings.EMAIL_VERIFICATIONS_PER_USER = 2
    user = UserFactory()
    client.force_login(user)
    url = reverse("accounts:email_verification_resend")
    for _ in range(2):
        assert "We sent a new link" in client.post(url, follow=True).content.decode()
    page = client.post(url, follow=True).content.decode()
    assert "Too many verification e-mails" in page
    assert len(mail.outbox) == 2


@pytest.mark.django_db
def test_changing_the_email_needs_the_password_and_re_verifies(client):
    user = UserFactory(email_verified=True)
    client.force_login(user)
    url = reverse("accounts:email_change")
    response = client.post(url, {"email": "new@example.com", "password": "wrong"})
    assert response.status_code == 400
    assert "That is not your current password." in response.content.decode()
    user.refresh_from_db()
    assert (user.email, user.email_verified) == (f"{user.username}@example.com", True)

    response = client.post(url, {"email": "new@example.com", "password": PASSWORD})
    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.email, user.email_verified) == ("new@example.com", False)
    (message,) = mail.outbox
    assert message.to == ["new@example.com"]
    assert AuditEvent.objects.filter(action="user_change_email", object_id=str(user.pk)).exists()


@pytest.mark.django_db
def test_a_link_sent_to_a_previous_address_stops_working():
    user = UserFactory()
    email_verification_send(user=user)
    token = _link(mail.outbox[0]).rstrip("/").rsplit("/", 1)[1]
    User.objects.filter(pk=user.pk).update(email="other@example.com")
    with pytest.raises(InvalidInput) as refused:
        user_verify_email(token=token)
    assert refused.value.code == "link_invalid"


@pytest.mark.django_db
def test_password_change_checks_the_current_one_through_the_login_policy(client, settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 2
    user = UserFactory()
    client.force_login(user)
    url = reverse("accounts:password_change")
    bad = {"password": "nope", "new_password1": "a-new-long-phrase-42", "new_password2": "a-new-long-phrase-42"}
    for _ in range(2):
        assert "That is not your current password." in client.post(url, bad).content.decode()
    page = client.post(url, {**bad, "password": PASSWORD}).content.decode()
    assert "Too many failed log-in attempts" in page  # the guesses counted like log-in attempts
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


@pytest.mark.django_db
def test_password_change_keeps_the_session_and_refuses_weak_passwords(client):
    user = UserFactory()
    client.force_login(user)
    url = reverse("accounts:password_change")
    weak = client.post(url, {"password": PASSWORD, "new_password1": "12345678", "new_password2": "12345678"})
    assert weak.status_code == 400
    good = {"password": PASSWORD, "new_password1": "a-new-long-phrase-42", "new_password2": "a-new-long-phrase-42"}
    assert client.post(url, good).status_code == 302
    user.refresh_from_db()
    assert user.check_password("a-new-long-phrase-42")
    assert client.get(reverse("accounts:profile")).status_code == 200  # still logged in


@pytest.mark.django_db
def test_account_deletion_anonymises_and_keeps_pledges_and_ledger(client):
    backer = UserFactory(display_name="Bea Backer", bio="I like games.")
    campaign = LiveCampaignFactory()
    pledge = pledge_held(campaign=campaign, backer=backer, amount=5_000)
    client.force_login(backer)
    response = client.post(reverse("accounts:account_delete"), {"password": PASSWORD, "confirm": "on"})
    assert response.status_code == 302
    backer.refresh_from_db()
    assert backer.username == f"deleted-{backer.pk}"
    assert (backer.email, backer.display_name, backer.bio, backer.is_active) == ("", "", "", False)
    assert not backer.has_usable_password()
    pledge.refresh_from_db()
    assert (pledge.backer_id, pledge.status, pledge.amount) == (backer.pk, "held", 5_000)
    assert AuditEvent.objects.filter(action="user_delete", object_id=str(backer.pk)).exists()
    assert not client.login(username=f"deleted-{backer.pk}", password=PASSWORD)
    assert ledger_verify() == []


@pytest.mark.django_db
def test_an_initiator_with_a_running_campaign_cannot_delete_the_account(client):
    campaign = LiveCampaignFactory()
    client.force_login(campaign.initiator)
    response = client.post(reverse("accounts:account_delete"), {"password": PASSWORD, "confirm": "on"})
    assert response.status_code == 400
    assert "You run a campaign that has not finished" in response.content.decode()
    campaign.initiator.refresh_from_db()
    assert campaign.initiator.is_active


@pytest.mark.django_db
def test_verifying_removes_the_unverified_risk_factor_from_campaigns_in_review(
    client, celery_eager, django_capture_on_commit_callbacks
):
    campaign = CampaignFactory(status=CampaignStatus.IN_REVIEW, initiator=UserFactory(email_verified=False))
    first = risk_assess_campaign(campaign=campaign)
    assert first.features["email_verified"] == 0
    email_verification_send(user=campaign.initiator)
    link = _link(mail.outbox[0])
    with django_capture_on_commit_callbacks(execute=True):
        client.get("/" + link.split("://", 1)[1].split("/", 1)[1])
    latest = campaign.risk_assessments.order_by("-created_at", "-id").first()
    assert latest.pk != first.pk
    assert latest.features["email_verified"] == 1
    assert "not verified" not in str(latest.reasons)


@pytest.mark.django_db
def test_creator_page_shows_name_badge_bio_campaigns_and_backed_count(client):
    creator = UserFactory(display_name="Ines Maker", bio="I build synths.", email_verified=True)
    LiveCampaignFactory(initiator=creator, title="Tiny Synth")
    CampaignFactory(initiator=creator, title="Secret draft")
    other = LiveCampaignFactory()
    pledge_held(campaign=other, backer=creator, amount=1_000)
    page = client.get(reverse("accounts:creator", kwargs={"username": creator.username})).content.decode()
    assert "Ines Maker" in page
    assert "Verified" in page
    assert "I build synths." in page
    assert "Tiny Synth" in page
    assert "Secret draft" not in page
    assert "1 project backed" in page
    # The campaign page links to it.
    campaign_page = client.get(other.get_absolute_url()).content.decode()
    assert reverse("accounts:creator", kwargs={"username": other.initiator.username}) in campaign_page


@pytest.mark.django_db
def test_a_deleted_persons_page_is_gone(client):
    user = UserFactory(is_active=False)
    assert client.get(reverse("accounts:creator", kwargs={"username": user.username})).status_code == 404
