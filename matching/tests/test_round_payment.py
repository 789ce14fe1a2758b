"""Paying a round: Finance's job alone, and a payment re-run after a crash pays nothing twice."""

from datetime import timedelta

import pytest

from accounts.tests.factories import FinanceFactory, ReviewerFactory, UserFactory
from crowdfund_site.exceptions import Conflict, NotAllowed
from escrow.models import LedgerTransaction
from matching.models import Allocation, RoundStatus
from matching.selectors import pool_balance
from matching.services import round_end, round_pay, round_publish, rounds_end_due
from matching.services import rounds as round_services
from matching.tests.test_services import two_campaigns  # noqa: F401 (a fixture)
from settlement.tests.checks import escrow_balance, invariant_problems

pytestmark = pytest.mark.django_db


def _published(matching_round):
    later = matching_round.ends_at + timedelta(seconds=1)
    round_end(matching_round=matching_round, now=later)
    return round_publish(matching_round=matching_round, now=later), later + timedelta(days=3)


def test_finance_pays_a_round_and_reviewers_or_other_staff_cannot(two_campaigns):  # noqa: F811
    pool, matching_round, a, b = two_campaigns
    matching_round, after_window = _published(matching_round)
    other_staff = UserFactory(is_staff=True)
    for actor in (ReviewerFactory(), other_staff):
        with pytest.raises(NotAllowed) as refused:
            round_pay(matching_round=matching_round, actor=actor, now=after_window)
        assert refused.value.code == "not_allowed"
    assert not LedgerTransaction.objects.filter(reference=f"round:{matching_round.pk}").exists()
    paid = round_pay(matching_round=matching_round, actor=FinanceFactory(), now=after_window)
    assert paid.status == RoundStatus.PAID
    assert (escrow_balance(a), escrow_balance(b)) == (10_000 + 75_000, 10_000 + 25_000)
    assert pool_balance(pool=pool) == 0


def test_a_payment_that_crashed_halfway_pays_once_when_run_again(two_campaigns, monkeypatch):  # noqa: F811
    pool, matching_round, a, b = two_campaigns
    matching_round, after_window = _published(matching_round)
    finance = FinanceFactory()
    real = round_services.round_set_status

    def crash(**kwargs):  # the worker dies after the ledger posting, before the round is marked paid
        raise SystemExit("killed")

    monkeypatch.setattr(round_services, "round_set_status", crash)
    with pytest.raises(SystemExit):
        round_pay(matching_round=matching_round, actor=finance, now=after_window)
    monkeypatch.setattr(round_services, "round_set_status", real)
    assert pool_balance(pool=pool) == 100_000  # nothing moved: the posting went with the transaction
    assert not Allocation.objects.filter(round=matching_round, paid_at__isnull=False).exists()

    round_pay(matching_round=matching_round, actor=finance, now=after_window)
    with pytest.raises(Conflict):
        round_pay(matching_round=matching_round, actor=finance, now=after_window)
    assert LedgerTransaction.objects.filter(reference=f"round:{matching_round.pk}").count() == 1
    assert (escrow_balance(a), escrow_balance(b)) == (10_000 + 75_000, 10_000 + 25_000)
    assert pool_balance(pool=pool) == 0
    assert invariant_problems() == []


def test_ending_rounds_again_after_a_crash_freezes_each_round_once(two_campaigns, monkeypatch):  # noqa: F811
    _pool, matching_round, _a, _b = two_campaigns
    later = matching_round.ends_at + timedelta(seconds=1)
    real = round_services._round_freeze

    def freeze_then_die(matching_round):
        real(matching_round)
        raise SystemExit("killed")

    monkeypatch.setattr(round_services, "_round_freeze", freeze_then_die)
    with pytest.raises(SystemExit):
        rounds_end_due(now=later)
    monkeypatch.setattr(round_services, "_round_freeze", real)
    matching_round.refresh_from_db()
    assert matching_round.status == RoundStatus.OPEN
    assert not Allocation.objects.filter(round=matching_round).exists()
    assert rounds_end_due(now=later) == [matching_round.pk]
    assert rounds_end_due(now=later) == []
    assert Allocation.objects.filter(round=matching_round).count() == 2
