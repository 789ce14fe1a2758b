"""CPU per API pledge and per sold-out refusal, in-process through the WSGI handler, at steady state.

    .venv/bin/python benchmarks/pledge_cpu.py TREE [time|profile]   (TREE: a checkout, for an A/B)

Every backer has pledged once before the measurement (a backer seen before; warm connections and
ledger account cache). DATABASE_URL / CACHE_URL below are the rush helper's own (cf_rush, Redis db 2):
set them for yours. ``profile`` prints cProfile by CPU time (time.process_time) instead.
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
campaign = LiveCampaignFactory()
early = RewardTierFactory(campaign=campaign, minimum_amount=1_000, quantity_limit=1)
tokens = [Token.objects.get_or_create(user=UserFactory())[0].key for _ in range(2 * N + 20)]


def call(token, reward=None):
    body = json.dumps({"amount": 5_000, "currency": "USD", "reward": reward, "payment_token": "tok_visa"}).encode()
    env = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": f"/api/v1/campaigns/{campaign.pk}/pledges/",
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
    b"".join(out)
    getattr(out, "close", lambda: None)()
    return got[0]


# warm: each token once (plain pledge), first reward pledge takes the only slot
assert call(tokens[0], early.pk).startswith("201"), "first"
for t in tokens[1:10]:
    s = call(t)
    assert s.startswith("201"), s
    s = call(t, early.pk)
    assert s.startswith("409"), s
plain, refuse = tokens[10 : 10 + N], tokens[10 + N : 10 + 2 * N]
for t in plain + refuse:
    assert call(t).startswith("201")  # every backer seen before


def measure(fn):
    start = time.process_time()
    fn()
    return (time.process_time() - start) * 1000 / N


if mode == "profile":
    prof = cProfile.Profile(time.process_time)
    prof.enable()
    for t in plain:
        call(t)
    prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats(90)
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    prof = cProfile.Profile(time.process_time)
    prof.enable()
    for t in refuse:
        call(t, early.pk)
    prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
else:
    p = measure(lambda: [call(t) for t in plain])
    r = measure(lambda: [call(t, early.pk) for t in refuse])
    print(f"{tree}: CPU per pledge {p:.2f} ms, per sold-out refusal {r:.2f} ms (N={N})")
