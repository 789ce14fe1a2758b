"""Production security settings from the environment, and the headers every page carries."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.http import HttpResponse, HttpResponseNotFound
from django.test import RequestFactory
from django.urls import reverse

ROOT = Path(settings.BASE_DIR)
SECURITY_VARIABLES = (
    "DEBUG",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_PROXY_SSL_HEADER",
)
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "k3v8-Qz1x!rT9mW2#pL6sY4^nB7cF0hJ5dG8aE1uI3oK6vX9zR2tQ",
    "ALLOWED_HOSTS": "crowdfund.example",
}


def _manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    """Run manage.py in a fresh process with the environment a deployment would give it."""
    base = {name: value for name, value in os.environ.items() if name not in SECURITY_VARIABLES}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_is_clean_with_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr


# Loads the settings module once per environment given on stdin (it reads nothing else), in
# one process: the settings each environment gives, as JSON.
LOAD_SETTINGS = """
import importlib, json, os, sys
names, environments = json.load(sys.stdin)
base = dict(os.environ)
results = []
for environment in environments:
    os.environ.clear()
    os.environ.update({**base, **environment})
    module = importlib.import_module("crowdfund_site.settings")
    module = importlib.reload(module)
    results.append({name: getattr(module, name) for name in names})
print(json.dumps(results))
"""


def _https_settings(*environments: dict) -> list[dict]:
    names = [*SECURITY_VARIABLES[1:], "SECURE_REFERRER_POLICY"]
    base = {name: value for name, value in os.environ.items() if name not in SECURITY_VARIABLES}
    result = subprocess.run(
        [sys.executable, "-c", LOAD_SETTINGS],
        input=json.dumps([names, list(environments)]),
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_https_is_on_by_default_in_production_off_in_debug_and_each_setting_comes_from_the_environment():
    behind_proxy = {
        **PRODUCTION,
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_HSTS_SECONDS": "600",
        "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
    }
    production, debug, proxied = _https_settings(PRODUCTION, {"DEBUG": "1"}, behind_proxy)

    assert production["SECURE_SSL_REDIRECT"] is True
    assert production["SECURE_HSTS_SECONDS"] >= 31_536_000
    assert production["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert production["SECURE_HSTS_PRELOAD"] is True
    assert production["SESSION_COOKIE_SECURE"] is True
    assert production["CSRF_COOKIE_SECURE"] is True
    assert production["SECURE_PROXY_SSL_HEADER"] is None

    assert not debug["SECURE_SSL_REDIRECT"]
    assert not debug["SECURE_HSTS_SECONDS"]
    assert not debug["SESSION_COOKIE_SECURE"]

    assert proxied["SECURE_SSL_REDIRECT"] is False
    assert proxied["SECURE_HSTS_SECONDS"] == 600
    assert proxied["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/", reverse("accounts:login"), "/api/docs/", "/admin/login/", "/api/v1/categories/"])
def test_every_response_carries_a_strict_content_security_policy(client, url):
    response = client.get(url)

    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy
    assert "http" not in policy  # no other host
    assert response["Referrer-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]
    assert "geolocation=()" in response["Permissions-Policy"]


def test_djangos_debug_pages_keep_their_inline_styles_in_development(settings):
    from crowdfund_site.security import SecurityHeadersMiddleware

    settings.DEBUG = True
    debug_page = SecurityHeadersMiddleware(lambda request: HttpResponseNotFound("<style>...</style>"))
    page = SecurityHeadersMiddleware(lambda request: HttpResponse("ok"))
    request = RequestFactory().get("/")

    assert "Content-Security-Policy" not in debug_page(request)
    assert "Content-Security-Policy" in page(request)


@pytest.mark.django_db
def test_the_api_docs_page_loads_its_start_up_script_from_a_file(client):
    page = client.get("/api/docs/").content.decode()
    inline = [tag for tag in re.findall(r"<script\b[^>]*>", page) if "src=" not in tag]
    assert inline == []
    assert "<style" not in page
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()


INLINE = {
    "inline script": re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*application/(ld\+)?json)[^>]*>", re.IGNORECASE),
    "style attribute": re.compile(r"\sstyle\s*=", re.IGNORECASE),
    "style element": re.compile(r"<style\b", re.IGNORECASE),
    "event handler attribute": re.compile(r"\son[a-z]+\s*=", re.IGNORECASE),
    "javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
}


def test_no_template_has_inline_script_or_style():
    """The policy refuses them in the browser; this finds them before a browser test has to."""
    found = []
    folders = [ROOT / "templates", *(path for path in ROOT.glob("*/templates") if path.parent.name != ".venv")]
    for template in sorted(t for folder in folders for t in folder.glob("**/*.html")):
        text = template.read_text()
        found += [f"{template.relative_to(ROOT)}: {what}" for what, pattern in INLINE.items() if pattern.search(text)]
    assert found == []


def test_no_html_built_in_python_has_inline_script_or_style():
    """HTML the admin and views build (format_html, mark_safe) is held to the same policy."""
    tag_with_inline = re.compile(
        r"<[a-z]+\b[^>]*\s(style|on[a-z]+)\s*=|<script\b(?![^>]*\bsrc=)|<style\b", re.IGNORECASE
    )
    found = []
    for source in sorted(ROOT.glob("*/**/*.py")):
        parts = source.relative_to(ROOT).parts
        if parts[0] in {".venv", "benchmarks"} or "tests" in parts or "migrations" in parts:
            continue
        found += [
            f"{source.relative_to(ROOT)}: {match.group(0)}" for match in tag_with_inline.finditer(source.read_text())
        ]
    assert found == []
