import re

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from accounts.tests.factories import UserFactory

PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.mark.django_db
def test_sign_up_creates_the_account_and_logs_in(client):
    response = client.post(
        reverse("accounts:signup"),
        {
            "username": "ada",
            "email": "ada@example.com",
            "display_name": "Ada L.",
            "password1": "analytical-engine-1843",
            "password2": "analytical-engine-1843",
            "next": "/pledges/",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/pledges/"
    user = get_user_model().objects.get(username="ada")
    assert user.check_password("analytical-engine-1843")
    assert user.display_name == "Ada L."
    assert client.get(reverse("pledges:list")).status_code == 200


@pytest.mark.django_db
def test_sign_up_refuses_taken_names_weak_and_mismatched_passwords(client):
    UserFactory(username="grace", email="grace@example.com")
    response = client.post(
        reverse("accounts:signup"),
        {"username": "Grace", "email": "GRACE@example.com", "password1": "12345678", "password2": "12345679"},
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert "That username is taken." in form.errors["username"]
    assert "already exists" in form.errors["email"][0]
    assert form.errors["password2"] == ["The two passwords differ."]

    response = client.post(
        reverse("accounts:signup"),
        {"username": "newbie", "email": "n@example.com", "password1": "12345678", "password2": "12345678"},
    )
    assert "password1" in response.context["form"].errors
    assert not get_user_model().objects.filter(username="newbie").exists()


@pytest.mark.django_db
def test_sign_up_ignores_an_offsite_next(client):
    response = client.post(
        reverse("accounts:signup"),
        {
            "username": "eve",
            "email": "eve@example.com",
            "password1": "analytical-engine-1843",
            "password2": "analytical-engine-1843",
            "next": "https://evil.example/",
        },
    )
    assert response["Location"] == reverse("projects:home")


@pytest.mark.django_db
def test_log_in_and_out(client):
    user = UserFactory(username="bob")
    response = client.post(reverse("accounts:login"), {"username": "bob", "password": PASSWORD})
    assert response.status_code == 302
    assert int(client.session["_auth_user_id"]) == user.pk

    assert client.get(reverse("accounts:logout")).status_code == 405  # no state change on GET
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_login_attempts_are_rate_limited(client, settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 3
    UserFactory(username="carol")
    for _ in range(3):
        response = client.post(reverse("accounts:login"), {"username": "carol", "password": "wrong"})
        assert "Please enter a correct username" in response.content.decode()
    # Now even the right password is not checked.
    response = client.post(reverse("accounts:login"), {"username": "carol", "password": PASSWORD})
    assert response.status_code == 200
    assert "Too many failed log-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # The same account from another address still gets in.
    response = client.post(
        reverse("accounts:login"), {"username": "carol", "password": PASSWORD}, REMOTE_ADDR="10.0.0.9"
    )
    assert response.status_code == 302


@pytest.mark.django_db
def test_many_failures_from_one_address_block_it_for_every_account(client, settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 4
    UserFactory(username="dave")
    for n in range(4):
        client.post(reverse("accounts:login"), {"username": f"guess{n}", "password": "wrong"})
    response = client.post(reverse("accounts:login"), {"username": "dave", "password": PASSWORD})
    assert "Too many failed log-in attempts" in response.content.decode()


@pytest.mark.django_db
def test_password_reset_by_email(client):
    user = UserFactory(username="erin", email="erin@example.com")
    response = client.post(reverse("accounts:password_reset"), {"email": "erin@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/]+(/accounts/password-reset/\S+/)", mail.outbox[0].body).group(1)

    response = client.get(link, follow=True)  # Django swaps the token for a session marker
    assert response.context["validlink"]
    response = client.post(
        response.redirect_chain[-1][0],
        {"new_password1": "a-brand-new-secret-77", "new_password2": "a-brand-new-secret-77"},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("a-brand-new-secret-77")


@pytest.mark.django_db
def test_password_reset_for_an_unknown_address_says_the_same_and_sends_nothing(client):
    response = client.post(reverse("accounts:password_reset"), {"email": "nobody@example.com"}, follow=True)
    assert "Check your e-mail" in response.content.decode()
    assert mail.outbox == []


@pytest.mark.django_db
def test_profile_requires_login_and_saves_escaped(client):
    assert client.get(reverse("accounts:profile"))["Location"].startswith(reverse("accounts:login"))
    user = UserFactory()
    client.force_login(user)
    response = client.post(
        reverse("accounts:profile"),
        {"display_name": "<script>x</script>", "bio": "I make things.", "preferred_language": "zh-hans"},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.display_name, user.bio, user.preferred_language) == ("<script>x</script>", "I make things.", "zh-hans")
    page = client.get(reverse("accounts:profile")).content.decode()
    assert "<script>x</script>" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page


@pytest.mark.django_db
def test_profile_refuses_an_unknown_language(client):
    user = UserFactory()
    client.force_login(user)
    response = client.post(reverse("accounts:profile"), {"display_name": "X", "bio": "", "preferred_language": "xx"})
    assert response.status_code == 200
    assert "preferred_language" in response.context["form"].errors


@pytest.mark.django_db
def test_login_page_and_form_errors_in_chinese(client):
    client.cookies["django_language"] = "zh-hans"
    page = client.get(reverse("accounts:login")).content.decode()
    assert "<h1>登录</h1>" in page
    assert "忘记密码？" in page

    UserFactory(username="grace", email="grace@example.com")
    response = client.post(
        reverse("accounts:signup"),
        {"username": "grace", "email": "g2@example.com", "password1": "a-long-secret-1", "password2": "another-2"},
    )
    page = response.content.decode()
    assert "创建您的账户" in page
    assert "该用户名已被使用。" in page
    assert "两次输入的密码不一致。" in page


@pytest.mark.django_db
def test_login_switches_the_site_to_the_preferred_language(client):
    UserFactory(username="mei", preferred_language="zh-hans")
    response = client.post(reverse("accounts:login"), {"username": "mei", "password": PASSWORD})
    assert response.status_code == 302
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    assert "我的支持" in client.get(reverse("accounts:profile")).content.decode()


@pytest.mark.django_db
def test_sign_up_in_chinese_stores_chinese_as_the_preferred_language(client):
    client.cookies["django_language"] = "zh-hans"
    response = client.post(
        reverse("accounts:signup"),
        {
            "username": "lin",
            "email": "lin@example.com",
            "password1": "analytical-engine-1843",
            "password2": "analytical-engine-1843",
        },
    )
    assert response.status_code == 302
    assert get_user_model().objects.get(username="lin").preferred_language == "zh-hans"
    assert "欢迎加入 Crowdfund，lin！" in client.get(response["Location"]).content.decode()


@pytest.mark.django_db
def test_saving_the_profile_with_another_language_switches_the_site(client):
    user = UserFactory()
    client.force_login(user)
    response = client.post(
        reverse("accounts:profile"), {"display_name": "", "bio": "", "preferred_language": "zh-hans"}, follow=True
    )
    page = response.content.decode()
    assert '<html lang="zh-hans">' in page
    assert "个人资料已保存。" in page
    assert "保存资料" in page


@pytest.mark.django_db
def test_language_switcher_stores_the_choice_of_a_signed_in_user(client):
    user = UserFactory(preferred_language="en")
    client.force_login(user)
    response = client.post(reverse("set_language"), {"language": "zh-hans", "next": "/pledges/"})
    assert response.status_code == 302
    assert response["Location"] == "/pledges/"
    user.refresh_from_db()
    assert user.preferred_language == "zh-hans"

    client.post(reverse("set_language"), {"language": "xx", "next": "/"})  # not offered: ignored
    user.refresh_from_db()
    assert user.preferred_language == "zh-hans"


@pytest.mark.django_db
def test_language_switcher_needs_the_csrf_token():
    user = UserFactory(preferred_language="en")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(reverse("set_language"), {"language": "zh-hans"})
    assert response.status_code == 403
    user.refresh_from_db()
    assert user.preferred_language == "en"


@pytest.mark.django_db
def test_password_reset_email_in_the_account_owners_language(client):
    UserFactory(email="wang@example.com", preferred_language="zh-hans")
    client.post(reverse("accounts:password_reset"), {"email": "wang@example.com"})
    assert mail.outbox[0].subject == "重置您的 Crowdfund 密码"
    assert "请在此设置新密码：" in mail.outbox[0].body
