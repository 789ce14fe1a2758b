"""Matching services: pools funded by sponsors, rounds that share them, matched money settling.

Guarantees:

- A pool is checked whole before anything is written (a positive amount, caps within it, dates
  in order, a sponsor who may sponsor and does not match their own campaign); a refusal writes
  nothing. Its money is charged through the gateway, outside any lock and keyed by pool, and
  deposited in the pool's own ledger account by an idempotent posting.
- A round moves through ``ROUND_TRANSITIONS`` only, each move under the round's row lock and
  recorded (who, when, from, to, why). Ending it freezes the allocation; paying it moves every
  allocation pool -> campaign escrow in one ledger transaction keyed by round, so a round is
  paid once whatever is retried.
- Matched money follows its campaign: ``matching_campaign_settle`` (called by settlement while
  it holds the campaign's lock) releases it with the campaign's funds or returns it to the pool.
"""

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.services import audit_record
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed, PaymentDeclined, PaymentUnavailable
from crowdfund_site.money import check_amount, currency_exponent, format_amount
from crowdfund_site.transitions import ensure_transition_allowed
from escrow.gateway import get_gateway
from escrow.ledger import ledger_accounts_get_or_create, ledger_post
from escrow.vocabulary import (
    allocation_release_posting,
    allocation_return_posting,
    allocation_settle_account_specs,
    pool_charge_key,
    pool_deposit_account_specs,
    pool_deposit_posting,
    pool_refund_key,
    pool_refund_posting,
    round_allocate_account_specs,
    round_allocate_posting,
)
from pledges.models import Pledge
from projects.models import Campaign, CampaignStatus, Category

from . import allocation as math
from .models import (
    ROUND_TRANSITIONS,
    SPONSORS_GROUP,
    Allocation,
    AllocationOutcome,
    Pool,
    PoolMode,
    Round,
    RoundExclusion,
    RoundStatus,
    RoundStatusChange,
)
from .selectors import CHALLENGE_WINDOW, pool_balance, round_compute, round_contributions


def _may_sponsor(user) -> bool:
    return user is not None and user.is_active and user.groups.filter(name=SPONSORS_GROUP).exists()


def _is_staff(user) -> bool:
    return user is not None and user.is_active and (user.is_staff or user.is_superuser)


def _check_cap(value: int | None, *, pool_amount: int, currency: str, field: str) -> int | None:
    if value is None:
        return None
    check_amount(value, currency)
    if value > pool_amount:
        raise InvalidInput(
            f"A cap of {format_amount(value, currency)} is more than the pool, {format_amount(pool_amount, currency)}.",
            code="cap_above_pool",
            field=field,
        )
    return value


def _check_dates(starts_at: datetime, ends_at: datetime) -> None:
    if ends_at <= starts_at:
        raise InvalidInput("The end must come after the start.", code="ends_before_start", field="ends_at")


def _unique_slug(name: str) -> str:
    base = slugify(name)[:120] or "pool"
    slug, n = base, 1
    while Pool.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def pool_create(
    *,
    actor,
    sponsor,
    name: str,
    currency: str,
    amount: int,
    mode: str,
    starts_at: datetime,
    ends_at: datetime,
    description: str = "",
    ratio_bps: int = math.RATIO_ONE_TO_ONE_BPS,
    per_contribution_cap: int | None = None,
    per_backer_cap: int | None = None,
    per_campaign_cap: int | None = None,
    minimum_contribution: int = math.DEFAULT_QUADRATIC_MINIMUM,
    pairwise_damping: int | None = None,
    categories: list[Category] | tuple = (),
    campaigns: list[Campaign] | tuple = (),
) -> Pool:
    """Create an unfunded pool for ``sponsor``; ``pool_fund`` then charges it. Return the pool.

    ``actor`` is the sponsor, or staff acting on their behalf. A quadratic pool without a
    per-campaign cap gets the default (10 % of the pool). Everything is checked before the one
    transaction that writes the pool, its eligibility and the audit event.

    Raises InvalidInput (amount, currency, caps above the pool, dates, mode, no eligibility),
    NotAllowed (not a sponsor, acting for someone else, a campaign of the sponsor's own).
    """
    name = (name or "").strip()
    if not name:
        raise InvalidInput("Give the pool a name.", code="name_required", field="name")
    currency_exponent(currency)
    check_amount(amount, currency)
    if mode not in PoolMode.values:
        raise InvalidInput(f"Unknown matching mode {mode!r}.", code="invalid_mode", field="mode")
    if actor is None or (actor.pk != sponsor.pk and not _is_staff(actor)):
        raise NotAllowed("Only the sponsor or platform staff can create this pool.", code="not_allowed")
    if not _may_sponsor(sponsor):
        raise NotAllowed("Only members of the Sponsors group can put up a matching pool.", code="not_a_sponsor")
    _check_dates(starts_at, ends_at)
    if mode == PoolMode.FIXED_RATIO and not (isinstance(ratio_bps, int) and 0 < ratio_bps <= 100 * 10_000):
        raise InvalidInput("The ratio is a positive number of basis points.", code="invalid_ratio", field="ratio_bps")
    if mode == PoolMode.QUADRATIC and per_campaign_cap is None:
        per_campaign_cap = math.default_quadratic_cap(amount)
    caps = {
        "per_contribution_cap": per_contribution_cap,
        "per_backer_cap": per_backer_cap,
        "per_campaign_cap": per_campaign_cap,
    }
    for field, value in caps.items():
        caps[field] = _check_cap(value, pool_amount=amount, currency=currency, field=field)
    check_amount(minimum_contribution, currency)
    if pairwise_damping is not None:
        check_amount(pairwise_damping, currency)
    campaigns = list(campaigns)
    categories = list(categories)
    if not campaigns and not categories:
        raise InvalidInput("Say which campaigns the pool matches.", code="eligibility_required", field="campaigns")
    own = [c for c in campaigns if c.initiator_id == sponsor.pk]
    if own:
        raise NotAllowed("A sponsor cannot match their own campaign.", code="own_campaign", field="campaigns")
    if any(c.currency != currency for c in campaigns):
        raise InvalidInput("Every campaign of a pool raises in the pool's currency.", code="currency_mismatch")
    with transaction.atomic(durable=True):
        pool = Pool.objects.create(
            sponsor=sponsor,
            name=name,
            slug=_unique_slug(name),
            description=description,
            currency=currency,
            amount=amount,
            mode=mode,
            ratio_bps=ratio_bps,
            minimum_contribution=minimum_contribution,
            pairwise_damping=pairwise_damping,
            starts_at=starts_at,
            ends_at=ends_at,
            **caps,
        )
        pool.categories.set(categories)
        pool.campaigns.set(campaigns)
        audit_record(actor=actor, action="matching_pool_create", obj=pool, details={"amount": amount})
    return pool


