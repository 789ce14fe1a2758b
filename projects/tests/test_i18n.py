import ast
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import UserFactory
from pledges.tests.factories import pledge_held
from projects.models import CampaignStatus
from projects.tests.factories import CampaignFactory, CategoryFactory, LiveCampaignFactory, RewardTierFactory

PO_FILE = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


@pytest.fixture
def chinese(client):
    """Return the test client with the site switched to Simplified Chinese."""
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    return client


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


def _po_entries(path: Path) -> list[dict]:
    """Return the .po file's entries as {"flags", "msgid", "msgstr": [...]}; obsolete ones (#~) are left out.

    A small parser rather than a dependency: it knows comments, flags, msgid(_plural), msgstr[n]
    and continuation lines, which is all makemessages writes.
    """
    entries, entry, field = [], None, None
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if not line.strip() or line.startswith("#~"):
            if entry is not None:
                entries.append(entry)
            entry, field = None, None
            continue
        if entry is None:
            entry = {"flags": set(), "msgid": "", "msgstr": []}
        if line.startswith("#,"):
            entry["flags"].update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif line.startswith(("msgid ", "msgid_plural ", "msgctxt ")):
            keyword, text = line.split(" ", 1)
            field = keyword
            entry[keyword] = ast.literal_eval(text)
        elif line.startswith("msgstr"):
            keyword, text = line.split(" ", 1)
            field = "msgstr"
            entry["msgstr"].append(ast.literal_eval(text))
        elif line.startswith('"'):
            if field == "msgstr":
                entry["msgstr"][-1] += ast.literal_eval(line)
            else:
                entry[field] += ast.literal_eval(line)
    return entries


def test_every_message_has_a_reviewed_chinese_translation():
    entries = [e for e in _po_entries(PO_FILE) if e["msgid"]]  # the header has an empty msgid
    assert len(entries) > 300
    untranslated = [e["msgid"] for e in entries if not all(e["msgstr"])]
    fuzzy = [e["msgid"] for e in entries if "fuzzy" in e["flags"]]
    assert untranslated == [], "run makemessages and translate these"
    assert fuzzy == [], "check these guessed translations and remove the fuzzy flag"


def test_compiled_catalogue_is_not_older_than_the_po_file():
    mo_file = PO_FILE.with_suffix(".mo")
    assert mo_file.exists()
    assert mo_file.stat().st_mtime >= PO_FILE.stat().st_mtime - 1, "run compilemessages"


@pytest.mark.django_db
def test_discover_page_in_chinese(chinese):
    games = CategoryFactory(name="Games", slug="games")
    LiveCampaignFactory(category=games, backer_count=12, pledged_amount=30_000, goal=40_000)
    page = chinese.get(reverse("projects:home")).content.decode()
    assert "<h1>支持您相信的创意</h1>" in page
    assert "即将截止" in page  # section heading and the sort label
    assert "进行中的项目" in page
    assert "1 个项目" in page
    assert "已筹得 <strong>$300.00</strong>" in page
    assert "达到目标 $400.00 的 75%" in page
    assert "12 位支持者" in page
    assert "全有或全无" in page  # the funding model's label
    assert "完成度最高（占目标的百分比）" in page
    assert ">全部类别<" in page

    page = chinese.get(reverse("projects:home"), {"q": "nothing like it"}).content.decode()
    assert "搜索结果" in page
    assert "没有匹配的进行中项目" in page


