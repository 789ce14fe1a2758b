"""Sponsors, pools and rounds made the way the services make them."""

from datetime import timedelta

from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.tests.factories import UserFactory
from matching.models import SPONSORS_GROUP, PoolMode
from matching.services import pool_create, pool_fund, round_create

VISA = "tok_visa"


def sponsor_create(**kwargs):
    user = UserFactory(**kwargs)
    # Transactional tests flush the group the migration made.
    group, _ = Group.objects.get_or_create(name=SPONSORS_GROUP)
    user.groups.add(group)
    return user


def funded_pool(*, sponsor=None, amount=100_000, mode=PoolMode.QUADRATIC, campaigns=(), categories=(), **kwargs):
    sponsor = sponsor or sponsor_create()
    now = timezone.now()
    pool = pool_create(
        actor=sponsor,
        sponsor=sponsor,
        name=kwargs.pop("name", "City culture fund"),
        currency="USD",
        amount=amount,
        mode=mode,
        starts_at=kwargs.pop("starts_at", now - timedelta(days=1)),
        ends_at=kwargs.pop("ends_at", now + timedelta(days=60)),
        campaigns=campaigns,
        categories=categories,
        **kwargs,
    )
    return pool_fund(pool=pool, actor=sponsor, payment_token=VISA)


def open_round(pool, *, hours=1):
    now = timezone.now()
    return round_create(
        pool=pool, actor=pool.sponsor, starts_at=now - timedelta(hours=hours), ends_at=now + timedelta(hours=hours)
    )
