"""Every limit on what people type holds the same on the web pages, in the API and in the services.

Integers stay inside their database columns (PostgreSQL's ranges, stricter than SQLite's), and
each text field has one length limit that the web form and the API both apply.
"""

import inspect

import pytest
from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.urls import URLResolver, get_resolver, reverse
from rest_framework import serializers

from accounts import api as accounts_api
from accounts import forms as accounts_forms
from accounts.models import BIO_MAX_LENGTH, User
from accounts.services import user_update_profile
from crowdfund_site.api.testing import api_client, assert_error
from crowdfund_site.bounds import column_integer_range, field_max_length
from crowdfund_site.exceptions import InvalidInput
from pledges import forms as pledges_forms
from pledges.models import Pledge
from projects import api as projects_api
from projects import forms as projects_forms
from projects.models import (
    CAMPAIGN_STORY_MAX_LENGTH,
    COMMENT_MAX_LENGTH,
    REWARD_DESCRIPTION_MAX_LENGTH,
    UPDATE_BODY_MAX_LENGTH,
    Campaign,
    CampaignUpdate,
    Comment,
    RewardTier,
)
from projects.services import campaign_create, campaign_update_create, comment_create, reward_tier_create
from projects.tests.factories import CampaignFactory, CategoryFactory, LiveCampaignFactory

OUT_OF_RANGE = [2**31, 2**63, -1, 0]
CARD = {"card_number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}


def _form_classes() -> list[type[forms.Form]]:
    modules = [projects_forms, pledges_forms, accounts_forms]
    return [
        cls
        for module in modules
        for _name, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, forms.BaseForm) and cls.__module__ == module.__name__
    ]


def _api_views(patterns=None) -> list[type]:
    """Return every API view class the URLconf routes to."""
    if patterns is None:
        patterns = get_resolver().url_patterns
    views = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            views += _api_views(pattern.url_patterns)
        elif getattr(pattern.callback, "cls", None) is not None:
            views.append(pattern.callback.cls)
    return views


def _input_serializers() -> list[type[serializers.Serializer]]:
    """Return the request body and query serializers of every API view, nested ones included."""
    classes = []
    for view in _api_views():
        for attr in ("InputSerializer", "FilterSerializer"):
            serializer = getattr(view, attr, None)
            if serializer is not None and serializer not in classes:
                classes.append(serializer)
    return classes


def _fields(serializer: serializers.Serializer):
    for name, field in serializer.fields.items():
        if isinstance(field, serializers.ListSerializer):
            field = field.child
        if isinstance(field, serializers.Serializer):
            yield from _fields(field)
        else:
            yield name, field


def test_every_integer_a_web_form_takes_has_bounds_inside_a_32_bit_column():
    integer_fields = [
        (form, name, field)
        for form in _form_classes()
        for name, field in form.base_fields.items()
        if isinstance(field, forms.IntegerField)
    ]
    assert integer_fields, "no integer fields found: the test looks in the wrong place"
    low, high = column_integer_range(RewardTier, "quantity_limit")
    for form, name, field in integer_fields:
        assert field.min_value is not None, (form, name)
        assert field.max_value is not None, (form, name)
        assert low <= field.min_value <= field.max_value <= high, (form, name)


@pytest.mark.django_db
def test_every_integer_the_api_takes_has_bounds():
    serializers_found = _input_serializers()
    assert len(serializers_found) >= 10
    for serializer in serializers_found:
        for name, field in _fields(serializer()):
            if isinstance(field, serializers.IntegerField):
                assert field.min_value is not None, (serializer, name)
                assert field.max_value is not None, (serializer, name)


def test_integer_bounds_are_the_same_on_the_web_and_in_the_api_and_inside_the_columns():
    rewards = projects_api.RewardListCreateApi.InputSerializer().fields["quantity_limit"]
    reward_change = projects_api.RewardDetailApi.InputSerializer().fields["quantity_limit"]
    web = projects_forms.RewardForm.base_fields["quantity_limit"]
    assert web.max_value == rewards.max_value == reward_change.max_value
    assert web.max_value <= column_integer_range(RewardTier, "quantity_limit")[1]
    days = projects_api.CampaignListCreateApi.InputSerializer().fields["duration_days"]
    web_days = projects_forms.CampaignFundingForm.base_fields["duration_days"]
    assert (web_days.min_value, web_days.max_value) == (days.min_value, days.max_value)
    assert days.max_value <= column_integer_range(Campaign, "duration_days")[1]


