"""CPU per API pledge and per sold-out refusal, in-process through the WSGI handler, at steady state.

    .venv/bin/python benchmarks/pledge_cpu.py TREE [time|profile]   (TREE: a checkout, for an A/B)

Every backer has pledged once to another campaign before the measurement (a backer seen before;
warm connections and ledger account cache); each measured request is checked for its status (201
for a pledge, 409 ``sold_out`` for a refusal), so a refusal of another kind (``already_backing``)
cannot pass for a pledge. DATABASE_URL / CACHE_URL / CELERY_BROKER_URL default to the rush
helper's own (cf_rush, Redis db 2): set them for yours. ``profile`` prints cProfile by CPU time
(time.process_time) instead. Users get Django's MD5 password hasher, as in the tests: setting up
300 users with the production hasher would take a minute of CPU measured nowhere.
"""

# ruff: noqa: E402  (the chosen tree is put on the path and Django set up before its imports)
import contextlib
import cProfile
import io
import json
import os
import pstats
import random
import sys
import time
import uuid

tree = sys.argv[1]
mode = sys.argv[2] if len(sys.argv) > 2 else "time"
sys.path.insert(0, tree)
os.chdir(tree)
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "crowdfund_site.settings",
        "SECRET_KEY": "x",
        "DEBUG": "false",
        "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cf_rush"),
        "CACHE_URL": os.environ.get("CACHE_URL", "redis://127.0.0.1:6379/2"),
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/2"),
        "CONN_MAX_AGE": "600",
        "LOG_LEVEL": "ERROR",
        "API_THROTTLE_USER": "100000000/min",
        "API_THROTTLE_IP": "100000000/min",
        "SECURE_SSL_REDIRECT": "false",
        "ALLOWED_HOSTS": "localhost,127.0.0.1,testserver",
    }
)
import django

django.setup()
from django.conf import settings

settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
from django.core.wsgi import get_wsgi_application
from rest_framework.authtoken.models import Token

from accounts.tests.factories import UserFactory
from projects.tests.factories import LiveCampaignFactory, RewardTierFactory

app = get_wsgi_application()

UserFactory.reset_sequence(random.randrange(10**9))
from projects.tests import factories as pf

for f in vars(pf).values():
    if hasattr(f, "reset_sequence"):
        with contextlib.suppress(Exception):  # not every factory keeps a sequence
            f.reset_sequence(random.randrange(10**9))

N = int(os.environ.get("N", "150"))
warm_campaign = LiveCampaignFactory()
campaign = LiveCampaignFactory()
early = RewardTierFactory(campaign=campaign, minimum_amount=1_000, quantity_limit=1)
tokens = [Token.objects.get_or_create(user=UserFactory())[0].key for _ in range(2 * N + 20)]


def call(token, reward=None, *, to=None):
    body = json.dumps({"amount": 5_000, "currency": "USD", "reward": reward, "payment_token": "tok_visa"}).encode()
    env = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": f"/api/v1/campaigns/{(to or campaign).pk}/pledges/",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "HTTP_HOST": "localhost",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Token {token}",
        "HTTP_IDEMPOTENCY_KEY": uuid.uuid4().hex,
        "wsgi.errors": sys.stderr,
        "SERVER_PROTOCOL": "HTTP/1.1",
    }
    got = []
    out = app(env, lambda s, h: got.append(s))
    body = b"".join(out)
    getattr(out, "close", lambda: None)()
    return got[0], body


def expect(status, fragment=b""):
    def check(answer):
        assert answer[0].startswith(status), answer
        assert fragment in answer[1], answer

    return check


pledged, sold_out = expect("201"), expect("409", b'"sold_out"')
# warm: every backer pledges once to another campaign (a backer seen before); the first reward
# pledge takes the only slot, and a few refusals and plain pledges warm both paths.
for t in tokens:
    pledged(call(t, to=warm_campaign))
pledged(call(tokens[0], early.pk))
for t in tokens[1:10]:
    sold_out(call(t, early.pk))
for t in tokens[10:20]:
    pledged(call(t))
plain, refuse = tokens[20 : 20 + N], tokens[20 + N : 20 + 2 * N]


def measure(fn, check):
    start = time.process_time()
    answers = fn()
    spent = (time.process_time() - start) * 1000 / N
    for answer in answers:
        check(answer)
    return spent


if mode == "profile":
    prof = cProfile.Profile(time.process_time)
    prof.enable()
    answers = [call(t) for t in plain]
    prof.disable()
    for answer in answers:
        pledged(answer)
    if os.environ.get("PROFILE_OUT"):  # for pstats / an aggregation by package afterwards
        prof.dump_stats(os.environ["PROFILE_OUT"])
    pstats.Stats(prof).sort_stats("cumulative").print_stats(90)
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    prof = cProfile.Profile(time.process_time)
    prof.enable()
    answers = [call(t, early.pk) for t in refuse]
    prof.disable()
    for answer in answers:
        sold_out(answer)
    if os.environ.get("PROFILE_OUT"):
        prof.dump_stats(os.environ["PROFILE_OUT"] + ".refusal")
    pstats.Stats(prof).sort_stats("cumulative").print_stats(60)
else:
    p = measure(lambda: [call(t) for t in plain], pledged)
    r = measure(lambda: [call(t, early.pk) for t in refuse], sold_out)
    print(f"{tree}: CPU per pledge {p:.2f} ms, per sold-out refusal {r:.2f} ms (N={N})")
