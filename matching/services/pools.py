"""Pools: created and checked whole, funded through the gateway, closed with the rest given back or rolled on."""

import hashlib
import json
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from accounts.services import audit_record
from crowdfund_site.exceptions import Conflict, InvalidInput, NotAllowed, PaymentDeclined, PaymentUnavailable
from crowdfund_site.money import check_amount, currency_exponent, format_amount
from escrow.gateway import RefundRequest, get_gateway
from escrow.ledger import ledger_accounts_get_or_create, ledger_post
from escrow.vocabulary import (
    pool_charge_key,
    pool_deposit_account_specs,
    pool_deposit_posting,
    pool_refund_part_key,
    pool_refund_posting,
    pool_rollover_account_specs,
    pool_rollover_posting,
)
from projects.models import Campaign, Category, FundingModel

from .. import allocation as math
from ..models import (
    POOL_DESCRIPTION_MAX_LENGTH,
    POOL_RATIO_MAX_BPS,
    Allocation,
    LeftoverChoice,
    Pool,
    PoolMode,
    RoundStatus,
)
from ..selectors import pool_balance, user_may_act_for, user_may_sponsor


def _is_staff(user) -> bool:
    return user is not None and user.is_active and (user.is_staff or user.is_superuser)


def _check_cap(value: int | None, *, pool_amount: int, currency: str, field: str) -> int | None:
    if value is None:
        return None
    check_amount(value, currency)
    if value > pool_amount:
        raise InvalidInput(
            _("A cap of %(cap)s is more than the pool, %(pool)s.")
            % {"cap": format_amount(value, currency), "pool": format_amount(pool_amount, currency)},
            code="cap_above_pool",
            field=field,
        )
    return value


def _check_dates(starts_at: datetime, ends_at: datetime) -> None:
    if ends_at <= starts_at:
        raise InvalidInput(_("The end must come after the start."), code="ends_before_start", field="ends_at")


# Slugs the pool pages' own paths take (``matching/urls.py``): a pool called "New" is ``new-pool``.
_RESERVED_SLUGS = {"new"}


def _unique_slug(name: str) -> str:
    base = slugify(name)[:120] or "pool"
    if base in _RESERVED_SLUGS:
        base = f"{base}-pool"
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
    accepts_applications: bool = False,
    idempotency_key: str = "",
    request_fingerprint: str = "",
) -> Pool:
    """Create an unfunded pool for ``sponsor``; ``pool_fund`` then charges it. Return the pool.

    ``actor`` is the sponsor, or staff acting on their behalf. Eligible are ``categories``,
    ``campaigns`` (the list staff approved), and with ``accepts_applications`` the campaigns
    that apply and staff accept (``pool_application_decide``). A quadratic pool without a
    per-campaign cap gets the default (10 % of the pool). Everything is checked before the one
    transaction that writes the pool, its eligibility and the audit event.

    Raises InvalidInput (amount, currency, caps above the pool, dates, mode, no eligibility),
    NotAllowed (not a sponsor, acting for someone else, a campaign of the sponsor's own).
    """
    name = (name or "").strip()
    if not name:
        raise InvalidInput(_("Give the pool a name."), code="name_required", field="name")
    currency_exponent(currency)
    check_amount(amount, currency)
    if len(description or "") > POOL_DESCRIPTION_MAX_LENGTH:
        raise InvalidInput(_("The description is too long."), code="description_too_long", field="description")
    if mode not in PoolMode.values:
        raise InvalidInput(f"Unknown matching mode {mode!r}.", code="invalid_mode", field="mode")
    if not user_may_act_for(user=actor, sponsor_id=sponsor.pk):
        raise NotAllowed(_("Only the sponsor or platform staff can create this pool."), code="not_allowed")
    if not user_may_sponsor(user=sponsor):
        raise NotAllowed(_("Only members of the Sponsors group can put up a matching pool."), code="not_a_sponsor")
    _check_dates(starts_at, ends_at)
    if mode == PoolMode.FIXED_RATIO and not (isinstance(ratio_bps, int) and 0 < ratio_bps <= POOL_RATIO_MAX_BPS):
        raise InvalidInput(
            _("The ratio is a positive number of basis points."), code="invalid_ratio", field="ratio_bps"
        )
    if mode == PoolMode.QUADRATIC and per_campaign_cap is None:
        # At least one minor unit: 10 % of a pool under 0.10 rounds down to nothing.
        per_campaign_cap = max(math.default_quadratic_cap(amount), 1)
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
    if not campaigns and not categories and not accepts_applications:
        raise InvalidInput(
            _("Say which campaigns the pool matches, or let campaigns apply."),
            code="eligibility_required",
            field="campaigns",
        )
    own = [c for c in campaigns if c.initiator_id == sponsor.pk]
    if own:
        raise NotAllowed(_("A sponsor cannot match their own campaign."), code="own_campaign", field="campaigns")
    if any(c.funding_model == FundingModel.DEBT for c in campaigns):
        raise InvalidInput(_("Loans (debt campaigns) are not matched."), code="debt_campaign", field="campaigns")
    if any(c.currency != currency for c in campaigns):
        raise InvalidInput(_("Every campaign of a pool raises in the pool's currency."), code="currency_mismatch")
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
            accepts_applications=accepts_applications,
            starts_at=starts_at,
            ends_at=ends_at,
            idempotency_key=idempotency_key,
            request_fingerprint=request_fingerprint,
            **caps,
        )
        pool.categories.set(categories)
        pool.campaigns.set(campaigns)
        audit_record(actor=actor, action="matching_pool_create", obj=pool, details={"amount": amount})
    return pool


