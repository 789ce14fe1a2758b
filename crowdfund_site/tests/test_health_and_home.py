from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from projects.models import CampaignStatus
from projects.tests.factories import CampaignFactory, LiveCampaignFactory


@pytest.mark.django_db
def test_healthz_reports_database_and_broker_reachable(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_healthz_answers_503_when_the_broker_is_unreachable(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["broker"] == "down"
    assert response.json()["database"] == "ok"


@pytest.mark.django_db
def test_home_lists_live_campaigns_only(client):
    live = LiveCampaignFactory(title="Pocket roguelike", goal=10_000, pledged_amount=2_500)
    CampaignFactory(title="Secret draft")
    LiveCampaignFactory(title="Already over", deadline=timezone.now() - timedelta(hours=1))
    LiveCampaignFactory(title="Closed one", status=CampaignStatus.SUCCEEDED)

    page = client.get(reverse("projects:home")).content.decode()

    assert live.title in page
    assert "$25.00" in page
    assert "25% of $100.00" in page
    assert "Secret draft" not in page
    assert "Already over" not in page
    assert "Closed one" not in page


@pytest.mark.django_db
def test_campaign_page_shows_story_and_is_404_for_drafts(client):
    live = LiveCampaignFactory(title="Weather station", description="Built <b>by hand</b>.")
    draft = CampaignFactory()

    page = client.get(live.get_absolute_url())
    assert page.status_code == 200
    assert "Built &lt;b&gt;by hand&lt;/b&gt;." in page.content.decode()  # user content is escaped
    assert client.get(draft.get_absolute_url()).status_code == 404


def test_the_benchmarks_reference_pages_answer(client, django_user_model):
    user = django_user_model.objects.create(username="first")

    assert client.get("/healthz/reference/row").content == f"{user.pk}\n".encode()
    first, copy = client.get("/healthz/reference/copy"), client.get("/healthz/reference/copy")
    assert first.content == copy.content == b"reference\n"
