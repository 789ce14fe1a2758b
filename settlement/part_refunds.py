"""Refunding a batch of pledges' parts: the one way the holdback and the remainder give money back.

A part is some of what a pledge paid (its share of a holdback, of a remainder). A batch goes in
two steps with the caller's own bookkeeping between them:

1. ``send``: the gateway first, outside any lock, one partial refund per pledge keyed by it (a
   raised pledge's part is drawn on its charges newest first, see
   ``pledges.selectors.pledge_partial_refund_requests``). A refusal raises the flow's error.
2. ``post``: inside the caller's short transaction, which has just recorded the batch and knows
   which parts nobody posted before, the ledger postings of exactly those parts.

A worker killed between the two sends the same keys again, which the gateway answers with its
first result, and the ledger posts each key once: every part is refunded exactly once.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from escrow.gateway import get_gateway
from escrow.ledger import Posting, ledger_accounts_get_or_create, ledger_post_many
from pledges.selectors import pledge_partial_refund_requests


@dataclass(frozen=True)
class PartRefund:
    """One pledge's part to refund: to ``backer_id``, drawn on the charge ``charge_reference``."""

    pledge_id: int
    backer_id: int
    amount: int
    charge_reference: str


@dataclass(frozen=True)
class PartRefundFlow:
    """The money vocabulary of one kind of part refund (its keys, accounts, posting and error)."""

    name: str
    key: Callable[[int], str]
    charge_key: Callable[[int, int], str]
    account_specs: Callable[..., list[tuple[str, str]]]
    posting: Callable[..., Posting]
    error: type[Exception]

    def send(self, refunds: Sequence[PartRefund]) -> None:
        """Refund ``refunds`` at the gateway (outside any lock); raise ``error`` if it refuses any.

        Idempotent by key: a batch sent again gets the gateway's first answers.
        """
        if not refunds:
            return
        requests = pledge_partial_refund_requests(
            refunds=[(r.pledge_id, r.amount, r.charge_reference) for r in refunds],
            key=self.key,
            charge_key=self.charge_key,
        )
        results = get_gateway().refund_many(requests=requests)
        refused = [(r.idempotency_key, res.code) for r, res in zip(requests, results, strict=True) if not res.ok]
        if refused:
            raise self.error(f"The gateway refused {self.name} refunds for pledges {refused[:10]}")

    def post(self, *, campaign_id: int, currency: str, refunds: Sequence[PartRefund]) -> None:
        """Post the ledger transactions of ``refunds`` (call inside the transaction that records them)."""
        if not refunds:
            return
        specs = {spec for r in refunds for spec in self.account_specs(campaign_id=campaign_id, backer_id=r.backer_id)}
        accounts = ledger_accounts_get_or_create(specs=sorted(specs), currency=currency)
        ledger_post_many(
            postings=[
                self.posting(
                    pledge_id=r.pledge_id,
                    backer_id=r.backer_id,
                    campaign_id=campaign_id,
                    amount=r.amount,
                    currency=currency,
                    accounts=accounts,
                )
                for r in refunds
            ]
        )