CAMPAIGN_APIS = [projects_api.CampaignListCreateApi, projects_api.CampaignDetailApi]
# (web form, field) -> the API input serializers and the field they share a limit with.
SAME_TEXT_LIMIT = [
    (projects_forms.CampaignBasicsForm, "title", [projects_api.CampaignListCreateApi, projects_api.CampaignDetailApi]),
    (
        projects_forms.CampaignBasicsForm,
        "summary",
        [projects_api.CampaignListCreateApi, projects_api.CampaignDetailApi],
    ),
    (
        projects_forms.CampaignStoryForm,
        "description",
        [projects_api.CampaignListCreateApi, projects_api.CampaignDetailApi],
    ),
    (projects_forms.RewardForm, "title", [projects_api.RewardListCreateApi, projects_api.RewardDetailApi]),
    (projects_forms.RewardForm, "description", [projects_api.RewardListCreateApi, projects_api.RewardDetailApi]),
    (projects_forms.CampaignUpdateForm, "title", [projects_api.CampaignUpdateListCreateApi]),
    (projects_forms.CampaignUpdateForm, "body", [projects_api.CampaignUpdateListCreateApi]),
    (projects_forms.CommentForm, "body", [projects_api.CommentListCreateApi]),
    (accounts_forms.ProfileForm, "display_name", [accounts_api.MeApi]),
    (accounts_forms.ProfileForm, "bio", [accounts_api.MeApi]),
]


def test_the_discover_search_has_the_same_limit_as_the_api_s():
    api = projects_api.CampaignListCreateApi.FilterSerializer().fields["search"]
    assert projects_forms.DiscoverForm.base_fields["q"].max_length == api.max_length


@pytest.mark.parametrize(("form", "name", "apis"), SAME_TEXT_LIMIT, ids=lambda v: getattr(v, "__name__", v))
def test_each_text_field_has_one_limit_on_the_web_and_in_the_api(form, name, apis):
    web_limit = form.base_fields[name].max_length
    assert web_limit is not None
    for api in apis:
        assert api.InputSerializer().fields[name].max_length == web_limit, api


def test_every_web_text_field_is_bounded_and_fits_its_column():
    columns = {
        (projects_forms.CampaignBasicsForm, "title"): (Campaign, "title"),
        (projects_forms.CampaignBasicsForm, "summary"): (Campaign, "summary"),
        (projects_forms.RewardForm, "title"): (RewardTier, "title"),
        (projects_forms.CampaignUpdateForm, "title"): (CampaignUpdate, "title"),
        (accounts_forms.SignupForm, "username"): (User, "username"),
        (accounts_forms.SignupForm, "email"): (User, "email"),
        (accounts_forms.SignupForm, "display_name"): (User, "display_name"),
        (accounts_forms.ProfileForm, "display_name"): (User, "display_name"),
    }
    for form in _form_classes():
        # Django's log-in form sets its username's max_length (from the model) when it is made.
        fields = form().fields if issubclass(form, AuthenticationForm) else form.base_fields
        for name, field in fields.items():
            # Passwords (strip=False) are hashed, never stored as typed: they have no length limit.
            if isinstance(field, forms.CharField) and field.strip:
                assert field.max_length is not None, (form, name)
            if (form, name) in columns:
                assert field.max_length == field_max_length(*columns[(form, name)]), (form, name)


# --- through the pages and the API -------------------------------------------------------------


@pytest.fixture
def initiator_client(client):
    from accounts.tests.factories import UserFactory

    user = UserFactory()
    client.force_login(user)
    client.user = user
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("quantity", OUT_OF_RANGE)
def test_the_web_reward_form_refuses_a_quantity_limit_outside_its_range(initiator_client, quantity):
    campaign = CampaignFactory(initiator=initiator_client.user)
    response = initiator_client.post(
        reverse("projects:campaign_rewards", kwargs={"slug": campaign.slug}),
        {"title": "Poster", "minimum_amount": "10", "quantity_limit": str(quantity)},
    )
    assert response.status_code == 200
    assert "quantity_limit" in response.context["form"].errors
    assert not RewardTier.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("quantity", OUT_OF_RANGE)
def test_the_api_refuses_a_quantity_limit_outside_its_range(backer, quantity):
    campaign = CampaignFactory(initiator=backer)
    client = api_client(backer)
    url = f"/api/v1/campaigns/{campaign.pk}/rewards/"
    response = client.post(url, {"title": "Poster", "minimum_amount": 100, "quantity_limit": quantity}, format="json")
    body = assert_error(response, 400)
    assert "quantity_limit" in body["fields"]
    assert not RewardTier.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("quantity", OUT_OF_RANGE)
