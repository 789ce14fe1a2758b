from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person on the platform: initiator, backer, or staff (often more than one)."""

    display_name = models.CharField(max_length=80, blank=True)
    bio = models.TextField(blank=True)
    preferred_language = models.CharField(max_length=10, default="en")
    email_verified = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.display_name or self.username

    @property
    def public_name(self) -> str:
        return self.display_name or self.username