def pool_fund(*, pool: Pool, actor, payment_token: str) -> Pool:
    """Charge the sponsor for the pool and deposit it in the pool's ledger account; return the pool.

    Idempotent: the gateway charge and the deposit are keyed by pool, so a retry (or a second
    call on a funded pool) charges nothing again. The charge happens outside any lock; the
    deposit, the pool's funded mark and the audit event are one transaction under the pool's lock.
    Raises NotAllowed (not the sponsor or staff), PaymentDeclined, PaymentUnavailable (retry).
    """
    if actor is None or (actor.pk != pool.sponsor_id and not _is_staff(actor)):
        raise NotAllowed("Only the sponsor or platform staff can fund this pool.", code="not_allowed")
    if pool.funded_at is not None:
        return pool
    result = get_gateway().charge(
        idempotency_key=pool_charge_key(pool.pk), amount=pool.amount, currency=pool.currency, token=payment_token
    )
    if not result.ok:
        if result.transient:
            raise PaymentUnavailable(result.message or "The payment service is unavailable; try again.")
        raise PaymentDeclined(result.message or "The card was declined.", code=result.code or None)
    with transaction.atomic(durable=True):
        pool = Pool.objects.select_for_update().get(pk=pool.pk)
        if pool.funded_at is not None:
            return pool
        ids = {"sponsor_id": pool.sponsor_id, "pool_id": pool.pk}
        accounts = ledger_accounts_get_or_create(specs=pool_deposit_account_specs(**ids), currency=pool.currency)
        ledger_post(posting=pool_deposit_posting(amount=pool.amount, currency=pool.currency, accounts=accounts, **ids))
        pool.payment_reference = result.reference
        pool.funded_at = timezone.now()
        pool.save(update_fields=["payment_reference", "funded_at"])
        audit_record(actor=actor, action="matching_pool_fund", obj=pool, details={"amount": pool.amount})
    return pool


