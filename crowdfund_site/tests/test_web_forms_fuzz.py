"""Fuzz every web form: hostile and random values for each field, posted with CSRF as a browser does.

No input may cause a server error, and input a form refuses writes nothing. Each field is fuzzed
in turn with the form's other fields valid (so a bad value gets past the other checks to the
service and the database, as a quantity limit of 2**31 on an otherwise fine reward did), always
with its edge values (one character over its limit, integers just past the 32- and 64-bit
columns, a decimal comma, NUL); then every field is drawn at once. Examples are kept few so the
suite stays quick (about 40 posts a form).
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from accounts.models import BIO_MAX_LENGTH, User
from accounts.tests.factories import UserFactory
from pledges.models import Pledge, PledgeStatus
from pledges.tests.factories import pledge_held
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
from projects.tests.factories import CampaignFactory, CategoryFactory, LiveCampaignFactory, RewardTierFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

PASSWORD = "correct-horse-battery"
EXAMPLES_PER_FIELD = 4
EXAMPLES_ALL_FIELDS = 10


def _fuzz(examples: int):
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )


HOSTILE = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "1,50",
        "1,500",
        "10,000.50",
        "-1",
        "0",
        str(2**31),
        str(2**63),
        "9" * 40,
        "1e9",
        "NaN",
        "<script>alert(1)</script>",
        "' OR 1=1 --",
        "%s%s%n",
        "\u202e\ufeff",
        "😀" * 3,
    ]
)


@dataclass
class Field:
    """How to fuzz one form field: a strategy, and edge values always tried."""

    strategy: st.SearchStrategy
    edges: list = field(default_factory=list)


def text(limit: int = 200) -> Field:
    long = st.builds(lambda char, n: char * n, st.sampled_from(["x", "é", "\n"]), st.sampled_from([limit, 100_000]))
    return Field(st.one_of(st.text(max_size=40), HOSTILE, long), ["x" * (limit + 1), "a\x00b", "  "])


def integer() -> Field:
    return Field(
        st.one_of(st.integers(min_value=-(2**70), max_value=2**70).map(str), HOSTILE, st.text(max_size=6)),
        [str(2**31), str(2**63), str(-(2**31) - 1), "1.5"],
    )


def amount() -> Field:
    decimals = st.decimals(min_value=-(10**20), max_value=10**20, allow_nan=False, allow_infinity=False, places=3)
    return Field(
        st.one_of(
            decimals.map(str),
            decimals.map(lambda d: f"{d:,}"),
            st.integers(min_value=0, max_value=10**6).map(lambda n: f"{n // 100},{n % 100:02d}"),
            HOSTILE,
            st.text(alphabet="0123456789,.$€¥ -", max_size=16),
        ),
        [str(2**63), f"{2**63:,}", "1,50", "-1", "1e3"],
    )


def choice(*values) -> Field:
    return Field(
        st.one_of(st.sampled_from([str(v) for v in values]), HOSTILE, st.text(max_size=8)), [str(2**63), "\x00"]
    )


def a_date() -> Field:
    return Field(st.one_of(st.dates().map(str), HOSTILE, st.text(max_size=12)), ["2026-02-30", "99999-01-01", "\x00"])


def a_bool() -> Field:
    return Field(st.sampled_from([None, "on", "", "true", "0"]))


def any_of(*values: str, also: Field) -> Field:
    return Field(st.one_of(st.sampled_from(values), also.strategy), also.edges)


CARD = {
    "card_number": any_of("4242 4242 4242 4242", "4000000000000002", also=text(30)),
    "expiry": any_of("12/39", "01/20", "13/40", "12 / 39", also=text(7)),
    "cvc": any_of("123", "1234", "12", also=text(4)),
}
VALID_CARD = {"card_number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}


def _written() -> tuple:
    """Return everything a form could have written, to compare before and after a refused post."""
    return (
        list(User.objects.order_by("pk").values_list("pk", "username", "email", "display_name", "bio", "last_login")),
        list(Campaign.objects.order_by("pk").values()),
        list(RewardTier.objects.order_by("pk").values()),
        list(Pledge.objects.order_by("pk").values_list("pk", "amount", "status", "reward_id")),
        CampaignUpdate.objects.count(),
        Comment.objects.count(),
    )


class Browser:
    """A test client that enforces CSRF like a browser: the token comes from the form's page.

    The page is fetched when the client has no CSRF cookie yet; the cookie it sets (renewed by
    the server at log-in) carries the token for the posts that follow.
    """

    def __init__(self, user=None):
        self.client = Client(enforce_csrf_checks=True)
        if user is not None:
            self.client.force_login(user)

    def post(self, form_url: str, data: dict, *, post_url: str | None = None):
        if "csrftoken" not in self.client.cookies:
            page = self.client.get(form_url)
            assert page.status_code == 200, (form_url, page.status_code)
        data = {**data, "csrfmiddlewaretoken": self.client.cookies["csrftoken"].value}
        before = _written()
        response = self.client.post(post_url or form_url, data)
        assert response.status_code < 500
        assert response.status_code != 403, "the CSRF token was refused"
        if response.status_code != 302:  # refused: the form is shown again with its errors
            assert _written() == before, data
        return response


def fuzz_form(post: Callable[[dict], object], valid: Callable[[], dict], fields: dict[str, Field]) -> None:
    """Post ``valid()`` with each field in turn drawn from its Field (edges included), then all drawn.

    A value of None leaves the field out, as a browser leaves out an unchecked box.
    """

    def send(data: dict) -> None:
        post({name: value for name, value in data.items() if value is not None})

    def one_field(name: str, spec: Field):
        def run(value):
            send({**valid(), name: value})

        run = given(spec.strategy)(run)
        for edge in spec.edges:
            run = example(edge)(run)
        return _fuzz(EXAMPLES_PER_FIELD)(run)

    for name, spec in fields.items():
        one_field(name, spec)()

    @_fuzz(EXAMPLES_ALL_FIELDS)
    @given(st.fixed_dictionaries({name: spec.strategy for name, spec in fields.items()}))
    def all_fields(data):
        send(data)

    all_fields()


@pytest.fixture
def initiator():
    return UserFactory()


@pytest.fixture
def draft(initiator):
    return CampaignFactory(initiator=initiator)


def _basics(category) -> tuple[Callable[[], dict], dict[str, Field]]:
    def valid():
        return {
            "title": "Kettle",
            "summary": "Hot water.",
            "category": str(category.pk),
            "currency": "USD",
            "goal": "50",
        }

    fields = {
        "title": text(120),
        "summary": text(280),
        "category": choice(category.pk, 0),
        "currency": choice("USD", "JPY", "EUR"),
        "goal": amount(),
    }
    return valid, fields


def test_campaign_start_form(initiator):
    browser = Browser(initiator)
    valid, fields = _basics(CategoryFactory())
    fuzz_form(lambda data: browser.post(reverse("projects:campaign_start"), data), valid, fields)


def test_campaign_edit_forms(initiator, draft):
    browser = Browser(initiator)

    def step(name: str):
        url = reverse("projects:campaign_edit", kwargs={"slug": draft.slug, "step": name})
        return lambda data: browser.post(url, data)

    fuzz_form(step("basics"), *_basics(CategoryFactory()))
    fuzz_form(step("story"), lambda: {"description": "The story."}, {"description": text(CAMPAIGN_STORY_MAX_LENGTH)})
    fuzz_form(
        step("funding"),
        lambda: {"funding_model": "flexible", "duration_days": "30", "launch_on_approval": "on"},
        {
            "funding_model": choice("all_or_nothing", "flexible"),
            "duration_days": integer(),
            "launch_on_approval": a_bool(),
        },
    )


def test_reward_tier_form(initiator, draft):
    browser = Browser(initiator)
    url = reverse("projects:campaign_rewards", kwargs={"slug": draft.slug})
    fuzz_form(
        lambda data: browser.post(url, data),
        lambda: {"title": "Poster", "description": "", "minimum_amount": "10", "quantity_limit": "5"},
        {
            "title": text(120),
            "description": text(REWARD_DESCRIPTION_MAX_LENGTH),
            "minimum_amount": amount(),
            "quantity_limit": integer(),
            "estimated_delivery": a_date(),
        },
    )


def test_pledge_form():
    campaign = LiveCampaignFactory()
    reward = RewardTierFactory(campaign=campaign, minimum_amount=1_000, quantity_limit=2)
    browser = Browser(UserFactory())
    url = reverse("pledges:create", kwargs={"slug": campaign.slug})
    fuzz_form(
        lambda data: browser.post(url, data),
        lambda: {"reward": "", "amount": "25", "idempotency_key": str(uuid.uuid4()), **VALID_CARD},
        {
            "reward": choice("", reward.pk),
            "amount": amount(),
            "confirmed_amount": integer(),
            "idempotency_key": text(255),
            **CARD,
        },
    )


def test_pledge_change_amount_and_reward_forms():
    campaign = LiveCampaignFactory()
    reward = RewardTierFactory(campaign=campaign, minimum_amount=1_000)
    backer = UserFactory()
    browser = Browser(backer)

    def held_pledge() -> Pledge:
        pledge = Pledge.objects.filter(backer=backer, status=PledgeStatus.HELD).first()
        return pledge or pledge_held(campaign=campaign, backer=backer, amount=5_000)

    fuzz_form(
        lambda data: browser.post(reverse("pledges:change_amount", kwargs={"pk": held_pledge().pk}), data),
        lambda: {"amount": "60", "idempotency_key": str(uuid.uuid4()), **VALID_CARD},
        {
            "amount": amount(),
            "reward": choice("", reward.pk, 0),
            "confirmed_amount": integer(),
            "idempotency_key": text(255),
            **CARD,
        },
    )
    fuzz_form(
        lambda data: browser.post(reverse("pledges:change_reward", kwargs={"pk": held_pledge().pk}), data),
        lambda: {"reward": str(reward.pk)},
        {"reward": choice("", reward.pk, 0)},
    )


def test_update_and_comment_forms():
    initiator = UserFactory()
    campaign = LiveCampaignFactory(initiator=initiator)
    backer = UserFactory()
    pledge_held(campaign=campaign, backer=backer)
    initiator_browser, backer_browser = Browser(initiator), Browser(backer)
    update_url = reverse("projects:campaign_update_new", kwargs={"slug": campaign.slug})
    comment_url = reverse("projects:comment_create", kwargs={"slug": campaign.slug})
    fuzz_form(
        lambda data: initiator_browser.post(update_url, data),
        lambda: {"title": "News", "body": "We shipped."},
        {"title": text(140), "body": text(UPDATE_BODY_MAX_LENGTH), "backers_only": a_bool()},
    )
    fuzz_form(
        lambda data: backer_browser.post(campaign.get_absolute_url(), data, post_url=comment_url),
        lambda: {"body": "Great!"},
        {"body": text(COMMENT_MAX_LENGTH)},
    )


def test_profile_form():
    browser = Browser(UserFactory())
    fuzz_form(
        lambda data: browser.post(reverse("accounts:profile"), data),
        lambda: {"display_name": "Ada", "bio": "", "preferred_language": "en"},
        {"display_name": text(80), "bio": text(BIO_MAX_LENGTH), "preferred_language": choice("en", "zh-hans", "xx")},
    )


def test_signup_form():
    UserFactory(username="taken", email="taken@example.com")
    browser = Browser()

    def post(data):
        if browser.post(reverse("accounts:signup"), data).status_code == 302:
            browser.client.logout()  # signed up, and so logged in: log out to sign up again

    def valid():
        name = uuid.uuid4().hex[:12]
        return {"username": f"u{name}", "email": f"{name}@example.com", "password1": PASSWORD, "password2": PASSWORD}

    fuzz_form(
        post,
        valid,
        {
            "username": any_of("taken", also=text(150)),
            "email": Field(st.one_of(st.emails(), st.just("taken@example.com"), text(254).strategy), text(254).edges),
            "display_name": text(80),
            "password1": any_of(PASSWORD, also=text(100)),
            "password2": any_of(PASSWORD, also=text(100)),
        },
    )


def test_login_form():
    UserFactory(username="someone")
    browser = Browser()

    def post(data):
        if browser.post(reverse("accounts:login"), data).status_code == 302:
            browser.client.logout()

    fuzz_form(
        post,
        lambda: {"username": "someone", "password": PASSWORD},
        {"username": any_of("someone", also=text(150)), "password": any_of(PASSWORD, also=text(200))},
    )


def test_discover_form():
    CategoryFactory(slug="games")
    client = Client()

    def get(params):
        assert client.get(reverse("projects:home"), params).status_code < 500

    fuzz_form(
        get,
        lambda: {"q": "kettle", "category": "games", "sort": "newest", "page": "1"},
        {"q": text(100), "category": choice("games", ""), "sort": choice("ending", "newest", ""), "page": integer()},
    )


def test_the_fuzz_posts_with_a_real_csrf_check():
    """Without the token the same post is refused: the fuzz above really goes through CSRF."""
    client = Browser(UserFactory()).client
    response = client.post(reverse("accounts:profile"), {"display_name": "x", "preferred_language": "en"})
    assert response.status_code == 403
