from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

# The longest "about you" a person may write, on the profile page and through the API.
BIO_MAX_LENGTH = 5_000


class User(AbstractUser):
    """A person on the platform: initiator, backer, or staff (often more than one)."""

    display_name = models.CharField(max_length=80, blank=True)
    bio = models.TextField(blank=True)
    preferred_language = models.CharField(max_length=10, default="en")
    email_verified = models.BooleanField(default=False)
    # The avatar's descriptor (crowdfund_site.images.image_store); empty for none.
    avatar = models.JSONField(default=dict, blank=True)
    # True once a campaign of theirs has had a milestone plan, a shipment or a tier declared not
    # delivered: their public delivery record has something to count. Set by those services
    # (``user_note_delivery_record``), never cleared; a campaign page of anyone else shows no record
    # without asking (fulfilment.selectors.delivery_record_of would find nothing).
    has_delivery_record = models.BooleanField(default=False, db_default=False)

    def __str__(self) -> str:
        return self.display_name or self.username

    @property
    def public_name(self) -> str:
        return self.display_name or self.username

    @property
    def language(self) -> str:
        """Return the language to show this user: their preferred one if the site offers it."""
        if self.preferred_language in dict(settings.LANGUAGES):
            return self.preferred_language
        return settings.LANGUAGE_CODE


class AuditEvent(models.Model):
    """One staff decision or money action, from the admin, the API or a command: who, when, what, why."""

    actor = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="audit_events")
    action = models.CharField(max_length=60)
    object_type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=40)
    object_repr = models.CharField(max_length=200)
    reason = models.TextField(blank=True)
    outcome = models.CharField(max_length=20, default="done")
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.object_type} {self.object_id}"


class SentEmail(models.Model):
    """That e-mail ``kind`` about object ``object_id`` went to ``recipient``: a re-run task skips them.

    Inserted just before the message is handed to the mail server (see ``accounts.emails``);
    the unique constraint is what makes two runs of the same task send one e-mail, not two.
    """

    kind = models.CharField(max_length=60, help_text="The e-mail's template name, e.g. pledge_receipt.")
    object_id = models.BigIntegerField(help_text="What it is about: a pledge, campaign, update or review id.")
    recipient = models.ForeignKey(User, on_delete=models.CASCADE, related_name="sent_emails")
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-sent_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "object_id", "recipient"], name="sent_email_once_per_recipient")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_id} to {self.recipient_id}"
