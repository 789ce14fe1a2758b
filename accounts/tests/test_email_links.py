"""Every link in an e-mail starts with SITE_URL, whatever host the request came in on."""

import pytest
from django.core import mail
from django.urls import reverse

from accounts.tests.factories import UserFactory


@pytest.mark.django_db
def test_password_reset_link_uses_site_url(client, settings):
    settings.SITE_URL = "https://crowdfund.example/"
    UserFactory(email="ada@example.com")
    response = client.post(reverse("accounts:password_reset"), {"email": "ada@example.com"}, HTTP_HOST="testserver")
    assert response.status_code == 302
    (message,) = mail.outbox
    assert "https://crowdfund.example/accounts/password-reset/" in message.body
    assert "testserver" not in message.body
