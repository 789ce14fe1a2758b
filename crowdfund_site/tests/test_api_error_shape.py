"""What Django refuses before DRF runs, and server errors, answer in the API's error format under /api/."""

import contextlib
import http.client
import json
import socket
import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import path

from crowdfund_site import urls as site_urls
from crowdfund_site.api.testing import api_client, assert_error, current_database_url, gunicorn_serving

pytestmark = pytest.mark.django_db

TEN_MB = 10 * 1024 * 1024


def _broken_api_view(request):
    raise RuntimeError("a bug")


# The site's URLs and error handlers, with a view that fails under /api/ and one outside it.
urlpatterns = [path("api/v1/broken/", _broken_api_view), path("broken/", _broken_api_view), *site_urls.urlpatterns]
handler500 = site_urls.handler500


def _big_token_request(client):
    body = json.dumps({"username": "someone", "password": "x" * TEN_MB})
    return client.post("/api/v1/auth/token/", body, content_type="application/json")


def test_a_10_mb_body_is_a_413_in_the_api_format():
    body = assert_error(_big_token_request(api_client()), 413, "request_too_large")
    assert "at most" in body["detail"]


def test_a_body_too_large_on_an_authenticated_money_endpoint(backer, live_campaign):
    body = json.dumps({"amount": 100, "currency": "USD", "payment_token": "tok_visa", "pad": "x" * TEN_MB})
    response = api_client(backer).post(
        f"/api/v1/campaigns/{live_campaign.pk}/pledges/",
        body,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="big",
    )
    assert_error(response, 413, "request_too_large")


def test_too_many_query_parameters_is_a_400_in_the_api_format():
    query = "&".join(f"p{i}=1" for i in range(1_001))
    assert_error(api_client().get(f"/api/v1/campaigns/?{query}"), 400, "too_many_fields")


def test_a_host_not_served_here_is_a_400_in_the_api_format():
    assert_error(api_client().get("/api/v1/categories/", HTTP_HOST="evil.example"), 400, "invalid_host")


def test_pages_keep_django_s_html_error_pages():
    response = Client().get("/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.urls(__name__)
def test_a_server_error_under_api_is_json_and_a_page_elsewhere():
    client = Client(raise_request_exception=False)
    assert_error(client.get("/api/v1/broken/"), 500, "server_error")
    page = client.get("/broken/")
    assert page.status_code == 500
    assert page["Content-Type"].startswith("text/html")


def _post_over_a_socket(base_url: str, body: bytes) -> tuple[int, dict]:
    """POST ``body`` while reading the answer, as an HTTP client that streams a large upload does.

    The server answers as soon as it has read the headers and closes the connection without
    reading the rest, so the upload may end in a broken pipe: only the answer matters here.
    """
    host, port = base_url.removeprefix("http://").split(":")
    head = (
        f"POST /api/v1/auth/token/ HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=60) as sock:

        def upload() -> None:
            with contextlib.suppress(OSError):
                sock.sendall(head + body)

        sender = threading.Thread(target=upload)
        sender.start()
        response = http.client.HTTPResponse(sock)
        response.begin()
        answer = response.status, json.loads(response.read())
        # The server may have closed its end already (ENOTCONN): the upload thread is done then too.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sender.join(timeout=60)
    return answer


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the server shares the PostgreSQL test database")
def test_a_10_mb_body_to_gunicorn_is_a_413_in_the_api_format():
    env = {"CONN_MAX_AGE": "0", "CELERY_TASK_ALWAYS_EAGER": "1", "DATABASE_URL": current_database_url()}
    with gunicorn_serving(env=env, workers=1, threads=2) as base_url:
        status, body = _post_over_a_socket(base_url, json.dumps({"username": "u", "password": "x" * TEN_MB}).encode())
    assert status == 413
    assert set(body) == {"code", "detail", "fields"}
    assert body["code"] == "request_too_large"
