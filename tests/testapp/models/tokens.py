"""Concrete test models for keel.tokens."""

from __future__ import annotations

from django.db import models


class TokenAccount(models.Model):
    """An account whose email address a token confirms."""

    email = models.EmailField()
    email_confirmed = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.email
