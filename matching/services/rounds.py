"""Rounds: opened, ended and frozen, challenged, paid into campaign escrows, cancelled."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.services import audit_record
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed
from crowdfund_site.money import format_amount
from crowdfund_site.transitions import ensure_transition_allowed
from escrow.ledger import ledger_accounts_get_or_create, ledger_post
from escrow.vocabulary import (
    round_allocate_account_specs,
    round_allocate_posting,
)
from pledges.models import Pledge
from projects.models import Campaign, CampaignStatus

from .. import allocation as math
from ..models import (
    ROUND_TRANSITIONS,
    Allocation,
    AllocationOutcome,
    Pool,
    Round,
    RoundExclusion,
    RoundStatus,
    RoundStatusChange,
)
from ..selectors import (
    CHALLENGE_WINDOW,
    pool_balance,
    round_budget,
    round_compute,
    round_contributions,
    user_may_act_for,
)
from .pools import _check_dates, _is_staff


def round_create(*, pool: Pool, actor, starts_at: datetime, ends_at: datetime) -> Round:
    """Open a round of a funded pool between ``starts_at`` and ``ends_at``; return it.

    The round lies within the pool's own dates: a round running past the pool's end would keep
    the pool from closing. Raises NotAllowed (not the sponsor or staff), InvalidInput (ends
    before it starts, outside the pool's dates), Conflict (the pool is not funded yet, or closed).
    """
    if not user_may_act_for(user=actor, sponsor_id=pool.sponsor_id):
        raise NotAllowed("Only the sponsor or platform staff can open a round.", code="not_allowed")
    _check_dates(starts_at, ends_at)
    with transaction.atomic(durable=True):
        pool = Pool.objects.select_for_update().get(pk=pool.pk)
        if pool.funded_at is None:
            raise Conflict("The pool is not funded yet.", code="pool_not_funded")
        if pool.closed_at is not None:
            raise Conflict("The pool is closed.", code="pool_closed")
        if starts_at < pool.starts_at or ends_at > pool.ends_at:
            raise InvalidInput(
                "A round runs within its pool's dates, "
                f"{pool.starts_at.isoformat(timespec='minutes')} to {pool.ends_at.isoformat(timespec='minutes')}.",
                code="round_outside_pool",
                field="ends_at" if ends_at > pool.ends_at else "starts_at",
            )
        matching_round = Round.objects.create(pool=pool, starts_at=starts_at, ends_at=ends_at)
        audit_record(actor=actor, action="matching_round_create", obj=matching_round)
    return matching_round


def round_set_status(*, matching_round: Round, to_status: str, actor=None, reason: str = "") -> Round:
    """Move a locked round to ``to_status`` if the transitions table allows it, and record the move.

    The caller holds the round's row lock inside a transaction. Raises Conflict otherwise.
    """
    ensure_transition_allowed(
        transitions=ROUND_TRANSITIONS, current=matching_round.status, target=to_status, what="round"
    )
    RoundStatusChange.objects.create(
        round=matching_round,
        from_status=matching_round.status,
        to_status=to_status,
        actor=actor if actor is not None and actor.pk else None,
        reason=reason[:255],
    )
    matching_round.status = to_status
    matching_round.save(update_fields=["status", "ended_at", "challenge_ends_at", "paid_at", "budget"])
    return matching_round


def _round_lock(round_id: int) -> Round:
    return Round.objects.select_for_update().select_related("pool").get(pk=round_id)


def round_end(*, matching_round: Round, actor=None, now: datetime | None = None) -> Round:
    """End an open round whose time is up: freeze its allocation into rows; return the round.

    Runs under the round's lock; running it again on an ended round raises Conflict. Raises
    Conflict (not open, or not over yet).
    """
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        matching_round = _round_lock(matching_round.pk)
        if matching_round.status == RoundStatus.OPEN and now < matching_round.ends_at:
            raise Conflict("The round has not ended yet.", code="round_not_over")
        ensure_transition_allowed(
            transitions=ROUND_TRANSITIONS, current=matching_round.status, target=RoundStatus.ENDED, what="round"
        )
        matching_round.ended_at = now
        result = _round_freeze(matching_round)
        round_set_status(
            matching_round=matching_round,
            to_status=RoundStatus.ENDED,
            actor=actor,
            reason=f"{len(result.allocations)} campaigns matched, {result.left} left in the pool",
        )
    return matching_round


def rounds_end_due(*, now: datetime | None = None, limit: int = 20) -> list[int]:
    """End the open rounds whose time is up and publish their results; return their ids.

    Each round is claimed with ``select_for_update(skip_locked=True)`` and ended, frozen and put
    in its challenge window in its own transaction, so two workers never end the same round and
    a worker killed halfway leaves every round either open or published.
    """
    now = now or timezone.now()
    done: list[int] = []
    for _ in range(limit):
        with transaction.atomic(durable=True):
            matching_round = (
                Round.objects.select_for_update(skip_locked=True)
                .select_related("pool")
                .filter(status=RoundStatus.OPEN, ends_at__lte=now)
                .order_by("ends_at", "id")
                .first()
            )
            if matching_round is None:
                break
            matching_round.ended_at = now
            result = _round_freeze(matching_round)
            round_set_status(
                matching_round=matching_round,
                to_status=RoundStatus.ENDED,
                reason=f"{len(result.allocations)} campaigns matched, {result.left} left in the pool",
            )
            matching_round.challenge_ends_at = now + CHALLENGE_WINDOW
            round_set_status(matching_round=matching_round, to_status=RoundStatus.CHALLENGE, reason="results published")
            done.append(matching_round.pk)
    return done


def _round_freeze(matching_round: Round) -> math.AllocationResult:
    """Compute the round's allocation and store it as its rows, replacing any earlier ones."""
    if matching_round.status == RoundStatus.OPEN:
        # Fixed now, so an exclusion's recomputation and settlement share the same amount.
        matching_round.budget = round_budget(matching_round=matching_round)
    result, stats = round_compute(matching_round=matching_round)
    Allocation.objects.filter(round=matching_round).delete()
    Allocation.objects.bulk_create(
        [
            Allocation(
                round=matching_round,
                campaign_id=cid,
                amount=amount,
                contributions=stats[cid][0],
                backers=stats[cid][1],
                raised=stats[cid][2],
            )
            for cid, amount in result.allocations.items()
        ]
    )
    return result


def round_exclude_contribution(
    *, matching_round: Round, pledge: Pledge, actor, reason: str, now: datetime | None = None
) -> Round:
    """Exclude a contribution found fraudulent from a round in its challenge window and recompute.

    Staff only, with a reason; the exclusion, the recomputed allocation and the audit event are
    one transaction under the round's lock. Excluding the same pledge again changes nothing.
    Raises NotAllowed (not staff), InvalidInput (no reason, a pledge not in the round), Conflict
    (the round is not in its challenge window, or the window is over: what is paid is what
    everyone could challenge).
    """
    if not _is_staff(actor):
        raise NotAllowed("Only platform staff can exclude contributions.", code="not_allowed")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Give a reason for excluding it.", code="reason_required", field="reason")
    with transaction.atomic(durable=True):
        matching_round = _round_lock(matching_round.pk)
        if matching_round.status != RoundStatus.CHALLENGE:
            raise Conflict(
                f"This round is {matching_round.get_status_display().lower()}: contributions can be excluded "
                "only in its challenge window, once its results are published and before it is paid.",
                code="invalid_state",
            )
        now = now or timezone.now()
        if matching_round.challenge_ends_at is not None and now >= matching_round.challenge_ends_at:
            raise Conflict(
                f"The challenge window closed at {matching_round.challenge_ends_at:%Y-%m-%d %H:%M} UTC: "
                "contributions can no longer be excluded.",
                code="challenge_window_over",
            )
        if RoundExclusion.objects.filter(round=matching_round, pledge=pledge).exists():
            return matching_round
        if not round_contributions(matching_round=matching_round).filter(pk=pledge.pk).exists():
            raise InvalidInput("That pledge does not count in this round.", code="not_in_round", field="pledge")
        RoundExclusion.objects.create(round=matching_round, pledge=pledge, actor=actor, reason=reason[:255])
        _round_freeze(matching_round)
        audit_record(
            actor=actor,
            action="matching_contribution_exclude",
            obj=matching_round,
            reason=reason,
            details={"pledge": pledge.pk},
        )
    return matching_round


def round_publish(*, matching_round: Round, actor=None, now: datetime | None = None) -> Round:
    """Publish an ended round's results and open its challenge window (3 days); return the round."""
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        matching_round = _round_lock(matching_round.pk)
        matching_round.challenge_ends_at = now + CHALLENGE_WINDOW
        round_set_status(matching_round=matching_round, to_status=RoundStatus.CHALLENGE, actor=actor)
    return matching_round


def round_pay(*, matching_round: Round, actor, now: datetime | None = None) -> Round:
    """Pay a round whose challenge window is over: pool -> campaign escrows in one ledger transaction.

    Holds the round's lock, then the campaigns' locks in id order (the lock settlement takes to
    close a campaign): a campaign no longer live at this point gets nothing (its allocation is
    marked not paid and the money stays in the pool), so matched money never reaches a campaign
    that is being settled. Raises NotAllowed (not staff), Conflict (not in the challenge
    window, window not over, already paid, the pool holds less than the round).
    """
    if not _is_staff(actor) or not actor.has_perm("matching.pay_round"):
        raise NotAllowed("Only finance staff can pay a matching round.", code="not_allowed")
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        matching_round = _round_lock(matching_round.pk)
        ensure_transition_allowed(
            transitions=ROUND_TRANSITIONS, current=matching_round.status, target=RoundStatus.PAID, what="round"
        )
        if matching_round.challenge_ends_at and now < matching_round.challenge_ends_at:
            raise Conflict("The challenge window is not over yet.", code="challenge_window_open")
        pool = matching_round.pool
        allocations = list(matching_round.allocations.order_by("campaign_id"))
        live = set(
            Campaign.objects.select_for_update()
            .filter(pk__in=[a.campaign_id for a in allocations], status=CampaignStatus.LIVE, settled_at__isnull=True)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        paying = {a.campaign_id: a.amount for a in allocations if a.campaign_id in live}
        total = sum(paying.values())
        if total > pool_balance(pool=pool):
            raise Conflict("The pool holds less than this round allocates.", code="pool_short")
        if paying:
            accounts = ledger_accounts_get_or_create(
                specs=round_allocate_account_specs(pool_id=pool.pk, campaign_ids=sorted(paying)),
                currency=pool.currency,
            )
            ledger_post(
                posting=round_allocate_posting(
                    round_id=matching_round.pk,
                    pool_id=pool.pk,
                    allocations=paying,
                    currency=pool.currency,
                    accounts=accounts,
                )
            )
        Allocation.objects.filter(round=matching_round, campaign_id__in=paying).update(paid_at=now)
        Allocation.objects.filter(round=matching_round).exclude(campaign_id__in=paying).update(
            outcome=AllocationOutcome.NOT_PAID, settled_at=now
        )
        matching_round.paid_at = now
        round_set_status(
            matching_round=matching_round,
            to_status=RoundStatus.PAID,
            actor=actor,
            reason=f"{format_amount(total, pool.currency)} to {len(paying)} campaigns",
        )
        audit_record(actor=actor, action="matching_round_pay", obj=matching_round, details={"amount": total})
    return matching_round


def round_cancel(*, matching_round: Round, actor, reason: str) -> Round:
    """Cancel a round that is not paid; nothing leaves the pool. Raises NotAllowed, InvalidInput, Conflict."""
    if not _is_staff(actor):
        raise NotAllowed("Only platform staff can cancel a matching round.", code="not_allowed")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Give a reason for cancelling.", code="reason_required", field="reason")
    with transaction.atomic(durable=True):
        matching_round = _round_lock(matching_round.pk)
        round_set_status(matching_round=matching_round, to_status=RoundStatus.CANCELLED, actor=actor, reason=reason)
        audit_record(actor=actor, action="matching_round_cancel", obj=matching_round, reason=reason)
    return matching_round
