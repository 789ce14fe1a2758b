"""API tokens: one per user, created on first sign-in through the API."""

from django.db import transaction
from rest_framework.authtoken.models import Token


@transaction.atomic
def api_token_get_or_create(*, user) -> Token:
    """Return ``user``'s API token, creating it if needed (safe under concurrent sign-ins)."""
    token, _ = Token.objects.get_or_create(user=user)
    return token
