"""Campaign pictures: what is accepted, what is refused (pages and API), and what pages show."""

import io
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image

from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed
from crowdfund_site.images import ImageRejected, image_open_checked
from projects.media import (
    campaign_cover_open_largest,
    campaign_cover_set,
    campaign_gallery_add,
    campaign_gallery_remove,
    picture_token,
    reward_image_set,
)
from projects.models import GALLERY_MAX_IMAGES, CampaignStatus
from projects.services import campaign_submit_for_review
from projects.tests.factories import CampaignFactory, RewardTierFactory
from projects.tests.pictures import picture_bytes, upload

SVG_WITH_SCRIPT = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
    b"<script>alert(document.cookie)</script><rect width='100' height='100'/></svg>"
)


def _stored_files() -> list[str]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _huge_png() -> bytes:
    # 10,000 x 5,000 (50 megapixels) of one colour: a few kilobytes, 150 MB once decoded.
    out = io.BytesIO()
    Image.new("1", (10_000, 5_000)).save(out, "PNG")
    return out.getvalue()


def _twenty_mb_photo() -> bytes:
    # A real JPEG with 20 MB after it: decoders read it, the size limit must still refuse it.
    return picture_bytes() + b"\0" * (20 * 1024 * 1024)


BAD_FILES = [
    pytest.param(b"Just some notes, not a picture.\n" * 20, "notes.jpg", "image_format", id="text-named-jpg"),
    pytest.param(SVG_WITH_SCRIPT, "logo.svg", "image_format", id="svg-with-script"),
    pytest.param(_twenty_mb_photo(), "big.jpg", "image_too_large", id="20-mb-photo"),
    pytest.param(_huge_png(), "huge.png", "image_too_many_pixels", id="50-megapixel-png"),
    pytest.param(picture_bytes(1200, 900)[:4000], "cut.jpg", "image_damaged", id="truncated-jpeg"),
    pytest.param(picture_bytes(fmt="GIF"), "anim.gif", "image_format", id="gif"),
    pytest.param(b"", "empty.jpg", "image_empty", id="empty"),
]


@pytest.fixture
def draft(db):
    return CampaignFactory(cover={})


# --- The service: sizes, formats, privacy, refusals --------------------------------------------


def test_cover_is_stored_in_sizes_as_webp_and_jpeg(draft):
    campaign_cover_set(campaign=draft, actor=draft.initiator, upload=upload(picture_bytes(2000, 1500)), alt="A table")
    draft.refresh_from_db()
    cover = draft.cover
    assert (cover["alt"], cover["widths"], cover["width"], cover["height"]) == ("A table", [400, 800, 1600], 1600, 900)
    for width in cover["widths"]:
        with default_storage.open(f"{cover['key']}-{width}.webp") as handle:
            assert Image.open(handle).format == "WEBP"
        with default_storage.open(f"{cover['key']}-{width}.jpg") as handle:
            image = Image.open(handle)
            assert (image.format, image.width, image.height) == ("JPEG", width, width * 9 // 16)
    assert len(_stored_files()) == 6
    assert campaign_cover_open_largest(campaign=draft).size == (1600, 900)


def test_exif_location_is_stripped_and_orientation_applied(draft):
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)}  # GPS position
    exif[0x010F] = "PhoneMaker"
    photo = picture_bytes(900, 600, exif=exif.tobytes())
    assert Image.open(io.BytesIO(photo)).getexif().get(0x8825) is not None  # the upload has GPS
    campaign_gallery_add(campaign=draft, actor=draft.initiator, upload=upload(photo), alt="Upright")
    draft.refresh_from_db()
    (picture,) = draft.gallery
    assert (picture["width"], picture["height"]) == (600, 900)  # portrait once upright
    for name in _stored_files():
        with default_storage.open(name) as handle:
            stored = Image.open(handle)
            assert not stored.getexif(), name
            assert "exif" not in stored.info, name


