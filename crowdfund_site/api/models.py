from django.conf import settings
from django.db import models
from django.utils import timezone


class IdempotencyRecord(models.Model):
    """The first response to a money POST, kept per (user, Idempotency-Key) to answer retries.

    While the first request runs, ``response_status`` is empty and concurrent retries wait for
    it; ``fingerprint`` (a hash of method, path and body) refuses the key reused for another
    request. Records are purged after ``settings.IDEMPOTENCY_KEY_TTL``.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # When the request that owns the key started (or took over a stale one).
    started_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_record_user_key_unique")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key} -> {self.response_status or 'processing'}"

    @property
    def is_complete(self) -> bool:
        return self.response_status is not None
