"""The database store of action tokens."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class ActionToken(models.Model):
    """A stored action token: its payload under a digest of the token, never the token."""

    digest = models.CharField(max_length=64, primary_key=True)
    purpose = models.CharField(max_length=100)
    subject = models.CharField(max_length=255, blank=True, default="")
    payload = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "action token"
        verbose_name_plural = "action tokens"
        indexes = [models.Index(fields=["purpose", "subject"], name="keel_token_subject_idx")]

    def __str__(self) -> str:
        return f"{self.purpose} token {self.digest[:12]}"


class ActionCounter(models.Model):
    """A counter with an expiry: failed one-time-code attempts, codes issued per window.

    Keyed by a keyed digest of its purpose, kind and subject; never the subject in clear.
    """

    key = models.CharField(max_length=64, primary_key=True)
    purpose = models.CharField(max_length=100)
    count = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "action counter"
        verbose_name_plural = "action counters"

    def __str__(self) -> str:
        return f"{self.purpose} counter {self.key[:12]} = {self.count}"
