"""Staff read the record of web address changes in the admin: listed, searchable by slug, never edited."""

import pytest
from django.urls import reverse

from accounts.tests.factories import FinanceFactory, ReviewerFactory
from projects.tests.factories import LiveCampaignFactory
from promotion.models import CampaignSlugChange
from promotion.services import campaign_slug_change

pytestmark = pytest.mark.django_db


def test_staff_find_a_rename_by_its_old_or_new_slug_and_cannot_change_it(client, staff):
    lamps = LiveCampaignFactory(slug="solar-lamps")
    campaign_slug_change(campaign=lamps, actor=lamps.initiator, slug="solar-lamps-2027")
    kites = LiveCampaignFactory(slug="kites")
    campaign_slug_change(campaign=kites, actor=kites.initiator, slug="kites-for-all")
    change = CampaignSlugChange.objects.get(from_slug="solar-lamps")
    client.force_login(staff)
    changelist = reverse("admin:promotion_campaignslugchange_changelist")

    by_old = client.get(changelist, {"q": "solar-lamps"})
    by_new = client.get(changelist, {"q": "kites-for-all"})

    assert [row.pk for row in by_old.context["cl"].result_list] == [change.pk]
    assert [row.from_slug for row in by_new.context["cl"].result_list] == ["kites"]
    assert client.get(reverse("admin:promotion_campaignslugchange_add")).status_code == 403
    detail = reverse("admin:promotion_campaignslugchange_change", args=[change.pk])
    assert client.get(detail).status_code == 200
    client.post(detail, {"from_slug": "hijacked", "to_slug": "hijacked"})
    delete = client.post(reverse("admin:promotion_campaignslugchange_delete", args=[change.pk]), {"post": "yes"})
    assert delete.status_code == 403
    change.refresh_from_db()
    assert (change.from_slug, change.to_slug) == ("solar-lamps", "solar-lamps-2027")


def test_reviewers_read_the_list_and_finance_does_not(client):
    campaign = LiveCampaignFactory(slug="solar-lamps")
    campaign_slug_change(campaign=campaign, actor=campaign.initiator, slug="solar-lamps-2027")
    changelist = reverse("admin:promotion_campaignslugchange_changelist")
    client.force_login(ReviewerFactory())
    assert [row.to_slug for row in client.get(changelist).context["cl"].result_list] == ["solar-lamps-2027"]
    client.force_login(FinanceFactory())
    assert client.get(changelist).status_code == 403


def test_someone_without_staff_rights_cannot_open_the_list(client, django_user_model):
    user = django_user_model.objects.create_user(username="visitor", password="pw-123456789")
    client.force_login(user)
    response = client.get(reverse("admin:promotion_campaignslugchange_changelist"))
    assert response.status_code == 302  # to the admin's log-in page
