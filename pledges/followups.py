"""What runs once a pledge is held or changed, after commit, in one Celery message each time.

The receipt (for a change, the change's e-mail) is this app's own. Apps above pledges add theirs
(risk's fraud checks) when they are ready, as lending adds its checks in ``pledge_checks``:
pledges cannot import them. One message for all of them, ``pledges.tasks.pledge_held_follow_up``
(``pledge_changed_follow_up`` for a change), because each message costs the web process its
serialisation and a broker round trip (benchmarks/README.md).

Each job is idempotent on its own (one receipt per pledge, one e-mail per change, one fraud check
per pledge), so the task may run them all again on a retry; one job failing does not keep the
others from running.
"""

import logging
from collections.abc import Callable

from .notifications import pledge_change_email_send, pledge_receipt_send

logger = logging.getLogger(__name__)

# Each is called as ``follow_up(pledge_id=, ip=)`` with the client address the pledge came from
# (None when unknown: the sweeper's reconciliation, a management command).
_FOLLOW_UPS: list[Callable] = []


def pledge_follow_up_register(*, follow_up: Callable) -> None:
    """Run ``follow_up(pledge_id=, ip=)`` after every pledge is held or changed, in the e-mail's message."""
    if follow_up not in _FOLLOW_UPS:
        _FOLLOW_UPS.append(follow_up)


def pledge_follow_ups_run(*, pledge_id: int, ip: str | None = None) -> int:
    """Send the receipt of a held pledge and run the registered follow-ups; return the e-mails sent.

    Every job runs even if an earlier one raised; the first exception is raised afterwards, so
    the task's retry (an OSError from the mail server) runs them all again, each doing only what
    it has not done yet.
    """
    return _jobs_run(email=lambda: pledge_receipt_send(pledge_id=pledge_id), pledge_id=pledge_id, ip=ip)


def pledge_change_follow_ups_run(*, change_id: int, pledge_id: int, ip: str | None = None) -> int:
    """Send the e-mail of a change made to ``pledge_id`` and run the registered follow-ups; return the e-mails sent.

    As ``pledge_follow_ups_run``: every job runs, the first exception is raised afterwards.
    """
    return _jobs_run(email=lambda: pledge_change_email_send(change_id=change_id), pledge_id=pledge_id, ip=ip)


def _jobs_run(*, email: Callable[[], int], pledge_id: int, ip: str | None) -> int:
    sent, failure = 0, None
    try:
        sent = email()
    except Exception as error:
        logger.exception("The e-mail about pledge %s failed", pledge_id)
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
