"""Running calls at the same moment from several threads, for the PostgreSQL concurrency tests."""

import threading
import time

from django.db import connection

from crowdfund_site.exceptions import ApplicationError

WAIT_SECONDS = 60


def run_together(calls: list) -> list:
    """Run every call in its own thread and connection, released at once; return each result.

    A refusal (ApplicationError) is returned in the call's place, for the test to count; any
    other error is raised in the test's thread. Fails if a thread is still running after
    WAIT_SECONDS: a lock that is never released.
    """
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index: int, call) -> None:
        try:
            barrier.wait(timeout=WAIT_SECONDS)
            results[index] = call()
        except BaseException as exc:  # handed to the test thread below
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call), daemon=True) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + WAIT_SECONDS
    for thread in threads:
        thread.join(timeout=max(deadline - time.monotonic(), 0))
    assert not any(t.is_alive() for t in threads), "threads still running: a lock is never released"
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, ApplicationError):
            raise result
    return results