@pytest.mark.django_db
def test_campaign_steps_in_chinese_with_form_errors(chinese):
    initiator = UserFactory()
    chinese.force_login(initiator)
    page = chinese.get(reverse("projects:campaign_start")).content.decode()
    assert "<h1>发起项目</h1>" in page
    assert "基本信息" in page
    assert "筹款目标" in page
    assert "保存草稿并继续" in page

    category = CategoryFactory()
    response = chinese.post(
        reverse("projects:campaign_start"),
        {"title": "Tiny Dungeon", "summary": "A pocket roguelike.", "category": category.pk, "currency": "JPY"},
    )
    assert "该字段是必填项。" in response.content.decode()  # Django's own message, in Chinese too
    response = chinese.post(
        reverse("projects:campaign_start"),
        {"title": "T", "summary": "S", "category": category.pk, "currency": "JPY", "goal": "12.5"},
    )
    assert "JPY 金额不能有小数。" in response.content.decode()

    campaign = CampaignFactory(initiator=initiator)
    page = chinese.get(reverse("projects:campaign_edit", args=[campaign.slug, "funding"])).content.decode()
    assert "审核通过后立即上线" in page
    page = chinese.get(reverse("projects:campaign_review", args=[campaign.slug])).content.decode()
    assert "提交审核" in page
    assert "目标：$1,000.00，全有或全无，30 天" in page


@pytest.mark.django_db
def test_my_campaigns_in_chinese_with_status_labels(chinese):
    initiator = UserFactory()
    CampaignFactory(initiator=initiator, status=CampaignStatus.CHANGES_REQUESTED, review_feedback="More photos.")
    chinese.force_login(initiator)
    page = chinese.get(reverse("projects:my_campaigns")).content.decode()
    assert "<h1>我的项目</h1>" in page
    assert "需要修改" in page
    assert "审核员反馈" in page
    assert "$0.00 / $1,000.00" in page


@pytest.mark.django_db
def test_update_emails_go_out_in_each_backers_own_language(
    chinese, live_campaign, celery_eager, django_capture_on_commit_callbacks
):
    pledge_held(campaign=live_campaign, backer=UserFactory(email="mei@example.com", preferred_language="zh-hans"))
    pledge_held(campaign=live_campaign, backer=UserFactory(email="ann@example.com", preferred_language="en"))
    mail.outbox.clear()
    chinese.force_login(live_campaign.initiator)  # the initiator writes from the Chinese pages
    url = reverse("projects:campaign_update_new", kwargs={"slug": live_campaign.slug})
    with django_capture_on_commit_callbacks(execute=True):
        chinese.post(url, {"title": "Shipping", "body": "Boxes are ready."})
    bodies = {message.to[0]: message.body for message in mail.outbox}
    assert f"您支持的项目“{live_campaign.title}”有新动态" in bodies["mei@example.com"]
    assert f"There is news from {live_campaign.title}, a project you back" in bodies["ann@example.com"]


