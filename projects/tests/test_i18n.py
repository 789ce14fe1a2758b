import pytest
from django.core import mail
from django.urls import reverse

from accounts.tests.factories import UserFactory
from pledges.tests.factories import pledge_held
from projects.models import CampaignStatus
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory


@pytest.mark.django_db
def test_language_switcher_shows_the_campaign_page_in_chinese_with_the_campaigns_money(client):
    campaign = LiveCampaignFactory(currency="JPY", goal=500_000, title="Tea <kettle>")
    RewardTierFactory(campaign=campaign, minimum_amount=3_000)
    page = client.get(campaign.get_absolute_url()).content.decode()
    assert "Back this project" in page
    assert 'action="/i18n/setlang/"' in page

    response = client.post(reverse("set_language"), {"language": "zh-hans", "next": campaign.get_absolute_url()})
    assert response.status_code == 302
    page = client.get(campaign.get_absolute_url()).content.decode()
    assert '<html lang="zh-hans">' in page
    assert "支持此项目" in page
    assert "剩余" in page
    assert "已筹得，目标 ¥500,000" in page  # yen has no decimals
    assert "¥3,000 及以上" in page
    assert "Tea &lt;kettle&gt;" in page  # user content is escaped, not translated


@pytest.mark.django_db
def test_state_banner_plural_in_chinese(client):
    campaign = LiveCampaignFactory(status=CampaignStatus.SUCCEEDED, backer_count=3, pledged_amount=150_000)
    client.cookies["django_language"] = "zh-hans"
    page = client.get(campaign.get_absolute_url()).content.decode()
    assert "众筹成功！" in page
    assert "3 位支持者共支持 $1,500.00" in page


@pytest.mark.django_db
def test_receipt_email_in_the_backers_language(live_campaign, celery_eager, django_capture_on_commit_callbacks):
    backer = UserFactory(preferred_language="zh-hans")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        pledge_held(campaign=live_campaign, backer=backer, amount=2_500)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == f"您对“{live_campaign.title}”的支持"
    assert "您支持的 $25.00 已由第三方托管" in mail.outbox[0].body