def _pool_request_fingerprint(*, payment_token: str, fields: dict) -> str:
    """Return a hash of what a pool request asks for: every field, eligibility by id, and the card."""
    canonical = {
        **{k: v for k, v in fields.items() if k not in ("categories", "campaigns", "sponsor", "actor")},
        "sponsor": fields["sponsor"].pk,
        "categories": sorted(c.pk for c in fields.get("categories", ())),
        "campaigns": sorted(c.pk for c in fields.get("campaigns", ())),
        "payment_token": payment_token,
    }
    body = json.dumps(canonical, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def pool_create_and_fund(*, actor, sponsor, idempotency_key: str, payment_token: str, **fields) -> Pool:
    """Create a pool (``pool_create``'s arguments) and charge it (``pool_fund``); return the funded pool.

    Idempotent per (sponsor, idempotency_key): the key is stored on the pool under a unique
    constraint with a fingerprint of the request, so a retry with the same key and body answers
    with the same pool and charges it at most once (the gateway charge is keyed by pool), also
    after a gateway failure (503) or a declined card (402, declined again); the same key with a
    different body raises Conflict ``idempotency_key_reused`` and changes nothing. A request
    refused by ``pool_create``'s checks writes nothing. Raises what ``pool_create`` and
    ``pool_fund`` raise.
    """
    if not user_may_act_for(user=actor, sponsor_id=sponsor.pk):
        # Before the key is looked up: nobody learns which keys another sponsor used.
        raise NotAllowed("Only the sponsor or platform staff can create this pool.", code="not_allowed")
    key = (idempotency_key or "").strip()
    if not key or len(key) > 255:
        raise InvalidInput(
            "Creating a pool needs an idempotency key of 1 to 255 characters.",
            code="idempotency_key_required",
            field="idempotency_key",
        )
    fingerprint = _pool_request_fingerprint(payment_token=payment_token, fields={**fields, "sponsor": sponsor})
    if not (payment_token or "").strip():
        raise InvalidInput(_("Choose a payment method."), code="payment_token_required", field="payment_token")
    pool = Pool.objects.filter(sponsor=sponsor, idempotency_key=key).first()
    if pool is None:
        try:
            pool = pool_create(
                actor=actor,
                sponsor=sponsor,
                idempotency_key=key,
                request_fingerprint=fingerprint,
                **fields,
            )
        except IntegrityError:
            # A concurrent request with the same key created it first: answer with that one.
            pool = Pool.objects.filter(sponsor=sponsor, idempotency_key=key).first()
            if pool is None:
                raise
    if pool.request_fingerprint != fingerprint:
        raise Conflict(
            _("This idempotency key was already used for a different pool."),
            code="idempotency_key_reused",
            field="idempotency_key",
        )
    return pool_fund(pool=pool, actor=actor, payment_token=payment_token)


def pool_fund(*, pool: Pool, actor, payment_token: str) -> Pool:
    """Charge the sponsor for the pool and deposit it in the pool's ledger account; return the pool.

    Idempotent: the gateway charge and the deposit are keyed by pool, so a retry (or a second
    call on a funded pool) charges nothing again. The charge happens outside any lock; the
    deposit, the pool's funded mark and the audit event are one transaction under the pool's lock.
    Raises NotAllowed (not the sponsor or staff), PaymentDeclined, PaymentUnavailable (retry).
    """
    if not user_may_act_for(user=actor, sponsor_id=pool.sponsor_id):
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
    """Close a pool past its end; what is left goes back to the sponsor or on to their next pool.

    First, under the pool's lock, it checks that no round is running or waiting to be paid and
    that no matched money is still in a campaign's escrow (it could come back), then fixes the
    amount left and marks the pool closed (no round can open after). Then, as the sponsor chose
    (``pool_choose_leftover``): the gateway refunds that much, outside any lock, against the
    pool's own charge and those of pools that rolled into it, none above its charge
    (``_refund_parts``), and the refund is posted pool -> sponsor; or, in the closing transaction
    itself, it is posted pool -> next pool, whose rounds then share it. Each step is keyed by
    pool: a retry after a crash finishes the job and moves nothing twice. Raises NotAllowed (not
    the sponsor or staff), Conflict (not over, rounds or matched money outstanding, the next pool
    closed, the choice changed meanwhile, a leftover the charges cannot take back),
    PaymentUnavailable (retry).
    """
    if not user_may_act_for(user=actor, sponsor_id=pool.sponsor_id):
        raise NotAllowed("Only the sponsor or platform staff can close this pool.", code="not_allowed")
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        # A roll-over needs no gateway: it is closed and posted in this one transaction with the
        # next pool's row locked too, so the next pool cannot close between our check and our
        # posting and be left holding money. Both rows are locked in id order (two pools rolling
        # into each other, closed at once, must not deadlock).
        next_pool_id = Pool.objects.values_list("next_pool_id", flat=True).get(pk=pool.pk)
        ids = sorted({pool.pk} | ({next_pool_id} if next_pool_id else set()))
        locked = {p.pk: p for p in Pool.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
        pool = locked[pool.pk]
        if pool.leftover_returned_at is not None:
            return pool
        if pool.next_pool_id != next_pool_id:
            raise Conflict("The pool's choice for what is left changed meanwhile; try again.", code="choice_changed")
        if pool.closed_at is None:
            if pool.funded_at is None or now < pool.ends_at:
                raise Conflict("The pool has not ended yet.", code="pool_not_over")
            if pool.rounds.filter(status__in=[RoundStatus.OPEN, RoundStatus.ENDED, RoundStatus.CHALLENGE]).exists():
                raise Conflict("A round of this pool is not finished.", code="round_outstanding")
            unsettled = Allocation.objects.filter(round__pool=pool, paid_at__isnull=False, settled_at__isnull=True)
            if unsettled.exists():
                raise Conflict("Matched money is still with campaigns that have not settled.", code="match_outstanding")
            if pool.next_pool_id is not None and Pool.objects.filter(pk=pool.next_pool_id, closed_at__isnull=False):
                raise Conflict(
                    "The pool chosen for what is left is closed: choose another, or the sponsor.",
                    code="next_pool_closed",
                )
            pool.closed_at = now
            pool.leftover = pool_balance(pool=pool)
            pool.save(update_fields=["closed_at", "leftover"])
            audit_record(actor=actor, action="matching_pool_close", obj=pool, details={"leftover": pool.leftover})
        if pool.next_pool_id is not None:
            _leftover_roll_over(pool)
            return pool
    parts: list[RefundRequest] = []
    if pool.leftover and pool.next_pool_id is None and pool.leftover_returned_at is None:
        parts = _refund_parts(pool)
        results = get_gateway().refund_many(requests=parts)
        failed = next((r for r in results if not r.ok), None)
        if failed is not None:
            raise PaymentUnavailable(failed.message or "The refund did not go through; try again.")
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
                audit_record(
                    actor=actor,
                    action="matching_pool_refund",
                    obj=pool,
                    details={"parts": [{"key": p.idempotency_key, "amount": p.amount} for p in parts]},
                )
            pool.leftover_returned_at = timezone.now()
            pool.save(update_fields=["leftover_returned_at"])
    return pool


def _leftover_roll_over(pool: Pool) -> None:
    """Post a closed pool's leftover on to its next pool and mark it returned (inside the close's lock)."""
    if pool.leftover:
        ids = {"pool_id": pool.pk, "next_pool_id": pool.next_pool_id}
        accounts = ledger_accounts_get_or_create(specs=pool_rollover_account_specs(**ids), currency=pool.currency)
        ledger_post(
            posting=pool_rollover_posting(amount=pool.leftover, currency=pool.currency, accounts=accounts, **ids)
        )
    pool.leftover_returned_at = timezone.now()
    pool.save(update_fields=["leftover_returned_at"])


def _refund_parts(pool: Pool) -> list[RefundRequest]:
    """Return the gateway refunds that give a closed pool's leftover back, one per charge it came from.

    The pool's own charge first (up to its amount), then, for what rolled in, the pools it came
    from in the order they rolled over, each up to what it passed on and its own charge, and so on
    down their own roll-overs. So no refund exceeds its charge and what rolled in goes back to the
    charge that paid it. The rows read are fixed once the pool is closed, so a retry sends the same
    parts under the same keys. Raises Conflict, before anything moves, if the charges cannot cover
    the leftover (the ledger would be wrong).
    """
    parts: list[RefundRequest] = []

    def give_back(source: Pool, limit: int) -> int:
        own = min(source.amount, limit)
        if own:
            key = pool_refund_part_key(pool.pk, source.pk)
            parts.append(RefundRequest(idempotency_key=key, charge_reference=source.payment_reference, amount=own))
        taken = own
        rolled_in = Pool.objects.filter(next_pool=source, leftover_returned_at__isnull=False, leftover__gt=0)
        for earlier in rolled_in.order_by("leftover_returned_at", "pk"):
            if taken == limit:
                break
            taken += give_back(earlier, min(earlier.leftover, limit - taken))
        return taken

    remaining = pool.leftover - give_back(pool, pool.leftover)
    if remaining:
        raise Conflict(
            f"What is left, {format_amount(pool.leftover, pool.currency)}, is more than the sponsor's charges can "
            "take back: the pool stays closed with it, for staff to look into.",
            code="leftover_exceeds_charges",
        )
    return parts


def pool_choose_leftover(*, pool: Pool, actor, choice: str, next_pool: Pool | None = None) -> Pool:
    """Record what is to happen to what is left when the pool closes: back to the sponsor, or on.

    ``choice`` is a ``LeftoverChoice``; rolling over names the sponsor's next pool, in the same
    currency, funded and not closed, which then shares it in its rounds. The choice can change
    until the pool closes, and is audited. Raises NotAllowed (not the sponsor or staff; a next
    pool of another sponsor), InvalidInput (unknown choice, no or a wrong next pool), Conflict
    (the pool is closed).
    """
    if not user_may_act_for(user=actor, sponsor_id=pool.sponsor_id):
        raise NotAllowed("Only the sponsor or platform staff can choose this.", code="not_allowed")
    if choice not in LeftoverChoice.values:
        raise InvalidInput(f"Unknown choice {choice!r}.", code="invalid_choice", field="choice")
    if choice == LeftoverChoice.REFUND:
        next_pool = None
    elif next_pool is None:
        raise InvalidInput("Say which pool gets what is left.", code="next_pool_required", field="next_pool")
    elif next_pool.pk == pool.pk:
        raise InvalidInput("A pool cannot roll over into itself.", code="next_pool_itself", field="next_pool")
    elif next_pool.sponsor_id != pool.sponsor_id:
        raise NotAllowed("What is left can only go to the same sponsor's pool.", code="next_pool_other_sponsor")
    elif next_pool.currency != pool.currency:
        raise InvalidInput("The next pool is in another currency.", code="currency_mismatch", field="next_pool")
    elif next_pool.funded_at is None or next_pool.closed_at is not None:
        raise InvalidInput("The next pool must be funded and open.", code="next_pool_not_open", field="next_pool")
    with transaction.atomic(durable=True):
        pool = Pool.objects.select_for_update().get(pk=pool.pk)
        if pool.closed_at is not None:
            raise Conflict("The pool is closed: what was left is gone already.", code="pool_closed")
        pool.leftover_choice = choice
        pool.next_pool = next_pool
        pool.save(update_fields=["leftover_choice", "next_pool"])
        audit_record(
            actor=actor,
            action="matching_pool_leftover_choice",
            obj=pool,
            details={"choice": choice, "next_pool": next_pool.pk if next_pool else None},
        )
    return pool