def _pledge_form(**fields) -> dict:
    card = {"card_number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}
    return {**card, "reward": "", "amount": "25.00", "idempotency_key": "form-key-1", **fields}


@pytest.mark.django_db
def test_pledge_flow_in_chinese_with_its_refusals(chinese, live_campaign):
    mug = RewardTierFactory(campaign=live_campaign, title="Mug", minimum_amount=5_000)
    signed = RewardTierFactory(campaign=live_campaign, title="Signed copy", quantity_limit=1)
    pledge_held(campaign=live_campaign, reward=signed)
    chinese.force_login(UserFactory())
    url = reverse("pledges:create", kwargs={"slug": live_campaign.slug})
    page = chinese.get(url).content.decode()
    assert ">确认支持</button>" in page  # the pledge button
    assert "1. 选择回报" in page
    assert "支持金额（USD）" in page

    response = chinese.post(url, _pledge_form(reward=str(mug.pk), amount="10"))
    assert "“Mug”回报需要至少支持 $50.00。" in response.content.decode()
    response = chinese.post(url, _pledge_form(reward=str(signed.pk)))
    assert "“Signed copy”回报已售罄。 请选择其他回报" in response.content.decode()
    response = chinese.post(url, _pledge_form(card_number="4000 0000 0000 0002"))
    assert "您的银行卡被拒绝：银行卡被拒绝。 未扣除任何款项" in response.content.decode()
    response = chinese.post(url, _pledge_form(idempotency_key="form-key-2", expiry="01/20"))
    assert "该银行卡已过期。" in response.content.decode()

    response = chinese.post(
        url, _pledge_form(idempotency_key="form-key-3", reward=str(mug.pk), amount="60"), follow=True
    )
    page = response.content.decode()
    assert f"感谢您支持“{live_campaign.title}”！" in page
    assert "第三方托管中" in page  # the pledge's status
    page = chinese.get(reverse("pledges:list")).content.decode()
    assert "<h1>我的支持</h1>" in page
    assert "管理我的支持" in page


@pytest.mark.django_db
def test_a_closed_campaign_says_so_in_chinese(chinese):
    ended = LiveCampaignFactory(deadline=timezone.now() - timedelta(minutes=1))
    chinese.force_login(UserFactory())
    page = chinese.get(reverse("pledges:create", kwargs={"slug": ended.slug})).content.decode()
    assert "本项目目前不接受支持。" in page
    assert "截止日期已过。" in page


@pytest.mark.django_db
def test_cancel_a_pledge_in_chinese(chinese, live_campaign):
    pledge = pledge_held(campaign=live_campaign, amount=2_500)
    chinese.force_login(pledge.backer)
    url = reverse("pledges:cancel", kwargs={"pk": pledge.pk})
    assert "要取消支持吗？" in chinese.get(url).content.decode()
    page = chinese.post(url, follow=True).content.decode()
    assert f"您对“{live_campaign.title}”的 $25.00 支持已取消" in page
    assert "已取消并退款" in page


@pytest.mark.django_db
def test_initiator_dashboard_in_chinese(chinese, live_campaign):
    pledge_held(campaign=live_campaign, amount=9_500)
    chinese.force_login(live_campaign.initiator)
    page = chinese.get(reverse("dashboard:campaign_dashboard", kwargs={"slug": live_campaign.slug})).content.decode()
    assert "支持金额走势" in page
    assert "下载 CSV" in page
    assert "取消项目" in page
    assert "已筹得 $95.00，目标 $1,000.00" in page  # the chart's description
    launched = timezone.localtime(live_campaign.launched_at)
    assert f"{launched.month}月{launched.day}日</text>" in page  # the chart's first date


@pytest.mark.django_db
def test_dates_are_written_the_way_each_language_writes_them(client, chinese):
    deadline = timezone.now().replace(year=timezone.now().year + 1, month=3, day=7, hour=12, minute=30)
    campaign = LiveCampaignFactory(deadline=deadline)
    RewardTierFactory(campaign=campaign, estimated_delivery=deadline.date())

    chinese_page = chinese.get(campaign.get_absolute_url()).content.decode()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    english_page = client.get(campaign.get_absolute_url()).content.decode()

    year = deadline.year
    assert f"7 March {year}, 12:30 UTC" in english_page
    assert f"Estimated delivery March {year}" in english_page
    assert f"{year}年3月7日 12:30 UTC" in chinese_page
    assert f"{year}年3月" in chinese_page
    assert "March" not in chinese_page


@pytest.mark.django_db
def test_recommendation_reasons_in_chinese(chinese):
    games = CategoryFactory(name="Games", slug="games")
    backer = UserFactory()
    for _ in range(2):
        pledge_held(campaign=LiveCampaignFactory(category=games), backer=backer)
    LiveCampaignFactory(category=games, title="Another game")
    chinese.force_login(backer)

    page = chinese.get("/").content.decode()

    # The platform's own categories are named in the reader's language too.
    assert "因为您支持过 2 个游戏类项目" in page
    assert '<span class="tag">游戏</span>' in page


@pytest.mark.django_db
def test_a_refused_step_is_explained_in_chinese(chinese):
    campaign = LiveCampaignFactory()
    chinese.force_login(campaign.initiator)
    campaign.initiator.preferred_language = "zh-hans"
    campaign.initiator.save(update_fields=["preferred_language"])

    launch = reverse("projects:campaign_launch", kwargs={"slug": campaign.slug})
    page = chinese.post(launch, follow=True).content.decode()

    assert "本项目当前状态为“进行中”，无法上线。" in page
