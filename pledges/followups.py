"""What runs once a pledge is held, after commit, in one Celery message per pledge.

The receipt is this app's own. Apps above pledges add theirs (risk's fraud checks) when they are
ready, as lending adds its checks in ``pledge_checks``: pledges cannot import them. One message
for all of them, ``pledges.tasks.pledge_held_follow_up``, because each message costs the web
process its serialisation and a broker round trip on every pledge (benchmarks/README.md).

Each job is idempotent on its own (one receipt per pledge, one fraud check per pledge), so the
task may run them all again on a retry; one job failing does not keep the others from running.
"""

import logging
from collections.abc import Callable

from .notifications import pledge_receipt_send

logger = logging.getLogger(__name__)

# Each is called as ``follow_up(pledge_id=, ip=)`` with the client address the pledge came from
# (None when unknown: the sweeper's reconciliation, a management command).
_FOLLOW_UPS: list[Callable] = []


def pledge_follow_up_register(*, follow_up: Callable) -> None:
    """Run ``follow_up(pledge_id=, ip=)`` after every pledge is held, in the receipt's message."""
    if follow_up not in _FOLLOW_UPS:
        _FOLLOW_UPS.append(follow_up)


def pledge_follow_ups_run(*, pledge_id: int, ip: str | None = None) -> int:
    """Send the receipt of a held pledge and run the registered follow-ups; return the e-mails sent.

    Every job runs even if an earlier one raised; the first exception is raised afterwards, so
    the task's retry (an OSError from the mail server) runs them all again, each doing only what
    it has not done yet.
    """
    sent, failure = 0, None
    try:
        sent = pledge_receipt_send(pledge_id=pledge_id)
    except Exception as error:
        logger.exception("The receipt of pledge %s failed", pledge_id)
        failure = error
    for follow_up in _FOLLOW_UPS:
        try:
            follow_up(pledge_id=pledge_id, ip=ip)
        except Exception as error:
            logger.exception("Follow-up %s of pledge %s failed", follow_up.__name__, pledge_id)
            failure = failure or error
    if failure is not None:
        raise failure
    return sent