def pool_close(*, pool: Pool, actor, now: datetime | None = None) -> Pool:
    """Close a pool past its end and give what is left back to the sponsor; return the pool.

    First, under the pool's lock, it checks that no round is running or waiting to be paid and
    that no matched money is still in a campaign's escrow (it could come back), then fixes the
    amount left and marks the pool closed (no round can open after). Then the gateway refunds
    that much of the sponsor's charge, outside any lock, and the refund is posted pool ->
    sponsor. Both steps are keyed by pool: a retry after a crash finishes the job and moves
    nothing twice. Raises NotAllowed (not the sponsor or staff), Conflict (not over, rounds or
    matched money outstanding), PaymentUnavailable (retry).
    """
    if actor is None or (actor.pk != pool.sponsor_id and not _is_staff(actor)):
        raise NotAllowed("Only the sponsor or platform staff can close this pool.", code="not_allowed")
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        pool = Pool.objects.select_for_update().get(pk=pool.pk)
        if pool.leftover_returned_at is not None:
            return pool
        if pool.closed_at is None:
            if pool.funded_at is None or now < pool.ends_at:
                raise Conflict("The pool has not ended yet.", code="pool_not_over")
            if pool.rounds.filter(status__in=[RoundStatus.OPEN, RoundStatus.ENDED, RoundStatus.CHALLENGE]).exists():
                raise Conflict("A round of this pool is not finished.", code="round_outstanding")
            unsettled = Allocation.objects.filter(round__pool=pool, paid_at__isnull=False, settled_at__isnull=True)
            if unsettled.exists():
                raise Conflict("Matched money is still with campaigns that have not settled.", code="match_outstanding")
            pool.closed_at = now
            pool.leftover = pool_balance(pool=pool)
            pool.save(update_fields=["closed_at", "leftover"])
            audit_record(actor=actor, action="matching_pool_close", obj=pool, details={"leftover": pool.leftover})
    if pool.leftover:
        result = get_gateway().refund(
            idempotency_key=pool_refund_key(pool.pk), charge_reference=pool.payment_reference, amount=pool.leftover
        )
        if not result.ok:
            raise PaymentUnavailable(result.message or "The refund did not go through; try again.")
    with transaction.atomic(durable=True):
        pool = Pool.objects.select_for_update().get(pk=pool.pk)
        if pool.leftover_returned_at is None:
            if pool.leftover:
                ids = {"sponsor_id": pool.sponsor_id, "pool_id": pool.pk}
                accounts = ledger_accounts_get_or_create(
                    specs=pool_deposit_account_specs(**ids), currency=pool.currency
                )
                ledger_post(
                    posting=pool_refund_posting(amount=pool.leftover, currency=pool.currency, accounts=accounts, **ids)
                )
            pool.leftover_returned_at = timezone.now()
            pool.save(update_fields=["leftover_returned_at"])
    return pool


def round_create(*, pool: Pool, actor, starts_at: datetime, ends_at: datetime) -> Round:
    """Open a round of a funded pool between ``starts_at`` and ``ends_at``; return it.

    Raises NotAllowed (not the sponsor or staff), InvalidInput (ends before it starts),
    Conflict (the pool is not funded yet).
    """
    if actor is None or (actor.pk != pool.sponsor_id and not _is_staff(actor)):
        raise NotAllowed("Only the sponsor or platform staff can open a round.", code="not_allowed")
    _check_dates(starts_at, ends_at)
    with transaction.atomic(durable=True):
        pool = Pool.objects.select_for_update().get(pk=pool.pk)
        if pool.funded_at is None:
            raise Conflict("The pool is not funded yet.", code="pool_not_funded")
        if pool.closed_at is not None:
            raise Conflict("The pool is closed.", code="pool_closed")
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
    matching_round.save(update_fields=["status", "ended_at", "challenge_ends_at", "paid_at"])
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


def round_exclude_contribution(*, matching_round: Round, pledge: Pledge, actor, reason: str) -> Round:
    """Exclude a contribution found fraudulent from a round in its challenge window and recompute.

    Staff only, with a reason; the exclusion, the recomputed allocation and the audit event are
    one transaction under the round's lock. Excluding the same pledge again changes nothing.
    Raises NotAllowed (not staff), InvalidInput (no reason, a pledge not in the round), Conflict
    (the round is not in its challenge window).
    """
    if not _is_staff(actor):
        raise NotAllowed("Only platform staff can exclude contributions.", code="not_allowed")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Give a reason for excluding it.", code="reason_required", field="reason")
    with transaction.atomic(durable=True):
        matching_round = _round_lock(matching_round.pk)
        if matching_round.status != RoundStatus.CHALLENGE:
            raise Conflict("Contributions can be excluded only in the challenge window.", code="invalid_state")
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


def matching_campaign_settle(*, campaign: Campaign, release: bool) -> int:
    """Release a settling campaign's matched money to its payable, or return it to the pools; return the amount.

    Settlement calls it inside its finishing transaction, holding the campaign's row lock, so
    no round can pay into the campaign meanwhile. Each allocation's posting is keyed by the
    allocation: running it again moves nothing twice.
    """
    now = timezone.now()
    moved = 0
    allocations = list(
        Allocation.objects.select_for_update()
        .filter(campaign_id=campaign.pk, paid_at__isnull=False, settled_at__isnull=True)
        .select_related("round__pool")
        .order_by("id")
    )
    for allocation in allocations:
        pool = allocation.round.pool
        accounts = ledger_accounts_get_or_create(
            specs=allocation_settle_account_specs(pool_id=pool.pk, campaign_id=campaign.pk), currency=pool.currency
        )
        money = {"allocation_id": allocation.pk, "campaign_id": campaign.pk, "amount": allocation.amount}
        if release:
            ledger_post(posting=allocation_release_posting(currency=pool.currency, accounts=accounts, **money))
        else:
            ledger_post(
                posting=allocation_return_posting(pool_id=pool.pk, currency=pool.currency, accounts=accounts, **money)
            )
        allocation.outcome = AllocationOutcome.RELEASED if release else AllocationOutcome.RETURNED
        allocation.settled_at = now
        allocation.save(update_fields=["outcome", "settled_at"])
        moved += allocation.amount
    return moved