def test_the_reward_service_refuses_a_quantity_limit_outside_its_range(quantity):
    campaign = CampaignFactory()
    with pytest.raises(InvalidInput) as refused:
        reward_tier_create(
            campaign=campaign, actor=campaign.initiator, title="Poster", minimum_amount=100, quantity_limit=quantity
        )
    assert refused.value.code == "invalid_quantity"


@pytest.mark.django_db
@pytest.mark.parametrize("days", [2**31, 2**63, -1, 0, 61])
def test_the_web_funding_form_refuses_a_duration_outside_its_range(initiator_client, days):
    campaign = CampaignFactory(initiator=initiator_client.user)
    response = initiator_client.post(
        reverse("projects:campaign_edit", kwargs={"slug": campaign.slug, "step": "funding"}),
        {"funding_model": "flexible", "duration_days": str(days)},
    )
    assert "duration_days" in response.context["form"].errors
    campaign.refresh_from_db()
    assert campaign.duration_days == 30


@pytest.mark.django_db
@pytest.mark.parametrize("amount", [str(2**63), str(2**64), "-1", f"{2**63:,}", f"{2**63}.00"])
def test_web_amounts_outside_the_money_columns_are_refused(initiator_client, amount):
    category = CategoryFactory()
    response = initiator_client.post(
        reverse("projects:campaign_start"),
        {"title": "Kettle", "summary": "Hot.", "category": category.pk, "currency": "USD", "goal": amount},
    )
    assert "goal" in response.context["form"].errors
    campaign = CampaignFactory(initiator=initiator_client.user)
    response = initiator_client.post(
        reverse("projects:campaign_rewards", kwargs={"slug": campaign.slug}),
        {"title": "Poster", "minimum_amount": amount},
    )
    assert "minimum_amount" in response.context["form"].errors
    live = LiveCampaignFactory()
    response = initiator_client.post(
        reverse("pledges:create", kwargs={"slug": live.slug}),
        {**CARD, "reward": "", "amount": amount, "idempotency_key": "k", "confirmed_amount": amount},
    )
    assert "amount" in response.context["form"].errors
    assert not Pledge.objects.exists()
    assert not RewardTier.objects.exists()
    assert Campaign.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("amount", [2**63, 2**64, -1])