@pytest.mark.parametrize(("data", "name", "code"), BAD_FILES)
def test_bad_files_are_refused_with_a_reason_and_nothing_is_stored(draft, data, name, code):
    with pytest.raises(ImageRejected) as refused:
        campaign_cover_set(campaign=draft, actor=draft.initiator, upload=upload(data, name=name), alt="Anything")
    assert refused.value.code == code
    assert refused.value.message
    draft.refresh_from_db()
    assert draft.cover == {}
    assert _stored_files() == []


def test_pixels_are_checked_before_they_are_decoded():
    # Opening a 50-megapixel PNG reads only its header: refused long before 150 MB are allocated.
    with pytest.raises(ImageRejected, match="50 megapixels"):
        image_open_checked(io.BytesIO(_huge_png()))


def test_only_the_initiator_of_an_editable_campaign_changes_pictures(draft):
    stranger = CampaignFactory().initiator
    with pytest.raises(NotAllowed):
        campaign_cover_set(campaign=draft, actor=stranger, upload=upload(), alt="Mine now")
    draft.status = CampaignStatus.IN_REVIEW
    draft.save()
    with pytest.raises(Conflict):
        campaign_gallery_add(campaign=draft, actor=draft.initiator, upload=upload(), alt="Late")
    assert _stored_files() == []


def test_a_description_is_required(draft):
    with pytest.raises(InvalidInput) as refused:
        campaign_cover_set(campaign=draft, actor=draft.initiator, upload=upload(), alt="   ")
    assert refused.value.code == "alt_required"
    assert _stored_files() == []


