"""A sandbox gateway whose process dies the moment a payout has gone through (set in a worker process only).

As ``pledges.tests.dying_gateway``: the payout is the sandbox's real one, then SIGKILL, before
the ledger records it, as when a machine loses power between the processor's answer and the posting.
"""

import os
import signal

from escrow.gateway import GatewayResult, SandboxGateway


class SandboxGatewayDyingAfterPayout(SandboxGateway):
    def payout(self, *, idempotency_key: str, amount: int, currency: str, destination: str) -> GatewayResult:
        result = super().payout(
            idempotency_key=idempotency_key, amount=amount, currency=currency, destination=destination
        )
        os.kill(os.getpid(), signal.SIGKILL)
        return result