def test_api_amounts_outside_the_money_columns_are_refused(backer, live_campaign, amount):
    client = api_client(backer)
    response = client.post(
        f"/api/v1/campaigns/{live_campaign.pk}/pledges/",
        {"amount": amount, "currency": "USD", "payment_token": "tok_visa"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"big-{amount}",
    )
    assert "amount" in assert_error(response, 400)["fields"]
    assert not Pledge.objects.exists()


@pytest.mark.django_db
def test_the_web_story_form_refuses_more_than_the_api_accepts(initiator_client):
    campaign = CampaignFactory(initiator=initiator_client.user)
    url = reverse("projects:campaign_edit", kwargs={"slug": campaign.slug, "step": "story"})
    response = initiator_client.post(url, {"description": "x" * 100_000})
    assert "description" in response.context["form"].errors
    campaign.refresh_from_db()
    assert len(campaign.description) < 100

    assert initiator_client.post(url, {"description": "x" * CAMPAIGN_STORY_MAX_LENGTH}).status_code == 302
    campaign.refresh_from_db()
    assert len(campaign.description) == CAMPAIGN_STORY_MAX_LENGTH


@pytest.mark.django_db
def test_the_web_profile_form_takes_a_bio_as_long_as_the_api_does(initiator_client):
    user = initiator_client.user
    url = reverse("accounts:profile")
    data = {"display_name": "", "preferred_language": "en"}
    assert initiator_client.post(url, {**data, "bio": "b" * BIO_MAX_LENGTH}).status_code == 302
    response = initiator_client.post(url, {**data, "bio": "c" * (BIO_MAX_LENGTH + 1)})
    assert "bio" in response.context["form"].errors
    user.refresh_from_db()
    assert user.bio == "b" * BIO_MAX_LENGTH


# --- the services: the one place every interface's writes go through -----------------------------


def _campaign(**fields):
    defaults = {"title": "Kettle", "summary": "Hot.", "category": CategoryFactory(), "goal": 10_000}
    return lambda initiator: campaign_create(initiator=initiator, **{**defaults, **fields})


SERVICE_TEXT_LIMITS = [
    ("campaign title", field_max_length(Campaign, "title"), lambda text: _campaign(title=text)),
    ("campaign summary", field_max_length(Campaign, "summary"), lambda text: _campaign(summary=text)),
    ("campaign story", CAMPAIGN_STORY_MAX_LENGTH, lambda text: _campaign(description=text)),
    (
        "reward title",
        field_max_length(RewardTier, "title"),
        lambda text: (
            lambda user: reward_tier_create(
                campaign=CampaignFactory(initiator=user), actor=user, title=text, minimum_amount=100
            )
        ),
    ),
    (
        "reward description",
        REWARD_DESCRIPTION_MAX_LENGTH,
        lambda text: (
            lambda user: reward_tier_create(
                campaign=CampaignFactory(initiator=user),
                actor=user,
                title="Poster",
                description=text,
                minimum_amount=100,
            )
        ),
    ),
    (
        "update title",
        field_max_length(CampaignUpdate, "title"),
        lambda text: (
            lambda user: campaign_update_create(
                campaign=LiveCampaignFactory(initiator=user), actor=user, title=text, body="News."
            )
        ),
    ),
    (
        "update body",
        UPDATE_BODY_MAX_LENGTH,
        lambda text: (
            lambda user: campaign_update_create(
                campaign=LiveCampaignFactory(initiator=user), actor=user, title="News", body=text
            )
        ),
    ),
    (
        "comment",
        COMMENT_MAX_LENGTH,
        lambda text: lambda user: comment_create(campaign=LiveCampaignFactory(initiator=user), actor=user, body=text),
    ),
    (
        "bio",
        BIO_MAX_LENGTH,
        lambda text: lambda user: user_update_profile(user=user, display_name="", bio=text, preferred_language="en"),
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("what", "limit", "write"), SERVICE_TEXT_LIMITS, ids=[row[0] for row in SERVICE_TEXT_LIMITS])
def test_each_service_takes_text_up_to_its_limit_and_refuses_one_character_more(backer, what, limit, write):
    write("x" * limit)(backer)
    with pytest.raises((InvalidInput, ValidationError)) as refused:
        write("y" * (limit + 1))(backer)
    assert getattr(refused.value, "code", None) == "too_long" or "bio" in getattr(refused.value, "message_dict", {})
    too_long = "y" * (limit + 1)
    assert not Campaign.objects.filter(Q(title=too_long) | Q(summary=too_long) | Q(description=too_long)).exists()
    assert not RewardTier.objects.filter(Q(title=too_long) | Q(description=too_long)).exists()
    assert not CampaignUpdate.objects.filter(Q(title=too_long) | Q(body=too_long)).exists()
    assert not Comment.objects.filter(body=too_long).exists()
    backer.refresh_from_db()
    assert backer.bio != too_long


@pytest.mark.django_db
@pytest.mark.parametrize("number", [2**63, 10**30])
def test_web_addresses_with_ids_past_the_columns_are_not_found(initiator_client, number):
    campaign = CampaignFactory(initiator=initiator_client.user)
    for url in [
        f"/pledges/{number}/",
        f"/pledges/{number}/amount/",
        f"/pledges/{number}/reward/",
        f"/pledges/{number}/cancel/",
    ]:
        assert initiator_client.get(url).status_code == 404, url
    delete = reverse("projects:campaign_reward_delete", kwargs={"slug": campaign.slug, "reward_id": number})
    assert initiator_client.post(delete).status_code == 404


@pytest.mark.django_db
def test_a_staff_refund_reason_longer_than_its_column_is_refused_in_the_admin(client, live_campaign):
    from accounts.tests.factories import FinanceFactory
    from pledges.models import PledgeStatus, PledgeStatusChange
    from pledges.tests.factories import pledge_held

    pledge = pledge_held(campaign=live_campaign)
    client.force_login(FinanceFactory())
    limit = field_max_length(PledgeStatusChange, "reason")
    response = client.post(
        reverse("admin:pledges_pledge_changelist"),
        {"action": "refund", "_selected_action": [str(pledge.pk)], "apply": "1", "reason": "r" * (limit + 1)},
        follow=True,
    )
    assert response.status_code == 200
    assert f"at most {limit} characters" in response.content.decode()
    pledge.refresh_from_db()
    assert pledge.status == PledgeStatus.HELD


@pytest.mark.django_db
@pytest.mark.parametrize("extra", [0, 1, 36])
def test_a_payment_token_longer_than_the_gateway_stores_is_refused(backer, live_campaign, extra):
    from escrow.models import GatewayOperation

    token = "t" * (field_max_length(GatewayOperation, "token") + extra)
    response = api_client(backer).post(
        f"/api/v1/campaigns/{live_campaign.pk}/pledges/",
        {"amount": 1_000, "currency": "USD", "payment_token": token},
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"long-token-{extra}",
    )
    if extra:
        assert "payment_token" in assert_error(response, 400)["fields"]
        assert not GatewayOperation.objects.exists()
    else:  # as long as the column: stored, and declined as no card the sandbox knows
        assert_error(response, 402)
