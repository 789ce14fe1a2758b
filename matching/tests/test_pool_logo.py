"""A pool's logo: uploaded by its sponsor, stored in sizes, shown on the pool's pages and its "matched by" badge."""

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from accounts.tests.factories import UserFactory
from crowdfund_site.api.testing import api_client, assert_error
from crowdfund_site.exceptions import InvalidInput, NotAllowed
from matching.services import pool_logo_set
from matching.tests.factories import funded_pool
from matching.tests.test_pages import paid_round  # noqa: F401 - fixture
from projects.tests.pictures import picture_bytes, upload

pytestmark = pytest.mark.django_db


def test_a_logo_is_stored_in_sizes_keeping_its_shape_and_replaces_the_last():
    pool = funded_pool(name="Harbour fund", accepts_applications=True)
    pool = pool_logo_set(pool=pool, actor=pool.sponsor, upload=upload(picture_bytes(800, 200, fmt="PNG"), "logo.png"))
    logo = pool.logo
    assert (logo["alt"], logo["widths"], logo["width"], logo["height"]) == ("Harbour fund", [96, 192, 384], 384, 96)
    first = f"{logo['key']}-384.webp"
    assert default_storage.exists(first)
    again = pool_logo_set(pool=pool, actor=pool.sponsor, upload=upload())
    assert again.logo["key"] != logo["key"]
    assert not default_storage.exists(first)  # the replaced one's files are gone


def test_only_the_sponsor_or_staff_change_the_logo_and_a_bad_file_stores_nothing():
    pool = funded_pool(accepts_applications=True)
    with pytest.raises(NotAllowed):
        pool_logo_set(pool=pool, actor=UserFactory(), upload=upload())
    with pytest.raises(InvalidInput) as refused:
        pool_logo_set(pool=pool, actor=pool.sponsor, upload=upload(b"not a picture" * 50, "logo.jpg"))
    assert refused.value.code == "image_format"
    pool.refresh_from_db()
    assert pool.logo == {}


def test_the_logo_shows_on_the_pool_page_the_index_and_the_matched_by_badge(client, paid_round):  # noqa: F811
    pool, _round, campaign, _b = paid_round
    pool = pool_logo_set(pool=pool, actor=pool.sponsor, upload=upload())
    key = pool.logo["key"]
    assert key in client.get(reverse("matching:pool_detail", args=[pool.slug])).content.decode()
    assert key in client.get(reverse("matching:pool_list")).content.decode()
    page = client.get(campaign.get_absolute_url()).content.decode()
    badge = page[page.index('class="matched-by"') :]
    assert key in badge[: badge.index("</p>")]


def test_the_sponsor_uploads_the_logo_from_the_dashboard_and_others_get_a_403(client):
    pool = funded_pool(accepts_applications=True)
    url = reverse("matching:pool_logo_upload", args=[pool.slug])
    client.force_login(UserFactory())
    assert client.post(url, {"logo": upload()}).status_code == 403
    client.force_login(pool.sponsor)
    response = client.post(url, {"logo": upload(b"", "empty.jpg")}, follow=True)
    assert "image" in response.content.decode().lower()
    pool.refresh_from_db()
    assert pool.logo == {}
    response = client.post(url, {"logo": upload()}, follow=True)
    assert "The pool&#x27;s logo is saved." in response.content.decode()
    pool.refresh_from_db()
    assert pool.logo["key"] in response.content.decode()


def test_the_logo_through_the_api():
    pool = funded_pool(accepts_applications=True)
    url = f"/api/v1/matching/pools/{pool.slug}/logo/"
    assert_error(api_client(UserFactory()).put(url, {"logo": upload()}, format="multipart"), 403, "not_allowed")
    assert_error(api_client(pool.sponsor).put(url, {}, format="multipart"), 400)
    answer = api_client(pool.sponsor).put(url, {"logo": upload()}, format="multipart")
    assert answer.status_code == 200, answer.content
    logo = answer.json()["logo"]
    assert [size["width"] for size in logo["sizes"]] == [96, 192, 384]
    assert api_client().get(f"/api/v1/matching/pools/{pool.slug}/").json()["logo"]["alt"] == pool.name
