"""Helpers for API tests: clients signed in with a token, error-shape assertions, a served site.

None of them needs an app (``crowdfund_site`` imports none): helpers that build campaigns or
pledges live in the tests (``crowdfund_site/tests/fuzz.py``).
"""

import contextlib

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def api_client(user=None) -> APIClient:
    """Return an API client, signed in as ``user`` with a token when given."""
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def assert_error(response, status: int, code: str | None = None) -> dict:
    """Assert ``response`` is an API error with ``status`` (and ``code``); return its body."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body) == {"code", "detail", "fields"}, body
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert isinstance(body["fields"], dict)
    if code is not None:
        assert body["code"] == code, body
    return body


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def gunicorn_serving(*, env: dict, workers: int = 2, threads: int = 8, timeout: float = 60.0):
    """Run gunicorn with the project on a free port for the block; yield its base URL.

    ``env`` is added to this process's environment (DATABASE_URL, throttle rates...). The server
    is stopped, by its own pid, when the block ends.
    """
    import os
    import signal
    import subprocess
    import sys
    import tempfile
    import time
    import urllib.request
    from pathlib import Path

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), "crowdfund_site.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers)]
    command += ["-k", "gthread", "--threads", str(threads), "--log-level", "warning", "--timeout", "120"]
    # A log file, not a pipe: a pipe nobody reads fills up and stalls the server.
    with tempfile.TemporaryFile(mode="w+") as log:
        server = subprocess.Popen(
            command,
            cwd=Path(__file__).resolve().parents[2],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
            start_new_session=True,  # its own process group, so its workers can be stopped with it
        )
        try:
            give_up_at = time.monotonic() + timeout
            while True:
                if server.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"gunicorn exited: {log.read()[-2000:]}")
                try:
                    with urllib.request.urlopen(f"{base_url}/api/v1/categories/", timeout=5) as response:  # noqa: S310
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > give_up_at:
                    raise RuntimeError("gunicorn did not answer in time")
                time.sleep(0.2)
            yield base_url
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)  # the group this function started, workers included
                server.wait()


def current_database_url() -> str:
    """Return a DATABASE_URL naming the database this process uses (the test database in tests)."""
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor != "postgresql":
        raise RuntimeError("only PostgreSQL test databases can be shared with another process")
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def http_post_json(url: str, body: dict, *, headers: dict, timeout: float = 120.0) -> tuple[int, bytes]:
    """POST ``body`` as JSON with the standard library; return (status, raw body) even for 4xx/5xx."""
    import json
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - a local test server
        url, data=data, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