def test_replacing_the_cover_deletes_the_old_files(draft, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        campaign_cover_set(campaign=draft, actor=draft.initiator, upload=upload(), alt="First")
    first = _stored_files()
    with django_capture_on_commit_callbacks(execute=True):
        campaign_cover_set(campaign=draft, actor=draft.initiator, upload=upload(), alt="Second")
    second = _stored_files()
    assert len(first) == len(second) > 0
    assert not set(first) & set(second)


def test_gallery_holds_ten_and_removes_by_token(draft, django_capture_on_commit_callbacks):
    small = picture_bytes(120, 90)
    for n in range(GALLERY_MAX_IMAGES):
        campaign_gallery_add(campaign=draft, actor=draft.initiator, upload=upload(small), alt=f"Picture {n}")
    draft.refresh_from_db()
    with pytest.raises(Conflict) as refused:
        campaign_gallery_add(campaign=draft, actor=draft.initiator, upload=upload(small), alt="Eleventh")
    assert refused.value.code == "gallery_full"
    third = draft.gallery[2]
    with django_capture_on_commit_callbacks(execute=True):
        campaign_gallery_remove(campaign=draft, actor=draft.initiator, token=picture_token(third))
    draft.refresh_from_db()
    assert [p["alt"] for p in draft.gallery] == [f"Picture {n}" for n in range(GALLERY_MAX_IMAGES) if n != 2]
    assert not any(name.startswith(third["key"]) for name in _stored_files())


def test_reward_picture(draft):
    reward = RewardTierFactory(campaign=draft)
    reward_image_set(reward=reward, actor=draft.initiator, upload=upload(picture_bytes(1000, 1000)), alt="The box")
    reward.refresh_from_db()
    assert (reward.image["alt"], reward.image["widths"]) == ("The box", [200, 400, 800])


def test_a_cover_is_required_to_submit_for_review(draft):
    with pytest.raises(InvalidInput) as refused:
        campaign_submit_for_review(campaign=draft, actor=draft.initiator)
    assert refused.value.code == "cover_required"
    campaign_cover_set(campaign=draft, actor=draft.initiator, upload=upload(), alt="The thing")
    assert campaign_submit_for_review(campaign=draft, actor=draft.initiator).status == CampaignStatus.IN_REVIEW


# --- Pages ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "name", "code"), BAD_FILES)
def test_pictures_page_refuses_bad_files_with_a_message(client, draft, data, name, code):
    client.force_login(draft.initiator)
    response = client.post(
        reverse("projects:campaign_cover_upload", kwargs={"slug": draft.slug}),
        {"cover-image": upload(data, name=name), "cover-alt": "Something"},
    )
    assert response.status_code == 400
    errors = response.context["cover_form"].errors["image"]
    assert errors[0]
    assert errors[0] in response.content.decode()
    assert _stored_files() == []


def test_pictures_page_uploads_and_the_campaign_page_shows_them(client, draft):
    client.force_login(draft.initiator)
    pictures = reverse("projects:campaign_pictures", kwargs={"slug": draft.slug})
    assert "No cover yet" in client.get(pictures).content.decode()
    client.post(
        reverse("projects:campaign_cover_upload", kwargs={"slug": draft.slug}),
        {"cover-image": upload(picture_bytes(1600, 900)), "cover-alt": "The workshop at dawn"},
    )
    client.post(
        reverse("projects:campaign_gallery_upload", kwargs={"slug": draft.slug}),
        {"gallery-image": upload(picture_bytes(800, 600, "PNG"), name="x.png"), "gallery-alt": "The first prototype"},
    )
    page = client.get(draft.get_absolute_url()).content.decode()
    assert 'alt="The workshop at dawn"' in page
    assert 'alt="The first prototype"' in page
    assert 'type="image/webp"' in page
    assert 'loading="lazy"' in page  # the gallery
    assert 'width="1600" height="900"' in page  # the cover, so nothing moves while it loads


def test_media_are_served_only_when_asked(client, draft, settings):
    campaign_cover_set(campaign=draft, actor=draft.initiator, upload=upload(), alt="Served")
    draft.refresh_from_db()
    url = default_storage.url(f"{draft.cover['key']}-400.webp")
    settings.SERVE_MEDIA = False
    assert client.get(url).status_code == 404
    settings.SERVE_MEDIA = True
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp"


# --- API -------------------------------------------------------------------------------------


@pytest.fixture
def api(draft):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(draft.initiator)
    return client


def test_api_sets_the_cover_and_lists_it(api, draft):
    response = api.put(
        f"/api/v1/campaigns/{draft.pk}/cover/",
        {"image": upload(picture_bytes(1200, 800)), "alt": "Cover via API"},
        format="multipart",
    )
    assert response.status_code == 200, response.content
    cover = response.json()["cover"]
    assert cover["alt"] == "Cover via API"
    assert [s["width"] for s in cover["sizes"]] == [400, 800, 1200]
    assert cover["sizes"][0]["webp"].endswith("-400.webp")


@pytest.mark.parametrize(("data", "name", "code"), BAD_FILES)
def test_api_refuses_bad_files_with_a_code(api, draft, data, name, code):
    response = api.post(
        f"/api/v1/campaigns/{draft.pk}/gallery/", {"image": upload(data, name=name), "alt": "x"}, format="multipart"
    )
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert _stored_files() == []


def test_api_gallery_add_and_remove(api, draft):
    response = api.post(f"/api/v1/campaigns/{draft.pk}/gallery/", {"image": upload(), "alt": "One"}, format="multipart")
    assert response.status_code == 201
    token = response.json()["token"]
    assert api.delete(f"/api/v1/campaigns/{draft.pk}/gallery/{token}/").status_code == 204
    assert api.delete(f"/api/v1/campaigns/{draft.pk}/gallery/{token}/").status_code == 404
    draft.refresh_from_db()
    assert draft.gallery == []


def test_signed_storage_urls_are_asked_for_each_size():
    from crowdfund_site.images import rendition_url

    class SignedStorage:  # what S3 with query-string auth answers: a signature per name
        def url(self, name):
            return f"https://bucket.example/{name}?signature={len(name)}"

    descriptor = {"key": "campaigns/1/cover/abc", "widths": [400], "width": 400, "height": 225}
    assert rendition_url(descriptor, 400, "webp", storage=SignedStorage()) == (
        "https://bucket.example/campaigns/1/cover/abc-400.webp?signature=30"
    )
