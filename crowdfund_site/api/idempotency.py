"""Idempotency-Key for the API's money POSTs: the first response is the answer to every retry.

``idempotent`` wraps an API view's ``post``. Per (user, key) the first request claims an
IdempotencyRecord (unique constraint) and runs; its response (status and the exact body) is
stored, and a retry with the same key and body gets that response without running anything
again. Requests sent at the same moment wait for the first one to finish and then answer with
its response. The same key with a different method, path or body is refused with 409
``idempotency_key_reused``.

Only outcomes are stored: successes (2xx), declined payments (402) and state conflicts (409).
Refusals of the request itself (400, 401, 403, 404) and server or gateway failures (5xx)
release the key, so the client can correct the request or retry it under the same key.
"""

import functools
import hashlib
import json
import re
import time
from datetime import timedelta

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from crowdfund_site.db import create_unless_taken
from crowdfund_site.exceptions import Conflict, InvalidInput

from .models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# Printable ASCII without leading or trailing spaces (HTTP servers trim those), e.g. a UUID.
KEY_PATTERN = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$"
STORED_STATUSES = {402, 409}
# How long a concurrent retry waits for the first request before answering 409 in progress.
WAIT_SECONDS = 30.0
POLL_SECONDS = 0.02
# A record still unfinished after this long belongs to a request that died; a retry takes over.
STALE_AFTER = timedelta(seconds=120)


def request_fingerprint(*, method: str, path: str, data) -> str:
    """Return a hash of what the request asks for: method, path and canonical JSON body."""
    if hasattr(data, "lists"):
        data = dict(data.lists())
    body = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{body}".encode()).hexdigest()


def idempotency_key_of(request) -> str:
    """Return the request's Idempotency-Key; raise InvalidInput if it is missing or malformed.

    For an endpoint whose own rows carry the key under a unique constraint (a pledge), which
    then answers a retry itself instead of through ``idempotent``'s stored response.
    """
    return _clean_key(request.headers.get(HEADER))


def _clean_key(key: str | None) -> str:
    key = (key or "").strip()
    if not re.fullmatch(KEY_PATTERN, key):
        raise InvalidInput(
            f"Send an {HEADER} header of 1 to {MAX_KEY_LENGTH} printable ASCII characters with every request "
            "that moves money.",
            code="idempotency_key_required",
            field=HEADER,
        )
    return key


def idempotency_claim(*, user, key: str, fingerprint: str) -> tuple[IdempotencyRecord, bool]:
    """Return (record, True) if the caller now owns the key, or (finished record, False) to replay.

    Waits while another request with the same key is running. Raises Conflict
    ``idempotency_key_reused`` (different request) or ``idempotency_request_in_progress``
    (the first request is still running after WAIT_SECONDS).
    """
    give_up_at = time.monotonic() + WAIT_SECONDS
    while True:
        claimed = create_unless_taken(IdempotencyRecord, user=user, key=key, fingerprint=fingerprint)
        if claimed is not None:
            return claimed, True
        record = IdempotencyRecord.objects.filter(user=user, key=key).first()
        if record is None:  # released by its owner meanwhile: claim it again
            continue
        if record.fingerprint != fingerprint:
            raise Conflict(
                "This Idempotency-Key was already used for a different request.",
                code="idempotency_key_reused",
                field=HEADER,
            )
        if record.is_complete:
            return record, False
        now = timezone.now()
        took_over = IdempotencyRecord.objects.filter(
            pk=record.pk, response_status__isnull=True, started_at__lt=now - STALE_AFTER
        ).update(started_at=now)
        if took_over:
            return record, True
        if time.monotonic() >= give_up_at:
            raise Conflict(
                "A request with this Idempotency-Key is still being processed; retry shortly.",
                code="idempotency_request_in_progress",
            )
        time.sleep(POLL_SECONDS)


def idempotency_finish(*, record: IdempotencyRecord, status: int, body: str) -> None:
    """Store the response of the request owning ``record``, or release the key if not an outcome."""
    if 200 <= status < 300 or status in STORED_STATUSES:
        IdempotencyRecord.objects.filter(pk=record.pk).update(response_status=status, response_body=body)
    else:
        idempotency_release(record=record)


def idempotency_release(*, record: IdempotencyRecord) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk, response_status__isnull=True).delete()


def idempotency_records_purge(*, now=None) -> int:
    """Delete records older than ``settings.IDEMPOTENCY_KEY_TTL``; return how many."""
    cutoff = (now or timezone.now()) - settings.IDEMPOTENCY_KEY_TTL
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def _json_response(*, status: int, body: str, replayed: bool) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type="application/json")
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return response


def idempotent(handler):
    """Make an APIView ``post`` handler idempotent by the request's Idempotency-Key header."""

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        key = _clean_key(request.headers.get(HEADER))
        fingerprint = request_fingerprint(method=request.method, path=request.path, data=request.data)
        record, owner = idempotency_claim(user=request.user, key=key, fingerprint=fingerprint)
        if not owner:
            return _json_response(status=record.response_status, body=record.response_body, replayed=True)
        try:
            try:
                response = handler(view, request, *args, **kwargs)
            except Exception as exc:
                response = view.handle_exception(exc)  # re-raises what is not a refusal
            body = JSONRenderer().render(response.data).decode() if response.data is not None else ""
        except BaseException:
            idempotency_release(record=record)
            raise
        idempotency_finish(record=record, status=response.status_code, body=body)
        return _json_response(status=response.status_code, body=body, replayed=False)

    return wrapper
